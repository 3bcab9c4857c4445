"""The tie-aware preference ensemble and the epistemic acquisition built on it."""

from __future__ import annotations

import numpy as np
import pytest

from traitforge.curation.acquisition import Acquisition
from traitforge.curation.ensemble import (
    FIRST,
    SECOND,
    TIE,
    Comparison,
    PreferenceEnsemble,
    bald,
    comparisons,
)
from traitforge.schemas import ComparisonTask, Judgement, RankedCandidate

DIM = 12


def _world(n_prompts: int = 40, seed: int = 0):
    """Prompts with two good and two bad answers; 'good' is a direction in feature space."""
    rng = np.random.default_rng(seed)
    good_direction = np.zeros(DIM)
    good_direction[0] = 1.0
    phi, good = {}, {}
    for p in range(n_prompts):
        for i in range(4):
            cid = f"p{p}-c{i}"
            good[cid] = i < 2
            v = (1.0 if good[cid] else -1.0) * good_direction + 0.3 * rng.normal(size=DIM)
            phi[cid] = v
    return phi, good


def _answers(phi, good, prompts, votes=3):
    """Ties for two answers alike on the trait, the good one otherwise."""
    out = []
    for p in prompts:
        ids = [f"p{p}-c{i}" for i in range(4)]
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                outcome = TIE if good[a] == good[b] else FIRST if good[a] else SECOND
                out += [Comparison(a, b, outcome)] * votes
    return out


def test_the_ensemble_learns_the_direction_and_a_tie_threshold():
    phi, good = _world()
    ensemble = PreferenceEnsemble.fit(_answers(phi, good, range(20)), phi, seed=0)
    assert ensemble is not None
    assert (ensemble.thresholds > 0).all()  # ties were seen: a threshold was learnt
    held_out = [f"p{p}-c{i}" for p in range(20, 40) for i in range(4)]
    rewards = ensemble.rewards(np.stack([phi[c] for c in held_out])).mean(axis=1)
    by_id = dict(zip(held_out, rewards, strict=True))
    right = [by_id[f"p{p}-c0"] > by_id[f"p{p}-c2"] for p in range(20, 40)]
    assert sum(right) >= 18
    # alike answers are predicted to tie, different ones not
    alike = ensemble.outcome_probabilities(
        ensemble.rewards(phi["p30-c0"][None]), ensemble.rewards(phi["p30-c1"][None])
    )
    unlike = ensemble.outcome_probabilities(
        ensemble.rewards(phi["p30-c0"][None]), ensemble.rewards(phi["p30-c2"][None])
    )
    assert alike[0, :, TIE].mean() > 0.5 > unlike[0, :, TIE].mean()
    assert unlike[0, :, FIRST].mean() > 0.5


def test_without_ties_the_threshold_is_zero_and_members_differ():
    phi, good = _world()
    decisive = [a for a in _answers(phi, good, range(6), votes=1) if a.outcome != TIE]
    ensemble = PreferenceEnsemble.fit(decisive, phi, seed=0)
    assert ensemble is not None
    assert (ensemble.thresholds == 0).all()
    # bootstrap members are fitted to different resamples: their weights differ
    assert np.ptp(ensemble.weights, axis=0).max() > 1e-3


def test_nothing_to_learn_from_gives_no_ensemble():
    phi, _ = _world(2)
    assert PreferenceEnsemble.fit([], phi) is None
    assert PreferenceEnsemble.fit([Comparison("unknown", "p0-c0", FIRST)], phi) is None


def test_bald_is_high_only_where_members_disagree():
    agree = np.array([[[0.9, 0.05, 0.05]] * 4])  # every member sure: nothing to learn
    unsure_alike = np.array([[[0.34, 0.33, 0.33]] * 4])  # every member unsure: aleatoric
    disagree = np.array([[[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]] * 2])
    values = bald(np.concatenate([agree, unsure_alike, disagree]))
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert values[1] == pytest.approx(0.0, abs=1e-9)
    assert values[2] > 0.4


def test_comparisons_read_rankings_with_ties_in_task_order():
    task = ComparisonTask(prompt_id="p", candidate_ids=["a", "b", "c"], trait="t", reason="random")
    ranked = Judgement(
        task_id=task.id,
        annotator_id="x",
        ranking=[
            RankedCandidate(candidate_id="c", rank=1),
            RankedCandidate(candidate_id="a", rank=2),
            RankedCandidate(candidate_id="b", rank=2),
        ],
    )
    orphan = Judgement(
        task_id="gone", annotator_id="x", ranking=[RankedCandidate(candidate_id="a", rank=1)]
    )
    found = comparisons([task], [ranked, orphan])
    assert found == [
        Comparison("a", "b", TIE),
        Comparison("a", "c", SECOND),
        Comparison("b", "c", SECOND),
    ]


def test_before_any_answer_the_classifiers_uncertainty_ranks_pairs_and_alike_pairs_score_low():
    probability = {"sure-good": 0.9, "sure-bad": 0.1, "also-good": 0.9, "mid-a": 0.6, "mid-b": 0.4}
    acquisition = Acquisition(probability, None, {}, 0, ["embedding-logreg.v1"])
    groups = [("sure-good", "sure-bad"), ("sure-good", "also-good"), ("mid-a", "mid-b")]
    sure, alike, unsure = acquisition.score(groups)
    assert unsure.score > alike.score > sure.score
    assert alike.tie == pytest.approx(0.82)  # both look good: likely a tie
    assert acquisition.source == "trait scores of embedding-logreg.v1 (no answers yet)"


def _acquisition(phi, answers, probability):
    """Acquisition over the world's candidates, one shared prompt vector."""
    prompt_of = {c: c.split("-")[0] for c in phi}
    prompt_vectors = {p: np.ones(DIM) / DIM**0.5 for p in set(prompt_of.values())}
    response_vectors = {c: v / np.linalg.norm(v) for c, v in phi.items()}
    return Acquisition.build(answers, prompt_of, prompt_vectors, response_vectors, probability, 0)


def test_with_answers_pairs_predicted_to_tie_score_below_informative_ones():
    phi, good = _world()
    acquisition = _acquisition(phi, _answers(phi, good, range(10)), {})
    assert "ensemble of 8" in acquisition.source
    groups = [(f"p{p}-c0", f"p{p}-c1") for p in range(10, 40)]
    groups += [(f"p{p}-c0", f"p{p}-c2") for p in range(10, 40)]
    scores = acquisition.score(groups)
    ties = [s.tie for s in scores[:30]]
    decisive = [s.tie for s in scores[30:]]
    assert np.mean(ties) > np.mean(decisive)


def test_decisive_scores_pairs_the_classifiers_find_alike_lower_at_equal_model_uncertainty():
    phi, good = _world()
    answers = _answers(phi, good, range(10))
    # the same pair twice over: once the classifiers call both sides alike, once not
    alike = {"p20-c0": 0.95, "p20-c2": 0.95}
    unlike = {"p20-c0": 0.95, "p20-c2": 0.05}
    scores = []
    for probability in (alike, unlike):
        acquisition = _acquisition(phi, answers, probability)
        scores.append(acquisition.score([("p20-c0", "p20-c2")], "decisive")[0])
    assert scores[0].epistemic == pytest.approx(scores[1].epistemic)
    assert scores[0].tie > scores[1].tie
    assert scores[0].score < scores[1].score
