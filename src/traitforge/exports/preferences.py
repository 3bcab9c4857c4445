"""Per prompt and trait, how strongly each candidate is preferred: from gold labels or votes.

Both origins produce the same thing, a `RankedGroup`, so the pair strategies never need to
know where a preference came from.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations

from traitforge.schemas import Candidate, ComparisonTask, Judgement, TraitSpec


@dataclass(frozen=True)
class Votes:
    """How the annotators who saw both candidates of a pair ordered them."""

    first: int = 0  # preferred the first candidate of the (first, second) key
    second: int = 0
    ties: int = 0

    @property
    def total(self) -> int:
        return self.first + self.second + self.ties


@dataclass
class RankedGroup:
    """Candidates of one prompt with a preference score for one trait (higher is preferred)."""

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


class DropCounter(Counter[str]):
    """Reasons that data did not become a pair, with counts: they go into the export report."""


def gold_groups(candidates: Iterable[Candidate], trait: TraitSpec) -> list[RankedGroup]:
    """One group per prompt, from the candidates that carry a gold value for `trait`."""
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if trait.name in candidate.gold:
            by_prompt[candidate.prompt_id].append(candidate)
    return [
        RankedGroup(
            trait=trait,
            prompt_id=prompt_id,
            candidates=members,
            origin="gold",
            scores={c.id: trait.preference(c.gold[trait.name]) for c in members},
        )
        for prompt_id, members in sorted(by_prompt.items())
    ]


def answers_by_task(
    tasks: Iterable[ComparisonTask],
    judgements: Iterable[Judgement],
    candidates: dict[str, Candidate],
    drops: DropCounter,
) -> dict[str, tuple[ComparisonTask, list[Judgement]]]:
    """Judgements grouped under their task; answers to unknown tasks are dropped and counted."""
    task_by_id = {t.id: t for t in tasks}
    answers: dict[str, tuple[ComparisonTask, list[Judgement]]] = {}
    for judgement in judgements:
        task = task_by_id.get(judgement.task_id)
        if task is None:
            drops["judgement for a task not in the workspace"] += 1
            continue
        answers.setdefault(task.id, (task, []))[1].append(judgement)
    for task, _ in answers.values():
        if any(c not in candidates for c in task.candidate_ids):
            drops["vote on a response that no longer exists"] += 1
    return answers


def judgement_groups(
    answers: dict[str, tuple[ComparisonTask, list[Judgement]]],
    candidates: dict[str, Candidate],
    trait: TraitSpec,
    drops: DropCounter,
) -> list[RankedGroup]:
    """One group per answered task that asked about `trait` (ranking or per-candidate rating).

    Each annotator's answer becomes a value in [0, 1] per candidate (1 = most preferred); a
    candidate's score is the mean over annotators. Invalid answers are dropped and counted.
    """
    groups = []
    for task_id in sorted(answers):
        task, task_answers = answers[task_id]
        if trait.name != task.trait and trait.name not in task.rated_traits:
            continue
        members = [candidates[c] for c in task.candidate_ids if c in candidates]
        if len(members) < 2:
            continue
        per_annotator: dict[str, dict[str, float]] = {}
        used: list[Judgement] = []
        for judgement in task_answers:
            values = _values(judgement, task, trait, {c.id for c in members}, drops)
            if values:
                per_annotator[judgement.annotator_id] = values
                used.append(judgement)
        if not per_annotator:
            continue
        scores = {
            c.id: sum(v[c.id] for v in per_annotator.values() if c.id in v)
            / max(1, sum(1 for v in per_annotator.values() if c.id in v))
            for c in members
            if any(c.id in v for v in per_annotator.values())
        }
        groups.append(
            RankedGroup(
                trait=trait,
                prompt_id=task.prompt_id,
                candidates=[c for c in members if c.id in scores],
                scores=scores,
                origin="judgements",
                votes=_pairwise(per_annotator),
                task_id=task.id,
                annotators=sorted(per_annotator),
                simulated=any(j.simulated for j in used),
                scorers=sorted({s.scorer for s in task.suggestions}),
            )
        )
    return groups


def _values(
    judgement: Judgement,
    task: ComparisonTask,
    trait: TraitSpec,
    present: set[str],
    drops: DropCounter,
) -> dict[str, float]:
    """One annotator's preference for each candidate, scaled to [0, 1]."""
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
            drops["ranking ties every candidate"] += 1
            return {}
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
