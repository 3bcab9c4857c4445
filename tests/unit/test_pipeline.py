from __future__ import annotations

import re

import pytest

from traitforge.curation import embeddings, pipeline
from traitforge.curation.pipeline import (
    CurationState,
    DedupStage,
    FlagStage,
    check_stages,
    gold_examples,
)
from traitforge.curation.sources import Parsed, source_format
from traitforge.errors import ConfigError, TraitforgeError, WorkspaceError
from traitforge.schemas import Candidate, DuplicateMark, Flag, TraitSpec


def test_stage_order_is_checked_before_any_work(config):
    with pytest.raises(ConfigError, match=r"stage 'flag' needs \['token_counts'\].*move a stage"):
        check_stages([FlagStage(config), DedupStage(config)])


def test_eligible_leaves_out_flagged_and_same_prompt_duplicates():
    a, b, c, d = (
        Candidate(prompt="Can pigs fly?", response=r, source="t")
        for r in ("No", "No, they cannot", "Pigs can't fly", "Oui")
    )
    state = CurationState(
        candidates=[a, b, c, d],
        flags=[Flag(candidate_id=d.id, reason="language", detail="looks French")],
        duplicates=[
            DuplicateMark(
                candidate_id=b.id, representative_id=a.id, similarity=0.97, scope="prompt"
            ),
            DuplicateMark(
                candidate_id=c.id, representative_id="elsewhere", similarity=0.99, scope="corpus"
            ),
        ],
    )
    assert [x.id for x in state.eligible()] == [a.id, c.id]


def test_gold_examples_follow_polarity_and_scale():
    honest = TraitSpec(name="honesty", description="d", guidelines="g")
    sycophancy = TraitSpec(name="sycophancy", description="d", guidelines="g", polarity="negative")
    rated = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v, "sycophancy": v})
        for v in (1.0, 2.0, 4.0, 5.0)
    ]
    examples = gold_examples(rated, [honest, sycophancy])
    assert [e.label for e in examples["honesty"]] == [0, 0, 1, 1]  # split at the scale middle
    assert [e.label for e in examples["sycophancy"]] == [1, 1, 0, 0]  # less is preferred
    binary = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v}) for v in (0.0, 1.0)
    ]
    assert [e.label for e in gold_examples(binary, [honest])["honesty"]] == [0, 1]


@pytest.fixture
def no_model(monkeypatch):
    """Loading the embedding model fails the test: these refusals come before it."""

    def load(*args, **kwargs):
        raise AssertionError("the embedding model was loaded")

    monkeypatch.setattr(embeddings, "load_sentence_transformer", load)


def _curate(store, config, tmp_path):
    return pipeline.curate(store, config, tmp_path / "classifiers", tmp_path / "e.sqlite", 5)


def _train(store, config, tmp_path):
    return pipeline.train_classifiers(
        store, config, tmp_path / "classifiers", tmp_path / "e.sqlite"
    )


@pytest.mark.parametrize("run", [_curate, _train], ids=["curate", "classifiers-train"])
def test_an_empty_workspace_is_refused_before_the_model_loads(
    store, config, tmp_path, run, no_model
):
    with pytest.raises(
        WorkspaceError,
        match=rf"nothing to curate: {re.escape(str(store.path.parent))} holds no candidates; "
        r"run `traitforge ingest` first",
    ):
        run(store, config, tmp_path)


def test_training_on_gold_without_any_labels_names_the_traits_and_the_fix(
    store, config, tmp_path, no_model
):
    with store.transaction():
        store.add_candidates(
            Candidate(prompt="Can pigs fly?", response=r, source="mine")
            for r in ("No, pigs cannot fly.", "Yes, in winter.")
        )
    with pytest.raises(
        TraitforgeError,
        match=r"no classifier to train: .* has gold labels for honesty, corrigibility, "
        r"harmlessness; ingest data with gold labels .* --origin judgements",
    ):
        _train(store, config, tmp_path)


@pytest.mark.slow  # embeds ~300 real TruthfulQA answers
def test_a_trait_without_gold_labels_is_named_in_a_warning(store, config, tmp_path, data_dir):
    rows = source_format("truthfulqa").reader(data_dir / "truthfulqa" / "TruthfulQA.csv", config)
    candidates = [c for o in rows if isinstance(o, Parsed) for c in o.candidates][:300]
    with store.transaction():
        store.add_candidates(candidates)
    training = _train(store, config, tmp_path)
    assert {r.trait for r in training.trained} == {"honesty"}  # by each classifier scorer
    [warning] = training.warnings
    assert re.search(
        r"has gold labels for corrigibility, harmlessness, so no classifier was trained for "
        r"them; ingest data with gold labels",
        warning,
    ), warning
