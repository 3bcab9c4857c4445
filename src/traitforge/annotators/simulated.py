"""Simulated annotators: answer comparison tasks from gold labels (or an answer key), with
known biases.

For demos, tests and benchmarks only. A backend lets them answer through the same interface
as people (Argilla's: `traitforge.annotators.argilla.simulate`); benchmarks call them offline.

Usernames start with `SIMULATED_PREFIX` ("sim-"): a pull marks every judgement from such an
account simulated=True, so simulated votes can always be told from human ones.

Behaviour per (annotator, task), drawn from a generator seeded by (seed, username, task id),
so answers do not depend on the order in which records arrive: with probability
`position_bias` pick the first response shown; else with `length_bias` the longest; else with
`noise` a random answer; else the gold answer (random when the task's candidates lack gold).
Ratings, where gold exists, are the gold value on the trait's scale (random with `noise`).
With an answer key (`traitforge.annotators.answer_key`) its values take gold's place, with
the same behaviour; a task the key lacks a value for is not answered at all (see `knows`).
Answers are response values in the question layout of `traitforge.annotators.records`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from traitforge.annotators.answer_key import AnswerKey, rating
from traitforge.annotators.backends import SIMULATED_PREFIX, is_simulated
from traitforge.annotators.records import (
    PREFERENCE,
    RANKING,
    RATIONALE,
    TIE,
    DatasetLayout,
    rating_question,
    response_field,
    scale_value,
)
from traitforge.schemas import Candidate, ComparisonTask, SimulationConfig, TraitSpec
from traitforge.schemas.hashing import content_hash


def gold_rating(trait: TraitSpec, gold: float) -> int:
    """A gold value as a point on the trait's scale: values in [0, 1] (booleans, shares)
    are spread over the scale, others are taken as scale points and clamped."""
    if 0.0 <= gold <= 1.0:
        return scale_value(trait, gold)
    return int(min(max(round(gold), trait.scale.min), trait.scale.max))


class SimulatedAnnotator:
    """Answers one task as one simulated annotator would; no I/O."""

    def __init__(
        self,
        username: str,
        config: SimulationConfig,
        traits: Mapping[str, TraitSpec],
        answers: AnswerKey | None = None,
    ) -> None:
        if not is_simulated(username):
            raise ValueError(
                f"simulated annotators need usernames starting with {SIMULATED_PREFIX!r} "
                f"(got {username!r}), "
                "so that their answers are marked simulated when pulled"
            )
        self.username = username
        self.config = config
        self.traits = traits
        self.answers = answers

    def _truth(self, candidate: Candidate) -> Mapping[str, float]:
        return self.answers.values(candidate) if self.answers else candidate.gold

    def _rating(self, trait: TraitSpec, value: float) -> int:
        return rating(trait, value) if self.answers else gold_rating(trait, value)

    def knows(self, task: ComparisonTask, members: Sequence[Candidate]) -> bool:
        """Whether it may answer: always from gold (a task without gold gets a random
        answer, as a benchmark expects); from an answer key only when the key holds every
        candidate's value on the task's trait, so no answer is invented."""
        return self.answers is None or self.answers.covers(task.trait, members)

    def answer(
        self,
        task: ComparisonTask,
        order: Sequence[str],
        candidates: Mapping[str, Candidate],
        layout: DatasetLayout,
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """(Argilla response values, the behaviour that produced the preference)."""
        rng = random.Random(content_hash(self.config.seed, self.username, task.id))
        members = [candidates[c] for c in order]
        trait = self.traits[task.trait]
        gold = [self._truth(c).get(task.trait) for c in members]
        # scores: higher is preferred; equal scores are a tie
        if rng.random() < self.config.position_bias:
            why, scores = "position", [-float(i) for i in range(len(members))]
        elif rng.random() < self.config.length_bias:
            why, scores = "length", [float(len(c.response)) for c in members]
        elif rng.random() < self.config.noise or any(g is None for g in gold):
            why = "noise" if all(g is not None for g in gold) else "no gold"
            scores = [rng.random() for _ in members]
        else:
            why = "answer key" if self.answers else "gold"
            scores = [trait.preference(float(g)) for g in gold if g is not None]
        values: dict[str, dict[str, Any]] = {}
        if layout.k == 2:
            label = TIE if scores[0] == scores[1] else ("A" if scores[0] > scores[1] else "B")
            values[PREFERENCE] = {"value": label}
        else:
            distinct = sorted(set(scores), reverse=True)
            values[RANKING] = {
                "value": [
                    {"value": response_field(i), "rank": distinct.index(s) + 1}
                    for i, s in enumerate(scores)
                ]
            }
        asked = {t for t in (task.trait, *task.rated_traits) if t in layout.rated_traits}
        for name in sorted(asked):
            spec = self.traits[name]
            for i, candidate in enumerate(members):
                known = self._truth(candidate)
                if name not in known:
                    continue
                point = self._rating(spec, known[name])
                if rng.random() < self.config.noise:
                    point = rng.randint(spec.scale.min, spec.scale.max)
                values[rating_question(name, i)] = {"value": point}
        values[RATIONALE] = {"value": f"simulated answer ({why})"}
        return values, why


def assignees(task_id: str, usernames: Sequence[str], needed: int, seed: int) -> list[str]:
    """The `needed` simulated annotators who answer a task: a hash-ordered draw."""
    return sorted(usernames, key=lambda u: content_hash(seed, "assign", task_id, u))[:needed]
