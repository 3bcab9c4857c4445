"""The trait judge against the annotators: per trait, how often the judge orders a pair of
candidates as the annotators' majority does.

Only the tasks' own preference question counts (the trait each task asks about); a pair whose
votes split evenly, or whose answers tied, has no majority to agree with and is counted apart,
as is a pair the judge rated level or did not rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

from traitforge.annotators.aggregation import DropCounter, TaskAnswers, annotator_values
from traitforge.curation.scorers.judge import KEY
from traitforge.schemas import (
    Candidate,
    JudgeAgreement,
    Scores,
    TraitJudgeAgreement,
    TraitSpec,
)

Z_95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z_95) -> list[float] | None:
    """The Wilson score interval of a binomial share: sound at 0/n and n/n, unlike +-2 SE."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def judge_scores(scores: Iterable[Scores], key: str = KEY) -> dict[tuple[str, str], float]:
    """(candidate id, trait) -> the judge's score (higher is preferred)."""
    return {(s.candidate_id, s.trait): s.score for s in scores if s.scorer == key}


def judge_agreement(
    answers: TaskAnswers,
    candidates: Mapping[str, Candidate],
    traits: Sequence[TraitSpec],
    judged: Mapping[tuple[str, str], float],
    key: str = KEY,
) -> JudgeAgreement | None:
    """None when the judge scored nothing or no task was answered."""
    if not judged or not answers:
        return None
    specs = {t.name: t for t in traits}
    counts: dict[str, dict[str, int]] = {}
    scratch = DropCounter()  # unreadable answers are counted by the export's own pass
    for task, task_answers in answers.values():
        trait = specs.get(task.trait)
        if trait is None:
            continue
        tally = counts.setdefault(trait.name, dict.fromkeys(_FIELDS, 0))
        present = {c for c in task.candidate_ids if c in candidates}
        values = [annotator_values(j, task, trait, present, scratch) for j in task_answers]
        for a, b in combinations(sorted(present), 2):
            first = sum(1 for v in values if a in v and b in v and v[a] > v[b])
            second = sum(1 for v in values if a in v and b in v and v[b] > v[a])
            if not any(a in v and b in v for v in values):
                continue
            if first == second:
                tally["annotator_ties"] += 1
                continue
            if (a, trait.name) not in judged or (b, trait.name) not in judged:
                tally["unscored"] += 1
                continue
            margin = judged[(a, trait.name)] - judged[(b, trait.name)]
            if margin == 0:
                tally["judge_ties"] += 1
                continue
            tally["compared"] += 1
            tally["agreed"] += (margin > 0) == (first > second)
    return JudgeAgreement(
        scorer=key,
        traits={
            name: TraitJudgeAgreement(
                **t,
                share=t["agreed"] / t["compared"] if t["compared"] else None,
                share_ci=wilson_interval(t["agreed"], t["compared"]),
            )
            for name, t in sorted(counts.items())
        },
    )


_FIELDS = ("compared", "agreed", "annotator_ties", "judge_ties", "unscored")
