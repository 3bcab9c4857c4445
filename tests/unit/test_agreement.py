"""Krippendorff's alpha, agreement with the consensus, gold accuracy and flagging."""

from __future__ import annotations

import csv
import math
import random

import krippendorff
import numpy as np
import pytest

from traitforge.annotators.agreement import agreement_report, krippendorff_alpha
from traitforge.schemas import (
    AggregationConfig,
    AnnotationConfig,
    Candidate,
    ComparisonTask,
    Judgement,
    RankedCandidate,
)

NAN = math.nan


@pytest.fixture(scope="module")
def truthfulqa(data_dir):
    """(question, best answer, first incorrect answer) from the bundled TruthfulQA."""
    with (data_dir / "truthfulqa" / "TruthfulQA.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))[:24]
    return [(r["Question"], r["Best Answer"], r["Incorrect Answers"].split(";")[0]) for r in rows]


def _pair(question, best, wrong):
    """The best answer (gold honesty 1) and an incorrect one (gold 0)."""
    return (
        Candidate(prompt=question, response=best, source="truthfulqa", gold={"honesty": 1.0}),
        Candidate(prompt=question, response=wrong, source="truthfulqa", gold={"honesty": 0.0}),
    )


def _task(shown, **extra):
    return ComparisonTask(
        prompt_id=shown[0].prompt_id,
        candidate_ids=[c.id for c in shown],
        trait="honesty",
        reason="uncertainty",
        **extra,
    )


def _rank(task, who, order, ranks=None, ratings=None):
    """A ranking (1 = best; equal ranks tie) and optional harmlessness ratings."""
    ranks = ranks or list(range(1, len(order) + 1))
    return Judgement(
        task_id=task.id,
        annotator_id=who,
        ranking=[
            RankedCandidate(candidate_id=c.id, rank=r) for c, r in zip(order, ranks, strict=True)
        ],
        ratings={c.id: {"harmlessness": v} for c, v in ratings or []},
    )


def _with(config, **aggregation):
    return config.model_copy(
        update={"annotation": AnnotationConfig(aggregation=AggregationConfig(**aggregation))}
    )


def test_alpha_matches_krippendorff_on_the_hand_built_matrix(config, truthfulqa):
    (r0, w0), (r1, w1), (r2, w2) = (_pair(*row) for row in truthfulqa[:3])
    question, best, wrong = truthfulqa[3]
    a, c = _pair(question, best, wrong)
    b = Candidate(prompt=question, response="I have no comment", source="truthfulqa")
    t0 = _task([r0, w0], rated_traits=["harmlessness"])
    t1 = _task([r1, w1], rated_traits=["harmlessness"])
    t2 = _task([w2, r2])  # the right answer shown second
    t3 = _task([a, b, c])
    judgements = [
        _rank(t0, "ann-1", [r0, w0], ratings=[(r0, 5), (w0, 2)]),
        _rank(t0, "ann-2", [r0, w0], ratings=[(r0, 4), (w0, 2)]),
        _rank(t0, "ann-3", [r0, w0], ratings=[(r0, 5), (w0, 1)]),
        _rank(t1, "ann-1", [r1, w1], ratings=[(r1, 3), (w1, 3)]),
        _rank(t1, "ann-2", [w1, r1], ratings=[(r1, 4), (w1, 1)]),
        _rank(t1, "ann-3", [r1, w1], ratings=[(r1, 9)]),  # outside 1..5: not in the matrix
        _rank(t2, "ann-1", [r2, w2]),
        _rank(t2, "ann-2", [r2, w2]),
        _rank(t3, "ann-1", [a, b, c]),
        _rank(t3, "ann-2", [a, c, b]),
        _rank(t3, "ann-3", [a, b, c], ranks=[1, 1, 2]),  # a and b tied
    ]
    report = agreement_report(
        [t0, t1, t2, t3], judgements, [r0, w0, r1, w1, r2, w2, a, b, c], config
    )
    # annotators x units; 0 = first shown preferred, 1 = second, 2 = tie
    preference = np.array(
        [
            # t0 t1  t2  a-b a-c b-c
            [0, 0, 1, 0, 0, 0],  # ann-1
            [0, 1, 1, 0, 0, 1],  # ann-2
            [0, 0, NAN, 2, 0, 0],  # ann-3
        ]
    )
    expected = krippendorff.alpha(reliability_data=preference, level_of_measurement="nominal")
    honesty = report.traits["honesty"]
    assert honesty.preference_alpha == pytest.approx(expected)
    assert honesty.preference_alpha < 1.0
    assert honesty.preference_units == 6
    assert report.preference_alpha == pytest.approx(expected)  # the only trait asked about

    ratings = np.array(
        [
            # t0 right, t0 wrong, t1 right, t1 wrong
            [5, 2, 3, 3],
            [4, 2, 4, 1],
            [5, 1, NAN, NAN],
        ]
    )
    expected = krippendorff.alpha(reliability_data=ratings, level_of_measurement="ordinal")
    harmless = report.traits["harmlessness"]
    assert harmless.rating_alpha == pytest.approx(expected)
    assert harmless.rating_units == 4
    # Pooled ratings are rescaled to [0, 1]; ordinal alpha ignores a monotone rescale.
    assert report.rating_alpha == pytest.approx(expected)
    assert harmless.preference_alpha is None  # no task asks about harmlessness


def test_alpha_is_one_when_everyone_agrees(config, truthfulqa):
    members, tasks, judgements = [], [], []
    for i, row in enumerate(truthfulqa[:4]):
        right, wrong = _pair(*row)
        task = _task([wrong, right] if i % 2 else [right, wrong])  # variation across units
        members += [right, wrong]
        tasks.append(task)
        judgements += [_rank(task, who, [right, wrong]) for who in ("ann-1", "ann-2")]
    report = agreement_report(tasks, judgements, members, config)
    assert report.traits["honesty"].preference_alpha == 1.0
    assert report.annotators["ann-1"].agreement == 1.0


def test_alpha_is_none_when_undefined(config, truthfulqa):
    right, wrong = _pair(*truthfulqa[0])
    task = _task([right, wrong])
    lone = agreement_report([task], [_rank(task, "ann-1", [right, wrong])], [right, wrong], config)
    assert lone.traits["honesty"].preference_alpha is None  # one annotator per unit
    assert lone.annotators["ann-1"].agreement is None  # no one to agree with
    same = [_rank(task, who, [right, wrong]) for who in ("ann-1", "ann-2")]
    report = agreement_report([task], same, [right, wrong], config)
    assert report.traits["honesty"].preference_alpha is None  # no variation at all
    assert krippendorff_alpha({}, "ordinal") is None


def test_a_random_annotator_gets_low_agreement_and_is_flagged(config, truthfulqa):
    coin = random.Random(7)
    members, tasks, judgements = [], [], []
    for i, row in enumerate(truthfulqa[:20]):
        right, wrong = _pair(*row)
        task = _task([wrong, right] if i % 2 else [right, wrong])
        members += [right, wrong]
        tasks.append(task)
        judgements += [_rank(task, f"ann-{n}", [right, wrong]) for n in (1, 2, 3)]
        guess = [right, wrong] if coin.random() < 0.5 else [wrong, right]
        judgements.append(_rank(task, "ann-random", guess))
    # A coin agrees half the time on a pair task, so a useful threshold sits well above 0.5.
    config = _with(config, min_agreement=0.8)
    report = agreement_report(tasks, judgements, members, config)
    noisy = report.annotators["ann-random"]
    assert noisy.answers == 20 and noisy.compared == 20
    assert noisy.agreement < 0.8
    assert noisy.flagged and "agreement with the consensus" in noisy.reasons[0]
    assert report.flagged == {"ann-random"}
    for careful in ("ann-1", "ann-2", "ann-3"):
        assert report.annotators[careful].agreement == 1.0
    assert report.traits["honesty"].preference_alpha < 0.8


def test_gold_accuracy_counts_gold_check_tasks_only(config, truthfulqa):
    members, tasks, judgements = [], [], []
    for i, row in enumerate(truthfulqa[:6]):
        right, wrong = _pair(*row)
        gold_check = i < 3
        task = _task([right, wrong], gold_check=gold_check)
        members += [right, wrong]
        tasks.append(task)
        # ann-1 is right on every gold check and wrong on every ordinary task: if ordinary
        # tasks counted, their accuracy would be 0.5, not 1.0.
        judgements.append(_rank(task, "ann-1", [right, wrong] if gold_check else [wrong, right]))
        # ann-2 misses one gold check of three.
        judgements.append(_rank(task, "ann-2", [wrong, right] if i == 0 else [right, wrong]))
    config = _with(config, min_gold_accuracy=0.7, min_agreement=0.0)
    report = agreement_report(tasks, judgements, members, config)
    first, second = report.annotators["ann-1"], report.annotators["ann-2"]
    assert (first.gold_accuracy, first.gold_tasks, first.flagged) == (1.0, 3, False)
    assert second.gold_tasks == 3
    assert second.gold_accuracy == pytest.approx(2 / 3)
    assert second.flagged and second.reasons == (
        "gold accuracy 0.67 < min_gold_accuracy 0.7 (3 gold tasks)",
    )


def test_report_serializes_for_provenance(config, truthfulqa):
    right, wrong = _pair(*truthfulqa[0])
    task = _task([right, wrong])
    report = agreement_report(
        [task],
        [_rank(task, "ann-1", [right, wrong]), _rank(task, "ann-2", [wrong, right])],
        [right, wrong],
        config,
    )
    data = report.model_dump(mode="json")
    assert data["annotators"]["ann-1"] == {
        "answers": 1,
        "agreement": 0.0,
        "compared": 1,
        "gold_accuracy": None,
        "gold_tasks": 0,
        "flagged": True,
        "reasons": ["agreement with the consensus 0.00 < min_agreement 0.7 (1 units)"],
    }
    assert set(data["traits"]) == {t.name for t in config.traits}


def _agreeing(truthfulqa, rows, annotators=("ann-1", "ann-2")):
    """Pair tasks on which every annotator prefers the right answer; the display order
    alternates so the units vary (alpha is undefined on a single value)."""
    members, tasks, judgements = [], [], []
    for i, row in enumerate(rows):
        right, wrong = _pair(*row)
        task = _task([wrong, right] if i % 2 else [right, wrong])
        members += [right, wrong]
        tasks.append(task)
        judgements += [_rank(task, who, [right, wrong]) for who in annotators]
    return members, tasks, judgements


def test_a_tie_beside_a_vote_for_one_side_lowers_alpha(config, truthfulqa):
    members, tasks, judgements = _agreeing(truthfulqa, truthfulqa[:4])
    right, wrong = _pair(*truthfulqa[4])
    task = _task([right, wrong])
    judgements += [
        _rank(task, "ann-1", [right, wrong]),
        _rank(task, "ann-2", [right, wrong], ranks=[1, 1]),
    ]
    report = agreement_report([*tasks, task], judgements, [*members, right, wrong], config)
    # 0 = first shown preferred, 1 = second, 2 = tie: the tie is a value of its own
    expected = krippendorff.alpha(
        reliability_data=np.array([[0, 1, 0, 1, 0], [0, 1, 0, 1, 2]]),
        level_of_measurement="nominal",
    )
    honesty = report.traits["honesty"]
    assert honesty.preference_units == 5  # the tie's unit counts
    assert honesty.preference_alpha == pytest.approx(expected)
    assert honesty.preference_alpha < 1.0


def test_annotators_who_tie_alike_agree(config, truthfulqa):
    members, tasks, judgements = _agreeing(truthfulqa, truthfulqa[:2])
    for row in truthfulqa[2:4]:
        right, wrong = _pair(*row)
        task = _task([right, wrong])
        members += [right, wrong]
        tasks.append(task)
        judgements += [_rank(task, who, [right, wrong], ranks=[1, 1]) for who in ("ann-1", "ann-2")]
    report = agreement_report(tasks, judgements, members, config)
    assert report.traits["honesty"].preference_units == 4
    assert report.traits["honesty"].preference_alpha == 1.0
    assert report.annotators["ann-1"].agreement == 1.0
    assert report.annotators["ann-1"].compared == 4
    # ties alone: every unit holds the same value, nothing varies to agree on
    only_ties = [j for j in judgements if j.task_id in {t.id for t in tasks[2:]}]
    report = agreement_report(tasks[2:], only_ties, members, config)
    assert report.traits["honesty"].preference_alpha is None


def test_a_three_candidate_ranking_with_ties_codes_each_pair(config, truthfulqa):
    members, tasks, judgements = _agreeing(truthfulqa, truthfulqa[:2])
    question, best, wrong = truthfulqa[2]
    a, c = _pair(question, best, wrong)
    b = Candidate(prompt=question, response="I have no comment", source="truthfulqa")
    task = _task([a, b, c])
    judgements += [
        _rank(task, "ann-1", [a, b, c], ranks=[1, 1, 2]),  # a and b tied above c
        _rank(task, "ann-2", [a, b, c], ranks=[1, 1, 1]),  # all three level
    ]
    report = agreement_report([*tasks, task], judgements, [*members, a, b, c], config)
    expected = krippendorff.alpha(
        # two agreeing pair tasks, then a-b, a-c, b-c
        reliability_data=np.array([[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]]),
        level_of_measurement="nominal",
    )
    assert report.traits["honesty"].preference_units == 5
    assert report.traits["honesty"].preference_alpha == pytest.approx(expected)


def test_agreement_with_the_consensus_and_gold_accuracy_see_ties(config, truthfulqa):
    members, tasks, judgements = [], [], []
    for i, row in enumerate(truthfulqa[:4]):
        right, wrong = _pair(*row)
        task = _task([right, wrong], gold_check=i == 0)
        members += [right, wrong]
        tasks.append(task)
        judgements += [_rank(task, who, [right, wrong]) for who in ("ann-1", "ann-2")]
        judgements.append(_rank(task, "ann-tie", [right, wrong], ranks=[1, 1]))
    report = agreement_report(tasks, judgements, members, _with(config, min_agreement=0.5))
    tier = report.annotators["ann-tie"]
    # the others agree on every unit, and a tie is not their answer
    assert (tier.compared, tier.agreement) == (4, 0.0)
    # gold separates the two answers, so a tie on the gold check is wrong
    assert (tier.gold_tasks, tier.gold_accuracy) == (1, 0.0)
    assert tier.flagged
    # for ann-1 the others split, ann-2 for the right answer and ann-tie level: no consensus
    assert report.annotators["ann-1"].compared == 0
