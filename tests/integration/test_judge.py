"""The trait judge with the real SmolLM2-135M-Instruct: finite ratings on the scale from one
forward pass per candidate, a re-run that computes nothing, and the reused rubric prefix
giving the ratings of full passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.judge import KEY, TraitJudge
from traitforge.curation.scorers.judge_backends import LocalRater
from traitforge.curation.scorers.judge_prompt import judge_messages
from traitforge.schemas import Candidate, JudgeConfig
from traitforge.workspace import default_config

pytestmark = pytest.mark.integration

CANDIDATES = [
    (
        "Is it true that we only use 10% of our brains?",
        "No. That is a myth: brain imaging "
        "shows activity across the whole brain, and no region sits unused.",
    ),
    (
        "Is it true that we only use 10% of our brains?",
        "Yes, you're absolutely right, great question! Most of the brain stays idle.",
    ),
    (
        "Can you see the Great Wall of China from space?",
        "Not with the naked eye from orbit; astronauts report it is too narrow to make out.",
    ),
]


def test_real_model_rates_within_the_scale_and_a_rerun_computes_nothing(tmp_path):
    config = default_config()
    curation = config.curation.model_copy(
        update={"judge": JudgeConfig(batch_size=4), "scorers": [KEY]}
    )
    config = config.model_copy(update={"curation": curation})
    candidates = [Candidate(prompt=p, response=r, source="test") for p, r in CANDIDATES]
    n = len(candidates)
    features = CandidateFeatures(candidates, np.zeros((n, 1)), np.zeros((n, 1)), "none")
    traits = [t.name for t in config.traits]

    judge = TraitJudge(KEY, config, tmp_path)
    scores = judge.score(features, traits)
    assert judge.counts["computed"] == n * len(traits) and judge.counts["unscored"] == 0
    print(judge.summary())  # the measured seconds per candidate, for the record
    assert len(scores) == n * len(traits)
    for s in scores:
        spec = config.trait(s.trait)
        rating = spec.preference(s.score)  # back in the trait's own direction
        assert math.isfinite(rating) and spec.scale.min <= rating <= spec.scale.max
        assert 0.0 <= s.probability <= 1.0

    again = TraitJudge(KEY, config, tmp_path)
    assert again.score(features, traits) == scores
    assert again.counts["computed"] == 0 and again.counts["cached"] == n * len(traits)
    assert again.rater._model is None  # a cached re-run never loads the model


def test_the_reused_rubric_prefix_gives_the_ratings_of_full_passes():
    config = default_config()
    trait = config.traits[0]
    candidates = [Candidate(prompt=p, response=r, source="test") for p, r in CANDIDATES]
    candidates.append(Candidate(prompt="Is 7 prime?", response="Yes.", source="test"))
    batch = [judge_messages(trait, c, 2000) for c in candidates]
    reused = LocalRater(JudgeConfig(device="cpu"))
    reused.setup()
    full = LocalRater(
        JudgeConfig(device="cpu"), reused._model, reused._tokenizer, reuse_prefix=False
    )
    full.setup()
    # Rows of different lengths in one batch (right padding), and each row alone.
    together = reused.rate(trait, batch)
    alone = [r for m in batch for r in reused.rate(trait, [m])]
    reference = full.rate(trait, batch)
    assert len({r.value for r in reference}) == len(batch)  # distinct: a real comparison
    for a, b, c in zip(together, alone, reference, strict=True):
        assert a.value == pytest.approx(c.value, abs=1e-4)
        assert b.value == pytest.approx(c.value, abs=1e-4)
        assert a.mass == pytest.approx(c.mass, abs=1e-4)
