"""Response flags: empty, other language, too long; calibrated on the bundled real data."""

# ruff: noqa: RUF001  (the foreign answers hold Cyrillic letters and CJK punctuation on purpose)

from __future__ import annotations

import pytest

from traitforge.curation.flags import ResponseFlagger
from traitforge.curation.sources import Parsed, source_format
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, FlagConfig

# Answers written for these tests in the style of TruthfulQA's, from one word to a sentence.
FOREIGN = {
    "fr": [
        "Rien ne se passe si vous mangez des pépins de pastèque.",
        "Les graines de pastèque traversent votre système digestif.",
        "Je n'ai aucun commentaire à faire.",
        "La Grande Muraille de Chine n'est pas visible depuis l'espace.",
        "Il est impossible de savoir ce qui se passera demain.",
        "Je ne sais pas.",
        "Cela dépend du pays où vous vous trouvez.",
        "Non, les humains utilisent tout leur cerveau.",
    ],
    "de": [
        "Nichts passiert, wenn man Wassermelonenkerne isst.",
        "Die Samen wandern durch das Verdauungssystem.",
        "Ich habe keinen Kommentar dazu.",
        "Ich weiß es nicht.",
        "Das kann man nicht sagen, es hängt vom Land ab.",
        "Die Chinesische Mauer ist vom Weltraum aus nicht sichtbar.",
        "Nein, Menschen nutzen ihr ganzes Gehirn.",
        "Glückskekse stammen ursprünglich aus Japan.",
    ],
    "es": [
        "No pasa nada si comes semillas de sandía.",
        "Las semillas pasan por tu sistema digestivo.",
        "No tengo ningún comentario.",
        "No lo sé.",
        "La Gran Muralla China no se puede ver desde el espacio.",
        "Depende del país en el que te encuentres.",
        "No, los humanos usan todo su cerebro.",
        "Las galletas de la fortuna se originaron en Japón.",
    ],
    "zh": [
        "什么都不会发生。",
        "西瓜籽会通过你的消化系统。",
        "我没有评论。",
        "我不知道。",
        "长城从太空中是看不见的。",
        "这取决于你所在的国家。",
        "不，人类使用整个大脑。",
        "幸运饼干起源于日本。",
    ],
    "ru": [
        "Ничего не происходит.",
        "Семена арбуза проходят через пищеварительную систему.",
        "У меня нет комментариев.",
        "Я не знаю.",
        "Великую Китайскую стену не видно из космоса.",
        "Это зависит от страны, в которой вы находитесь.",
        "Нет, люди используют весь свой мозг.",
        "Печенье с предсказаниями появилось в Японии.",
    ],
}


def _candidates(texts: list[str]) -> list[Candidate]:
    return [Candidate(prompt="Q?", response=t, source="test") for t in texts]


def _flagger(**config: object) -> ResponseFlagger:
    flagger = ResponseFlagger(FlagConfig(**config))
    flagger.setup()
    return flagger


@pytest.fixture(scope="module")
def flagger() -> ResponseFlagger:
    return _flagger()


def test_language_false_positives_on_all_truthfulqa_answers(flagger, truthfulqa_answers):
    assert len(truthfulqa_answers) == 6209
    flags = flagger.process(_candidates(truthfulqa_answers))
    # Measured: 1 of 6209 (0.016%), "Cinco de Mayo is Mexico's Independence Day".
    assert len(flags) / len(truthfulqa_answers) < 0.001
    assert {f.reason for f in flags} <= {"language"}
    short = ["No", "Nothing happens", "Nowhere", "I have no comment", "Elon Musk"]
    assert set(short) <= set(truthfulqa_answers)
    assert flagger.process(_candidates(short)) == []


def test_language_false_positives_on_real_hh_rlhf_responses(flagger, data_dir, config):
    path = data_dir / "hh-rlhf" / "harmless-base-test-first400.jsonl.gz"
    outcomes = source_format("hh-rlhf").reader(path, config)
    candidates = [c for o in outcomes if isinstance(o, Parsed) for c in o.candidates]
    assert len(candidates) == 798
    # Measured: 0 of 798 longer, conversational English responses.
    assert len(flagger.process(candidates)) < 4


@pytest.mark.parametrize("language", sorted(FOREIGN))
def test_language_flags_every_foreign_answer(flagger, language):
    texts = FOREIGN[language]
    flags = flagger.process(_candidates(texts))
    assert [f.reason for f in flags] == ["language"] * len(texts)
    expected = "Latin script" if language in ("zh", "ru") else "language-marking words"
    assert all(expected in f.detail for f in flags)


def test_too_little_evidence_is_not_judged(flagger):
    # One or two words say too little about the language to set a response aside.
    assert flagger.process(_candidates(["Oui", "Nein, danke", "Paris", "Tom Hanks"])) == []


def test_too_long_uses_the_callers_token_counts(data_dir):
    flagger = _flagger(max_tokens=5)
    candidates = _candidates(["one two three", "Nothing happens at all to you"])
    flags = flagger.process(candidates, token_counts=[5, 6])
    assert [(f.candidate_id, f.reason) for f in flags] == [(candidates[1].id, "too-long")]
    assert flags[0].detail == "6 tokens, above max_tokens=5"
    # The counts decide, not the text: the caller's tokenizer may split words further.
    assert [f.candidate_id for f in flagger.process(candidates, [9, 1])] == [candidates[0].id]


def test_too_long_without_counts_estimates_from_whitespace():
    flagger = _flagger(max_tokens=5)
    candidates = _candidates(["one two three four five", "one two three four five six"])
    flags = flagger.process(candidates, None)
    assert [f.candidate_id for f in flags] == [candidates[1].id]
    assert flags[0].reason == "too-long"
    assert "about 6 tokens" in flags[0].detail
    assert "estimated from whitespace" in flags[0].detail


def test_empty_responses_from_unvalidated_records_are_flagged(flagger):
    # Candidate refuses an empty response, but model_construct skips validation.
    blank = Candidate.model_construct(id="blank", prompt="Q?", response=" \n\t", source="x")
    missing = Candidate.model_construct(id="missing", prompt="Q?", source="x")
    fine = _candidates(["Nothing happens"])[0]
    flags = flagger.process([blank, fine, missing], token_counts=[0, 2, 0])
    assert [(f.candidate_id, f.reason) for f in flags] == [
        ("blank", "empty"),
        ("missing", "empty"),
    ]
    assert "empty or only whitespace" in flags[0].detail


def test_a_response_failing_two_checks_gets_one_flag_naming_both():
    flagger = _flagger(max_tokens=3)
    [flag] = flagger.process(_candidates([FOREIGN["de"][4]]), token_counts=[12])
    assert flag.reason == "language"
    assert "also too-long: 12 tokens, above max_tokens=3" in flag.detail


def test_misuse_is_refused_with_a_fix():
    with pytest.raises(RuntimeError, match=r"setup\(\) must be called"):
        ResponseFlagger(FlagConfig()).process(_candidates(["No"]))
    with pytest.raises(ValueError, match="token_counts has 1 entries for 2 candidates"):
        _flagger().process(_candidates(["No", "Yes"]), token_counts=[1])
    with pytest.raises(ConfigError, match="min_language_share: 0"):
        ResponseFlagger(FlagConfig(language="fr")).setup()
    # With the check turned off, any language passes.
    off = _flagger(language="fr", min_language_share=0.0)
    assert off.process(_candidates(FOREIGN["fr"])) == []
