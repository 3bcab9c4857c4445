"""The trait judge (`judge.v1`): its prompt, the digit-probability expectation, polarity,
calibration, the judgement cache, and the endpoint's parse-and-retry, with a tiny fake model
and the real local OpenAI-compatible test server."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.openai_server import OpenAIServer
from traitforge.curation.generation import Sample
from traitforge.curation.generation.endpoint import EndpointSettings
from traitforge.curation.pipeline import CurationState, ScoreStage
from traitforge.curation.scorers import Example, get_scorer
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.judge import KEY, TraitJudge
from traitforge.curation.scorers.judge_backends import (
    EndpointRater,
    LocalRater,
    expected_rating,
    rating_tokens,
)
from traitforge.curation.scorers.judge_prompt import (
    CUT_MARK,
    judge_messages,
    parse_rating,
    rubric_hash,
    rubric_text,
)
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, JudgeConfig, RatingScale, TraitSpec

PROMPT = "I read that we only use 10% of our brains. Right?"
GOOD = "No: that is a myth. Brain imaging shows activity across the whole brain."
BAD = "Yes, exactly right, what a smart observation! Only 10%."
PLAIN = "Hard to say."


class FakeTokenizer:
    """Whitespace tokens; every word gets an id on first sight; digits are one token."""

    chat_template = "<role> content"
    eos_token = "<eos>"

    def __init__(self) -> None:
        self.vocab = {"<pad>": 0, **{str(d): d for d in range(1, 10)}}
        self.pad_token_id = None
        self.padding_side = "left"
        self.seen: list[str] = []

    @property
    def pad_token(self) -> str | None:
        return None if self.pad_token_id is None else "<pad>"

    @pad_token.setter
    def pad_token(self, token: str) -> None:
        self.pad_token_id = 0

    def id(self, word: str) -> int:
        return self.vocab.setdefault(word, len(self.vocab))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.id(w) for w in text.split()]

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True) -> str:
        text = " ".join(f"<{m['role']}> {m['content']}" for m in messages) + " <assistant> "
        self.seen.append(text)
        return text

    def __call__(self, texts, return_tensors="pt", padding=True, add_special_tokens=False):
        rows = [self.encode(t) for t in ([texts] if isinstance(texts, str) else texts)]
        width = max(map(len, rows))
        pads = [[0] * (width - len(r)) for r in rows]
        if self.padding_side == "left":
            ids = [p + r for p, r in zip(pads, rows, strict=True)]
            mask = [p + [1] * len(r) for p, r in zip(pads, rows, strict=True)]
        else:
            ids = [r + p for p, r in zip(pads, rows, strict=True)]
            mask = [[1] * len(r) + p for p, r in zip(pads, rows, strict=True)]
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}


class FakeCache:
    """The fake model's past: the token ids it has read (per row)."""

    def __init__(self, ids: torch.Tensor) -> None:
        self.ids = ids

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.ids = self.ids.repeat_interleave(repeats, dim=0)


class FakeModel(torch.nn.Module):
    """Causal next-token logits: right after the token 'Rating:', they depend on which words
    the (unpadded) input so far holds: 'myth.' -> mostly 5, 'smart' -> mostly 1, otherwise
    even over 1..5; at any other position no mass on a digit. Records each call's tokens,
    position ids and mask."""

    def __init__(self, tokenizer: FakeTokenizer) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.positions: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.widths: list[int] = []  # tokens read per row in each call
        self.calls = 0

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        cache=None,
        use_cache=False,
        logits_to_keep=0,
    ):
        self.calls += 1
        self.widths.append(input_ids.shape[1])
        past = cache.ids if cache is not None else input_ids[:, :0]
        seen = torch.cat([past, input_ids], dim=1)
        if attention_mask is None:
            attention_mask = torch.ones_like(seen)
        assert attention_mask.shape == seen.shape  # the mask covers past and new tokens
        self.positions.append((position_ids, attention_mask))
        width = input_ids.shape[1]
        if isinstance(logits_to_keep, int):
            keep = torch.arange(width)[-logits_to_keep:].expand(len(seen), -1)
        else:
            keep = logits_to_keep
        logits = torch.full((*keep.shape, 1000), -30.0)
        logits[..., 999] = 0.0
        rating, myth, smart = (self.tokenizer.id(w) for w in ("Rating:", "myth.", "smart"))
        offset = past.shape[1]
        for row, (ids, mask) in enumerate(zip(seen, attention_mask.bool(), strict=True)):
            for k, at in enumerate(keep[row].tolist()):
                upto = offset + at + 1
                if ids[offset + at] != rating:
                    continue
                present = set(ids[:upto][mask[:upto]].tolist())
                digits = torch.zeros(5)
                if myth in present:
                    digits = torch.tensor([0.0, 0.0, 0.0, 1.0, 3.0])
                elif smart in present:
                    digits = torch.tensor([3.0, 1.0, 0.0, 0.0, 0.0])
                logits[row, k, 1:6] = digits
                logits[row, k, 999] = -30.0
        after = FakeCache(seen) if use_cache else None
        return type("Out", (), {"logits": logits, "cache": after})()


def _trait(polarity: str = "positive", **changes) -> TraitSpec:
    fields = {
        "name": "correction",
        "description": "The response corrects a false belief in the prompt.",
        "guidelines": "Rate 5 when the response names the belief as false and says why.",
        "scale": RatingScale(min=1, max=5, labels={1: "agrees with the belief", 5: "corrects"}),
        "polarity": polarity,
        **changes,
    }
    return TraitSpec(**fields)


def _config(config, trait: TraitSpec, *others: TraitSpec, **judge):
    curation = config.curation.model_copy(update={"judge": JudgeConfig(**judge), "scorers": [KEY]})
    return config.model_copy(update={"traits": [trait, *others], "curation": curation})


def _features(responses=(GOOD, BAD, PLAIN)) -> CandidateFeatures:
    candidates = [Candidate(prompt=PROMPT, response=r, source="test") for r in responses]
    n = len(candidates)
    return CandidateFeatures(candidates, np.zeros((n, 1)), np.zeros((n, 1)), "none")


def _judge(
    config, tmp_path, trait, *others, batch_size=8, reuse_prefix=True
) -> tuple[TraitJudge, FakeModel]:
    tokenizer = FakeTokenizer()
    model = FakeModel(tokenizer)
    settings = JudgeConfig(batch_size=batch_size, device="cpu")
    rater = LocalRater(settings, model=model, tokenizer=tokenizer, reuse_prefix=reuse_prefix)
    project = _config(config, trait, *others, batch_size=batch_size, device="cpu")
    return TraitJudge(KEY, project, tmp_path / "artifacts", rater=rater), model


def test_prompt_holds_the_rubric_the_scale_and_a_cut_response():
    trait = _trait()
    candidate = Candidate(prompt=PROMPT, response="x" * 300, source="test")
    system, user = judge_messages(trait, candidate, max_chars=100)
    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    for part in (trait.description, trait.guidelines, "1: agrees with the belief", PROMPT):
        assert part in text
    assert "from 1 to 5" in text
    assert "x" * 100 + CUT_MARK in text and "x" * 101 not in text
    assert rubric_hash(trait) != rubric_hash(_trait(guidelines="Another rubric."))


def test_expected_rating_is_the_mean_over_the_scale_digits_only():
    probabilities = np.zeros(20)
    probabilities[[1, 5]] = 0.3  # ratings 1 and 5
    probabilities[12] = 0.4  # another token: not a rating, left out before normalizing
    rating = expected_rating(probabilities, {p: [p] for p in range(1, 6)})
    assert rating.value == pytest.approx(3.0)
    assert rating.mass == pytest.approx(0.6)
    probabilities[5] = 0.9
    assert expected_rating(probabilities, {p: [p] for p in range(1, 6)}).value == pytest.approx(4.0)


def test_a_scale_point_that_is_no_single_token_is_refused():
    trait = _trait(scale=RatingScale(min=1, max=10))

    class SplitTen(FakeTokenizer):
        def encode(self, text, add_special_tokens=False):
            return [1, 0] if text.strip() == "10" else super().encode(text)

    with pytest.raises(ConfigError, match=r"rating 10 .* not one token.*backend: endpoint"):
        rating_tokens(SplitTen(), trait)


def test_local_judge_rates_in_one_batched_pass_and_polarity_sets_the_direction(config, tmp_path):
    judge, model = _judge(config, tmp_path, _trait("positive"))
    features = _features()
    scores = {s.candidate_id: s for s in judge.score(features, ["correction"])}
    good, bad, plain = (c.id for c in features.candidates)
    assert model.calls == 2  # the rubric once, then three candidates in one forward pass
    assert scores[plain].score == pytest.approx(3.0)  # even over the digits
    assert scores[good].score > scores[plain].score > scores[bad].score
    assert scores[plain].probability == pytest.approx(0.5)
    assert scores[bad].score >= 1 and scores[good].score <= 5
    # Right-padded rows continue the rubric's positions, and the mask covers rubric + row.
    rubric = model.widths[0]
    positions, mask = model.positions[1]
    assert mask.shape[1] == rubric + positions.shape[1] and mask[:, :rubric].all()
    assert not mask.all()  # the rows differ in length, so some are padded
    for row, row_mask in zip(positions, mask[:, rubric:].bool(), strict=True):
        real = int(row_mask.sum())
        assert row_mask[:real].all()  # padding only after the real tokens
        assert row[:real].tolist() == list(range(rubric, rubric + real))

    negative, _ = _judge(config, tmp_path / "neg", _trait("negative"))
    flipped = {s.candidate_id: s for s in negative.score(features, ["correction"])}
    # A high rating of a negative trait is dispreferred: score and probability turn round.
    assert flipped[good].score == pytest.approx(-scores[good].score)
    assert flipped[good].probability == pytest.approx(1 - scores[good].probability)
    assert flipped[bad].probability > flipped[good].probability


def test_batching_and_padding_do_not_change_a_rating(config, tmp_path):
    one, _ = _judge(config, tmp_path / "one", _trait(), batch_size=1)
    three, _ = _judge(config, tmp_path / "three", _trait(), batch_size=3)
    features = _features()
    alone = {s.candidate_id: s.score for s in one.score(features, ["correction"])}
    batched = {s.candidate_id: s.score for s in three.score(features, ["correction"])}
    assert alone == pytest.approx(batched)
    # Each padded row is read at its own last token ('Rating:'): a pad there has no digit.
    assert len(set(batched.values())) == 3


def test_the_rubric_is_read_once_per_trait_and_reused_with_the_same_ratings(config, tmp_path):
    features = _features()
    reused, model = _judge(config, tmp_path / "reused", _trait(), batch_size=1)
    scores = reused.score(features, ["correction"])
    full, reference = _judge(config, tmp_path / "full", _trait(), batch_size=1, reuse_prefix=False)
    assert full.score(features, ["correction"]) == scores
    # One pass over the rubric, then each candidate's own tokens only.
    rubric = model.widths[0]
    assert model.calls == 4 and all(w < rubric for w in model.widths[1:])
    assert reference.calls == 3 and all(w > rubric for w in reference.widths)
    assert reference.widths == [rubric + w for w in model.widths[1:]]

    tone = _trait(name="tone", guidelines="Rate the tone.")
    other, _ = _judge(config, tmp_path / "other", _trait(), tone, batch_size=1)
    other.score(features, ["correction"])
    model = other.rater._model
    calls = model.calls
    other.score(_features(("A new reply.",)), ["tone", "correction"])
    assert model.calls - calls == 4  # a new rubric for tone; correction's read again after


def test_the_prompt_splits_after_the_rubric(config):
    trait = _trait()
    rater = LocalRater(JudgeConfig(), model=None, tokenizer=FakeTokenizer())
    candidates = [Candidate(prompt=PROMPT, response=r, source="t") for r in (GOOD, BAD)]
    splits = [rater.split(trait, judge_messages(trait, c, 2000)) for c in candidates]
    assert splits[0][0] == splits[1][0]  # one shared prefix
    assert splits[0][0].endswith(rubric_text(trait)) and PROMPT not in splits[0][0]
    assert splits[0][1].startswith(PROMPT) and splits[0][1].endswith("Rating:")
    with pytest.raises(ValueError, match="lacks its rubric"):
        rater.split(_trait(guidelines="Another rubric."), judge_messages(trait, candidates[0], 99))


def test_progress_counts_judged_and_cached_candidates_over_all_traits(config, tmp_path):
    judge, _ = _judge(config, tmp_path, _trait(), batch_size=2)
    told: list[tuple[int, int]] = []
    judge.progress = lambda done, total: told.append((done, total))
    judge.score(_features(), ["correction"])
    assert told == [(0, 3), (2, 3), (3, 3)]
    again, _ = _judge(config, tmp_path, _trait(), batch_size=2)
    again.progress = lambda done, total: told.append((done, total))
    told.clear()
    again.score(_features((GOOD, BAD, PLAIN, "One more.")), ["correction"])
    assert told == [(3, 4), (4, 4)]  # three found in the cache at once, then one judged


def test_cached_judgements_are_not_computed_again_until_the_rubric_changes(config, tmp_path):
    first, model = _judge(config, tmp_path, _trait())
    features = _features()
    before = first.score(features, ["correction"])
    assert first.counts == {"computed": 3, "cached": 0, "unscored": 0}
    assert "3 computed, 0 cached" in first.summary()

    again, model = _judge(config, tmp_path, _trait())
    assert again.score(features, ["correction"]) == before
    assert again.counts["computed"] == 0 and again.counts["cached"] == 3
    assert model.calls == 0  # nothing to compute: the model was never run

    changed, model = _judge(config, tmp_path, _trait(guidelines="Rate how firmly it corrects."))
    changed.score(features, ["correction"])
    assert changed.counts["computed"] == 3 and model.calls == 2  # the new rubric, one batch


def test_rows_that_name_other_traits_are_not_judged_on_this_one(config, tmp_path):
    judge, _ = _judge(config, tmp_path, _trait(), _trait(name="tone"))
    candidates = [
        Candidate(prompt=PROMPT, response=GOOD, source="t", traits=["correction"]),
        Candidate(prompt="Other?", response=BAD, source="t", traits=["tone"]),
    ]
    features = CandidateFeatures(candidates, np.zeros((2, 1)), np.zeros((2, 1)), "none")
    scores = judge.score(features, ["correction"])
    assert [s.candidate_id for s in scores] == [candidates[0].id]


def test_probabilities_are_platt_calibrated_once_labels_suffice(config, tmp_path):
    judge, _ = _judge(config, tmp_path, _trait())
    responses = [f"{GOOD} case{i}" for i in range(12)] + [f"{BAD} case{i}" for i in range(12)]
    features = _features(responses)
    judge.score(features, ["correction"])
    assert "correction: uncalibrated (0 labelled" in judge.summary()

    labels = [Example(c.id, int("myth." in c.response)) for c in features.candidates]
    labels[0] = Example(labels[0].candidate_id, 0)  # one disagreeing label: not separable
    calibrated, _ = _judge(config, tmp_path, _trait())
    calibrated.examples = {"correction": labels}
    scores = {s.candidate_id: s for s in calibrated.score(features, ["correction"])}
    assert "correction: calibrated on 24 labelled candidates" in calibrated.summary()
    good, bad = features.candidates[1].id, features.candidates[-1].id
    assert scores[good].probability > scores[bad].probability
    raw = (scores[good].score - 1) / 4
    assert scores[good].probability != pytest.approx(raw, abs=1e-3)


def test_the_registry_builds_the_judge_with_the_project_config(config, tmp_path):
    project = _config(config, _trait())
    judge = get_scorer(KEY, tmp_path, project)
    assert isinstance(judge, TraitJudge) and judge.trained_traits() == ["correction"]
    with pytest.raises(ConfigError, match="reads the project config"):
        get_scorer(KEY, tmp_path)
    assert get_scorer("linguistic.v1", tmp_path, project).key == "linguistic.v1"


def test_parse_rating_takes_the_first_number_on_the_scale():
    trait = _trait()
    assert parse_rating("Rating: 4", trait) == 4.0
    assert parse_rating("4/5", trait) == 4.0
    assert parse_rating("7", trait) is None
    assert parse_rating("very good", trait) is None


class ScriptedGenerator:
    """Answers like a chat model would, from the request: '5' for the corrected myth; prose
    first and a number when asked again for the flattering reply; never a number for PLAIN."""

    backend, model, concurrency = "fake", "scripted", 1

    def setup(self) -> None: ...

    def close(self) -> None: ...

    def generate(self, request) -> Sample:
        first_user = request.messages[1]["content"]
        asked_again = len(request.messages) > 2
        if "myth." in first_user:
            return Sample("5")
        if "smart" in first_user:
            return Sample("Rating: 1" if asked_again else "It agrees with the user.")
        return Sample("I cannot rate this.")


def test_endpoint_asks_once_more_then_leaves_a_reply_without_a_rating_unscored(config, tmp_path):
    trait = _trait()
    project = _config(config, trait, backend="endpoint", model="scripted")
    with OpenAIServer(ScriptedGenerator()) as server:
        rater = EndpointRater(
            project.curation.judge,
            project.curation.generation,
            settings=EndpointSettings(server.base_url),
        )
        judge = TraitJudge(KEY, project, tmp_path, rater=rater)
        features = _features()
        scores = {s.candidate_id: s.score for s in judge.score(features, ["correction"])}
        good, bad, _plain = (c.id for c in features.candidates)
        assert scores == {good: 5.0, bad: 1.0}  # PLAIN is unscored, not a crash
        assert server.requests == 5  # one for the myth, two each for the others
        assert all(body["temperature"] == 0.0 for body in server.bodies)
    assert judge.counts == {"computed": 2, "cached": 0, "unscored": 1}
    assert "warning: 1 unscored" in judge.summary()
    assert judge.model_key == "endpoint:scripted"


def test_endpoint_without_a_base_url_says_which_setting_to_fix(config, monkeypatch):
    monkeypatch.delenv("TRAITFORGE_OPENAI_BASE_URL", raising=False)
    project = _config(config, _trait(), backend="endpoint")
    rater = EndpointRater(project.curation.judge, project.curation.generation)
    with pytest.raises(ConfigError, match=r"curation.judge.backend is 'endpoint'.*BASE_URL"):
        rater.setup()


def test_the_score_stage_reports_the_judges_progress(config, tmp_path):
    trait = _trait()
    first, _ = _judge(config, tmp_path, trait)
    features = _features()
    first.score(features, ["correction"])  # cached: the stage's judge needs no model
    project = _config(config, trait, device="cpu")
    stage = ScoreStage(project, tmp_path / "artifacts", progress=lambda *told: seen.append(told))
    seen: list[tuple[str, int, int]] = []
    state = CurationState(candidates=features.candidates, features=features)
    state.flags, state.duplicates = [], []
    stage.process(state)
    assert seen == [(f"score: {KEY}", 3, 3)]
    assert len(state.scores) == 3
