"""Several annotators' answers become one preference per candidate: majority vote or
Bradley-Terry / NoisyBradleyTerry (crowd-kit) for the preference question, mean scaled rating
for rated traits.

The result is a `RankedGroup` per answered task and trait, the same record gold labels become
(see `traitforge.exports.preferences.gold_groups`), so the export's pair strategies never need to
know where a preference came from or how it was aggregated.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from itertools import combinations
from typing import Literal

import numpy as np
import pandas as pd

from traitforge.schemas import Candidate, ComparisonTask, Judgement, TraitSpec, TraitTies

Method = Literal["majority", "bradley-terry", "noisy-bradley-terry"]
TaskAnswers = dict[str, tuple[ComparisonTask, list[Judgement]]]

# Iterations of crowd-kit's optimizers: the MM algorithm of BradleyTerry converges in a few
# dozen steps on one task's handful of candidates; NoisyBradleyTerry's L-BFGS needs a budget too.
_BT_ITERATIONS = 100

# Every candidate's value in an answer that ties them all: level, in the middle of [0, 1].
TIED = 0.5


@dataclass(frozen=True)
class Votes:
    """How the annotators who saw both candidates of a pair ordered them."""

    first: int = 0  # preferred the first candidate of the (first, second) key
    second: int = 0
    ties: int = 0

    @property
    def total(self) -> int:
        return self.first + self.second + self.ties

    def flipped(self) -> Votes:
        return Votes(self.second, self.first, self.ties)


class DropCounter(Counter[str]):
    """Reasons that data did not become a pair, with counts: they go into the export report."""


@dataclass
class TieCounter:
    """Per trait, the ties among the answers to its preference question. A tie is an answer
    ("neither is better"), not unreadable data, so it is counted here and not among the drops;
    the export report carries both."""

    answers: Counter[str] = field(default_factory=Counter)
    tied: Counter[str] = field(default_factory=Counter)
    tasks: Counter[str] = field(default_factory=Counter)

    def by_trait(self) -> dict[str, TraitTies]:
        return {
            name: TraitTies(
                answers=self.answers[name], tied=self.tied[name], tasks=self.tasks[name]
            )
            for name in sorted(self.answers)
        }


@dataclass
class RankedGroup:
    """Candidates of one prompt with a preference score for one trait (higher is preferred).

    `method` says how `scores` were made, and so what a pair's confidence means: None for gold
    labels, "majority" for mean scaled ranks or ratings, "bradley-terry" for crowd-kit's BT
    strengths (positive, summing to 1 over the task), "noisy-bradley-terry" for NoisyBT's scores
    (in (0, 1), the logistic of a latent strength).
    """

    trait: TraitSpec
    prompt_id: str
    candidates: list[Candidate]
    scores: dict[str, float]
    origin: str  # "gold" or "judgements"
    votes: dict[tuple[str, str], Votes] = field(default_factory=dict)
    task_id: str | None = None
    annotators: list[str] = field(default_factory=list)
    simulated: bool = False
    scorers: list[str] = field(default_factory=list)
    method: str | None = None

    def votes_for(self, chosen_id: str, rejected_id: str) -> Votes:
        """Votes oriented so that `first` counts annotators who agreed with the chosen side."""
        if (chosen_id, rejected_id) in self.votes:
            return self.votes[(chosen_id, rejected_id)]
        return self.votes.get((rejected_id, chosen_id), Votes()).flipped()

    def confidence(self, chosen_id: str, rejected_id: str) -> float | None:
        """How sure the aggregation is that `chosen` beats `rejected`, in [0, 1].

        Gold labels are taken as certain. Majority: the share of the decisive votes (ties say
        nothing about direction, so they count for neither side; they still lower
        `agreement`). Bradley-Terry: the model's own win probability p_c / (p_c + p_r), i.e.
        exp(s_c) / (exp(s_c) + exp(s_r)) on log strengths: unlike the vote share it also uses
        the comparisons with the task's other candidates, which is why BT was chosen.
        NoisyBradleyTerry: its scores are logistic(s), and its model says P(c beats r) =
        logistic(s_c - s_r) for a reliable, unbiased annotator.
        """
        if self.origin == "gold":
            return 1.0
        c, r = self.scores[chosen_id], self.scores[rejected_id]
        if self.method == "bradley-terry":
            return c / (c + r) if c + r > 0 else None
        if self.method == "noisy-bradley-terry":
            # logistic(logit c - logit r) written without logs, so scores of exactly 0 or 1
            # (saturated floats) stay finite.
            win, loss = c * (1.0 - r), r * (1.0 - c)
            return win / (win + loss) if win + loss > 0 else None
        votes = self.votes_for(chosen_id, rejected_id)
        decisive = votes.first + votes.second
        return votes.first / decisive if decisive else None


def answers_by_task(
    tasks: Iterable[ComparisonTask],
    judgements: Iterable[Judgement],
    candidates: dict[str, Candidate],
    drops: DropCounter,
) -> TaskAnswers:
    """Judgements grouped under their task; answers to unknown tasks are dropped and counted.

    A re-check task (the label audit's doubted pair sent back) that asks what an earlier task
    asked adds its answers to that task's, as more votes; an annotator who answered both
    counts once, with the re-check answer."""
    task_by_id = {t.id: t for t in tasks}
    asked = {_asked(t): t for t in task_by_id.values() if t.reason != "recheck"}
    into = {
        t.id: asked[_asked(t)].id
        for t in task_by_id.values()
        if t.reason == "recheck" and _asked(t) in asked
    }
    answers: TaskAnswers = {}
    rechecked: dict[str, set[str]] = {}  # original task id -> annotators who re-checked it
    for judgement in judgements:
        task = task_by_id.get(judgement.task_id)
        if task is None:
            drops["judgement for a task not in the workspace"] += 1
            continue
        if task.id in into:
            task = task_by_id[into[task.id]]
            rechecked.setdefault(task.id, set()).add(judgement.annotator_id)
        answers.setdefault(task.id, (task, []))[1].append(judgement)
    for task_id, annotators in rechecked.items():
        task, task_answers = answers[task_id]
        kept = [j for j in task_answers if j.task_id != task_id or j.annotator_id not in annotators]
        if replaced := len(task_answers) - len(kept):
            drops["answer replaced by the same annotator's re-check"] += replaced
            answers[task_id] = (task, kept)
    for task, _ in answers.values():
        if any(c not in candidates for c in task.candidate_ids):
            drops["vote on a response that no longer exists"] += 1
    return answers


def _asked(task: ComparisonTask) -> tuple[str, str, frozenset[str]]:
    return task.prompt_id, task.trait, frozenset(task.candidate_ids)


def without_annotators(
    answers: TaskAnswers, annotators: Collection[str], drops: DropCounter
) -> TaskAnswers:
    """The answers minus those of `annotators` (flagged ones); each left-out answer is counted."""
    kept: TaskAnswers = {}
    for task_id, (task, task_answers) in answers.items():
        left_out = [j for j in task_answers if j.annotator_id in annotators]
        if left_out:
            drops["answer from a flagged annotator (excluded)"] += len(left_out)
        rest = [j for j in task_answers if j.annotator_id not in annotators]
        if rest:
            kept[task_id] = (task, rest)
    return kept


def annotator_values(
    judgement: Judgement,
    task: ComparisonTask,
    trait: TraitSpec,
    present: set[str],
    drops: DropCounter,
) -> dict[str, float]:
    """One annotator's preference for each candidate on `trait`, scaled to [0, 1] (1 = best).

    The ranking answers the task's own trait; ratings answer rated traits (and the task's trait
    when there is no ranking). A ranking that ties every present candidate gives each the same
    value (`TIED`), so agreement sees a tie as a value of its own (see `is_tied_answer`). An
    answer that cannot be read is dropped and counted, and gives {}.
    """
    if trait.name == task.trait and judgement.ranking:
        ranks = {r.candidate_id: r.rank for r in judgement.ranking}
        if not set(ranks) <= set(task.candidate_ids):
            drops["ranking names a candidate outside its task"] += 1
            return {}
        ranks = {c: r for c, r in ranks.items() if c in present}
        if len(ranks) < 2:
            return {}
        worst = max(ranks.values())
        best = min(ranks.values())
        if worst == best:
            return dict.fromkeys(ranks, TIED)
        return {c: (worst - r) / (worst - best) for c, r in ranks.items()}
    values = {}
    for candidate_id, ratings in judgement.ratings.items():
        if trait.name not in ratings or candidate_id not in present:
            continue
        rating = ratings[trait.name]
        if not trait.scale.contains(rating):
            drops[f"rating outside the {trait.name} scale"] += 1
            return {}
        span = trait.scale.max - trait.scale.min
        scaled = (rating - trait.scale.min) / span
        values[candidate_id] = scaled if trait.polarity == "positive" else 1.0 - scaled
    return values if len(values) >= 2 else {}


def is_tied_answer(
    judgement: Judgement, task: ComparisonTask, trait: TraitSpec, values: dict[str, float]
) -> bool:
    """Whether `values` (from `annotator_values`) are a ranking that ties every candidate.

    Only a ranking of the task's own trait can tie: equal ratings are absolute judgements of
    each candidate and stay what they were.
    """
    return (
        trait.name == task.trait
        and bool(judgement.ranking)
        and len(values) >= 2
        and len(set(values.values())) == 1
    )


@dataclass
class _Answered:
    """One task's readable answers on one trait, before aggregation."""

    task: ComparisonTask
    members: list[Candidate]
    per_annotator: dict[str, dict[str, float]]
    simulated: bool


def judgement_groups(
    answers: TaskAnswers,
    candidates: dict[str, Candidate],
    trait: TraitSpec,
    drops: DropCounter,
    method: Method = "majority",
    ties: TieCounter | None = None,
) -> list[RankedGroup]:
    """One group per answered task that asked about `trait` (ranking or per-candidate rating).

    `method` aggregates the task's preference question (its own trait). Rated traits always
    aggregate by mean scaled rating: a rating is an absolute judgement of one candidate, not a
    comparison, so there is nothing for a pairwise model to add. Invalid answers are dropped and
    counted. Answers that tie every candidate are counted in `ties` (when given); they say
    nothing about which candidate is preferred, so the pairs are those of the decisive answers.
    """
    answered = _answered(answers, candidates, trait, drops, ties or TieCounter())
    preference = [a for a in answered if a.task.trait == trait.name]
    scores: dict[str, dict[str, float]] = {}
    if method == "bradley-terry":
        scores = {a.task.id: _bradley_terry(a) for a in preference}
    elif method == "noisy-bradley-terry":
        scores = _noisy_bradley_terry(preference, drops)
    groups = []
    for a in answered:
        own = a.task.id in scores
        placed = _mean_scores(a)
        task_scores = scores[a.task.id] if own else placed
        if len(task_scores) < len(placed):
            # The pairwise models only see decisive comparisons; a candidate tied with every
            # other in every answer has no score and could only become a tie.
            drops["tie: candidate never preferred or rejected"] += 1
        if len(task_scores) < 2:
            continue
        groups.append(
            RankedGroup(
                trait=trait,
                prompt_id=a.task.prompt_id,
                candidates=[c for c in a.members if c.id in task_scores],
                scores=task_scores,
                origin="judgements",
                votes=_pairwise(a.per_annotator),
                task_id=a.task.id,
                annotators=sorted(a.per_annotator),
                simulated=a.simulated,
                scorers=sorted({s.scorer for s in a.task.suggestions}),
                method=method if own else "majority",
            )
        )
    return groups


def _answered(
    answers: TaskAnswers,
    candidates: dict[str, Candidate],
    trait: TraitSpec,
    drops: DropCounter,
    ties: TieCounter,
) -> list[_Answered]:
    out = []
    for task_id in sorted(answers):
        task, task_answers = answers[task_id]
        if trait.name != task.trait and trait.name not in task.rated_traits:
            continue
        members = [candidates[c] for c in task.candidate_ids if c in candidates]
        if len(members) < 2:
            continue
        present = {c.id for c in members}
        per_annotator: dict[str, dict[str, float]] = {}
        simulated = False
        tied = 0
        for judgement in task_answers:
            values = annotator_values(judgement, task, trait, present, drops)
            if not values:
                continue
            if trait.name == task.trait:
                ties.answers[trait.name] += 1
            if is_tied_answer(judgement, task, trait, values):
                tied += 1
            else:
                per_annotator[judgement.annotator_id] = values
                simulated = simulated or judgement.simulated
        if tied:
            ties.tied[trait.name] += tied
        if tied and not per_annotator:
            # Nobody preferred either side: the task's consensus is a tie, and no pair comes out.
            ties.tasks[trait.name] += 1
        if per_annotator:
            out.append(_Answered(task, members, per_annotator, simulated))
    return out


def _mean_scores(a: _Answered) -> dict[str, float]:
    """Mean scaled rank or rating per candidate, over the annotators who placed it."""
    scores = {}
    for c in a.members:
        placed = [v[c.id] for v in a.per_annotator.values() if c.id in v]
        if placed:
            scores[c.id] = sum(placed) / len(placed)
    return scores


def _comparisons(a: _Answered, key: str = "") -> list[tuple[str, str, str, str]]:
    """(worker, left, right, label) rows, crowd-kit's input, for the decisive pairs of answers.

    `left` is the candidate shown first (the task's order), so NoisyBT's per-worker bias really
    is a position bias. Ties cannot be expressed as a label and are left out here; they remain
    in the vote counts. `key` prefixes item ids when several tasks are fitted together.
    """
    order = {c.id: i for i, c in enumerate(a.members)}
    rows = []
    for annotator in sorted(a.per_annotator):
        values = a.per_annotator[annotator]
        for left, right in combinations(sorted(values, key=order.__getitem__), 2):
            if values[left] == values[right]:
                continue
            label = left if values[left] > values[right] else right
            rows.append((annotator, key + left, key + right, key + label))
    return rows


def _frame(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["worker", "left", "right", "label"])


def _bradley_terry(a: _Answered) -> dict[str, float]:
    """crowd-kit BradleyTerry fitted on one task: strengths comparable within the task only."""
    from crowdkit.aggregation import BradleyTerry

    rows = _comparisons(a)
    if not rows:
        return {}
    scores = BradleyTerry(n_iter=_BT_ITERATIONS).fit_predict(_frame(rows))
    return {str(item): float(score) for item, score in scores.items()}


def _noisy_bradley_terry(
    answered: list[_Answered], drops: DropCounter
) -> dict[str, dict[str, float]]:
    """crowd-kit NoisyBradleyTerry fitted on every task of the trait at once.

    One fit, not one per task, because NoisyBT's point is a skill and a position bias per
    annotator, which only become estimable across many tasks. Items are keyed by task so
    candidates of different tasks are never compared. random_state is fixed (crowd-kit's default
    0) so an export is reproducible byte for byte.
    """
    from crowdkit.aggregation import NoisyBradleyTerry

    # Items are keyed by the task's position in `answered`: task ids are the user's to choose
    # and could contain any separator.
    rows = [row for i, a in enumerate(answered) for row in _comparisons(a, key=f"{i}:")]
    if not rows:
        return {}
    model = NoisyBradleyTerry(n_iter=_BT_ITERATIONS, random_state=0)
    # crowd-kit's analytic gradient overflows exp() once a strength grows large (a unanimous
    # task); L-BFGS copes, and the scores are checked for finiteness below, so the warnings
    # would only bury real ones.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        fitted = model.fit_predict(_frame(rows))
    scores: dict[str, dict[str, float]] = {a.task.id: {} for a in answered}
    for item, score in fitted.items():
        index, candidate_id = str(item).split(":", 1)
        if math.isfinite(score):
            scores[answered[int(index)].task.id][candidate_id] = float(score)
        else:
            drops["NoisyBradleyTerry gave no finite score"] += 1
    return scores


def _pairwise(per_annotator: dict[str, dict[str, float]]) -> dict[tuple[str, str], Votes]:
    votes: dict[tuple[str, str], Votes] = {}
    for values in per_annotator.values():
        for a, b in combinations(sorted(values), 2):
            v = votes.get((a, b), Votes())
            if values[a] > values[b]:
                v = Votes(v.first + 1, v.second, v.ties)
            elif values[b] > values[a]:
                v = Votes(v.first, v.second + 1, v.ties)
            else:
                v = Votes(v.first, v.second, v.ties + 1)
            votes[(a, b)] = v
    return votes
