"""Aggregation of several annotators' answers: majority, Bradley-Terry, NoisyBradleyTerry."""

from __future__ import annotations

import csv

import pytest

from traitforge.annotators.aggregation import (
    DropCounter,
    TieCounter,
    answers_by_task,
    judgement_groups,
    without_annotators,
)
from traitforge.exports.strategies import pairs_from_group
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    Judgement,
    RankedCandidate,
    RatingScale,
    TraitSpec,
    TraitTies,
)

METHODS = ["majority", "bradley-terry", "noisy-bradley-terry"]


@pytest.fixture(scope="module")
def truthfulqa(data_dir):
    """(question, best answer, first incorrect answer) from the bundled TruthfulQA."""
    with (data_dir / "truthfulqa" / "TruthfulQA.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))[:8]
    return [(r["Question"], r["Best Answer"], r["Incorrect Answers"].split(";")[0]) for r in rows]


def _candidates(question, *responses, trait="honesty", gold=None):
    return [
        Candidate(
            prompt=question,
            response=r,
            source="truthfulqa",
            gold={trait: gold[i]} if gold else {},
        )
        for i, r in enumerate(responses)
    ]


def _task(members, trait="honesty", **extra):
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait=trait,
        reason="uncertainty",
        **extra,
    )


def _ranking(task, who, order, simulated=False):
    return Judgement(
        task_id=task.id,
        annotator_id=who,
        simulated=simulated,
        ranking=[RankedCandidate(candidate_id=c.id, rank=i + 1) for i, c in enumerate(order)],
    )


def _ranks(task, who, shown, ranks):
    """A ranking with the given ranks (equal ranks tie) of the candidates as shown."""
    return Judgement(
        task_id=task.id,
        annotator_id=who,
        ranking=[
            RankedCandidate(candidate_id=c.id, rank=r) for c, r in zip(shown, ranks, strict=True)
        ],
    )


def _pairs(tasks, judgements, members, trait, method, strategy="all-pairs", ties=None):
    drops = DropCounter()
    candidates = {c.id: c for c in members}
    answers = answers_by_task(tasks, judgements, candidates, drops)
    groups = judgement_groups(answers, candidates, trait, drops, method=method, ties=ties)
    pairs = [p for g in groups for p in pairs_from_group(g, strategy, drops)]
    return pairs, drops, groups


def _clear_majority(truthfulqa):
    """Four pair tasks (one decided 2-1, the rest 3-0) and one unanimous 3-candidate task."""
    members, tasks, judgements, expected = [], [], [], set()
    for i, (question, best, wrong) in enumerate(truthfulqa[:4]):
        right_c, wrong_c = _candidates(question, best, wrong)
        # The display order alternates so that a position bias cannot pass for a preference.
        shown = [wrong_c, right_c] if i % 2 else [right_c, wrong_c]
        task = _task(shown)
        members += shown
        tasks.append(task)
        expected.add((right_c.id, wrong_c.id))
        for who in ("ann-1", "ann-2", "ann-3"):
            dissent = who == "ann-3" and i == 1
            judgements.append(
                _ranking(task, who, [wrong_c, right_c] if dissent else [right_c, wrong_c])
            )
    question, best, wrong = truthfulqa[4]
    middle = "I have no comment"
    a, b, c = _candidates(question, best, middle, wrong)
    task = _task([c, a, b])
    members += [a, b, c]
    tasks.append(task)
    judgements += [_ranking(task, who, [a, b, c]) for who in ("ann-1", "ann-2", "ann-3")]
    expected |= {(a.id, b.id), (a.id, c.id), (b.id, c.id)}
    return members, tasks, judgements, expected


@pytest.mark.parametrize("method", METHODS)
def test_methods_agree_on_a_clear_majority(config, truthfulqa, method):
    members, tasks, judgements, expected = _clear_majority(truthfulqa)
    pairs, drops, groups = _pairs(tasks, judgements, members, config.trait("honesty"), method)
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == expected
    assert all(0.5 < p.confidence <= 1.0 for p in pairs), [p.confidence for p in pairs]
    assert all(p.origin == "judgements" and p.votes == 3 for p in pairs)
    assert {g.method for g in groups} == {method}
    assert not drops


@pytest.mark.parametrize("method", ["majority", "bradley-terry"])
def test_confidence_of_a_two_to_one_vote_is_two_thirds(config, truthfulqa, method):
    # For one pair the BT win probability p_c / (p_c + p_r) is exactly the vote share.
    question, best, wrong = truthfulqa[5]
    right_c, wrong_c = _candidates(question, best, wrong)
    task = _task([right_c, wrong_c])
    judgements = [
        _ranking(task, "ann-1", [right_c, wrong_c]),
        _ranking(task, "ann-2", [right_c, wrong_c]),
        _ranking(task, "ann-3", [wrong_c, right_c]),
    ]
    [pair], _, _ = _pairs([task], judgements, [right_c, wrong_c], config.trait("honesty"), method)
    assert pair.chosen_id == right_c.id
    assert pair.confidence == pytest.approx(2 / 3)
    assert pair.agreement == pytest.approx(2 / 3)


@pytest.mark.parametrize("method", METHODS)
def test_an_even_split_is_a_tie_dropped_and_counted(config, truthfulqa, method):
    members, tasks, judgements, expected = _clear_majority(truthfulqa)
    question, best, wrong = truthfulqa[6]
    right_c, wrong_c = _candidates(question, best, wrong)
    split = _task([right_c, wrong_c])
    judgements += [
        _ranking(split, "ann-1", [right_c, wrong_c]),
        _ranking(split, "ann-2", [wrong_c, right_c]),
    ]
    pairs, drops, _ = _pairs(
        [*tasks, split], judgements, [*members, right_c, wrong_c], config.trait("honesty"), method
    )
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == expected  # nothing from the split
    [(reason, count)] = drops.items()
    assert reason.startswith("tie") and count == 1


@pytest.mark.parametrize("method", METHODS)
def test_a_tie_is_an_answer_counted_apart_and_the_pairs_stay_as_they_were(
    config, truthfulqa, method
):
    members, tasks, judgements, _ = _clear_majority(truthfulqa)
    honesty = config.trait("honesty")
    question, best, wrong = truthfulqa[5]
    right_c, wrong_c = _candidates(question, best, wrong)
    two_to_tie = _task([right_c, wrong_c])  # 2 prefer the right answer, 1 ties
    question, best, wrong = truthfulqa[6]
    left_c, other_c = _candidates(question, best, wrong)
    all_tie = _task([left_c, other_c])  # nobody prefers either
    decisive = [
        _ranking(two_to_tie, "ann-1", [right_c, wrong_c]),
        _ranking(two_to_tie, "ann-2", [right_c, wrong_c]),
    ]
    tied = [
        _ranks(two_to_tie, "ann-3", [right_c, wrong_c], [1, 1]),
        _ranks(all_tie, "ann-1", [left_c, other_c], [1, 1]),
        _ranks(all_tie, "ann-2", [other_c, left_c], [1, 1]),
    ]
    everyone = [*members, right_c, wrong_c, left_c, other_c]
    before, _, _ = _pairs([*tasks, two_to_tie], judgements + decisive, everyone, honesty, method)
    ties = TieCounter()
    pairs, drops, groups = _pairs(
        [*tasks, two_to_tie, all_tie],
        judgements + decisive + tied,
        everyone,
        honesty,
        method,
        ties=ties,
    )
    # The tie says nothing about direction: the same pairs, confidences and votes as without it.
    assert pairs == before
    assert (right_c.id, wrong_c.id) in {(p.chosen_id, p.rejected_id) for p in pairs}
    assert all_tie.id not in {g.task_id for g in groups}
    assert not drops  # a tie is not waste
    # 15 answers of the clear-majority tasks, 3 on the 2-to-tie task, 2 on the all-tie one
    assert ties.by_trait() == {"honesty": TraitTies(answers=20, tied=3, tasks=1)}
    assert ties.by_trait()["honesty"].share == pytest.approx(3 / 20)


def test_only_a_ranking_that_ties_every_candidate_counts_as_a_tie(config, truthfulqa):
    question, best, wrong = truthfulqa[7]
    a, b, c = _candidates(question, best, "I have no comment", wrong)
    task = _task([a, b, c], rated_traits=["harmlessness"])
    judgements = [
        _ranks(task, "ann-1", [a, b, c], [1, 1, 2]),  # partial: c below a and b
        _ranks(task, "ann-2", [a, b, c], [2, 2, 2]),  # every candidate level
        Judgement(  # level ratings are absolute judgements of each, not a tie
            task_id=task.id,
            annotator_id="ann-3",
            ratings={x.id: {"harmlessness": 3} for x in (a, b, c)},
        ),
    ]
    ties = TieCounter()
    pairs, drops, [group] = _pairs(
        [task], judgements, [a, b, c], config.trait("honesty"), "majority", ties=ties
    )
    assert group.annotators == ["ann-1"]
    assert {(p.chosen_id, p.rejected_id) for p in pairs} == {(a.id, c.id), (b.id, c.id)}
    assert drops == {"tie: equal preference": 1}  # a and b within the partial tie, as before
    assert ties.by_trait() == {"honesty": TraitTies(answers=2, tied=1, tasks=0)}
    rated_ties = TieCounter()
    _, _, [rated] = _pairs(
        [task], judgements, [a, b, c], config.trait("harmlessness"), "majority", ties=rated_ties
    )
    assert rated.annotators == ["ann-3"]  # as before: the ratings make the group
    assert rated_ties.by_trait() == {}


def test_majority_drops_a_pair_its_own_voters_reject(config, truthfulqa):
    # 3 annotators rank a > b > c > d, 2 rank b > c > d > a: by mean rank b comes first, but
    # a beats b 3 to 2. Majority vote must not emit "b over a".
    question, best, wrong = truthfulqa[7]
    a, b, c, d = _candidates(question, best, "I have no comment", wrong, "Nobody knows")
    task = _task([a, b, c, d])
    judgements = [_ranking(task, f"ann-{i}", [a, b, c, d]) for i in range(3)]
    judgements += [_ranking(task, f"ann-{i}", [b, c, d, a]) for i in range(3, 5)]
    pairs, drops, [group] = _pairs(
        [task], judgements, [a, b, c, d], config.trait("honesty"), "majority"
    )
    assert group.scores[b.id] > group.scores[a.id]
    assert (b.id, a.id) not in {(p.chosen_id, p.rejected_id) for p in pairs}
    assert (a.id, b.id) not in {(p.chosen_id, p.rejected_id) for p in pairs}
    assert drops == {"majority of votes prefers the rejected side": 1}
    assert len(pairs) == 5


def test_ratings_aggregate_by_mean_scaled_rating_with_polarity(truthfulqa):
    # A negative trait: a high sycophancy rating is *not* preferred.
    sycophancy = TraitSpec(
        name="sycophancy",
        description="Telling the user what they want to hear.",
        guidelines="Rate 1 (none) to 7 (flattery over truth).",
        scale=RatingScale(min=1, max=7),
        polarity="negative",
    )
    question, best, wrong = truthfulqa[0]
    right_c, wrong_c = _candidates(question, best, wrong)
    task = _task([right_c, wrong_c], rated_traits=["sycophancy"])
    judgements = [
        Judgement(
            task_id=task.id,
            annotator_id="ann-1",
            ratings={right_c.id: {"sycophancy": 1}, wrong_c.id: {"sycophancy": 7}},
        ),
        Judgement(
            task_id=task.id,
            annotator_id="ann-2",
            ratings={right_c.id: {"sycophancy": 2}, wrong_c.id: {"sycophancy": 5}},
        ),
        Judgement(  # outside the 1..7 scale: dropped and counted, not clipped
            task_id=task.id,
            annotator_id="ann-3",
            ratings={right_c.id: {"sycophancy": 9}, wrong_c.id: {"sycophancy": 1}},
        ),
    ]
    # Even with bradley-terry configured, a rated trait aggregates by mean scaled rating.
    [pair], drops, [group] = _pairs(
        [task], judgements, [right_c, wrong_c], sycophancy, "bradley-terry"
    )
    assert group.method == "majority"
    assert group.scores == pytest.approx({right_c.id: (1 + 5 / 6) / 2, wrong_c.id: (0 + 2 / 6) / 2})
    assert (pair.chosen_id, pair.rejected_id, pair.votes) == (right_c.id, wrong_c.id, 2)
    assert drops == {"rating outside the sycophancy scale": 1}


def test_without_annotators_counts_every_left_out_answer(config, truthfulqa):
    members, tasks, judgements, _ = _clear_majority(truthfulqa)
    drops = DropCounter()
    answers = answers_by_task(tasks, judgements, {c.id: c for c in members}, drops)
    kept = without_annotators(answers, {"ann-3"}, drops)
    assert drops == {"answer from a flagged annotator (excluded)": 5}
    assert all(j.annotator_id != "ann-3" for _, js in kept.values() for j in js)
    assert sum(len(js) for _, js in kept.values()) == 10
