"""The prompts open for selection: which can still get a task, and why the others cannot.

Counted from what selection is given (eligible candidates, the tasks asked so far, the
selection config), so that `curate` and the loop can say why a round got fewer tasks than
its budget without reading the selector's internals.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from traitforge.schemas import Candidate, ComparisonTask, SelectionConfig


@dataclass(frozen=True)
class PromptPool:
    """The prompts with eligible candidates, and why those that can get no task cannot."""

    prompts: int
    too_few: int  # fewer eligible candidates than a task shows (k)
    full: int  # tasks_per_prompt tasks already
    asked: int  # every group of k eligible candidates asked already
    k: int
    tasks_per_prompt: int

    @property
    def open(self) -> int:
        return self.prompts - self.too_few - self.full - self.asked

    @classmethod
    def count(
        cls,
        eligible: Sequence[Candidate],
        existing: Sequence[ComparisonTask],
        selection: SelectionConfig,
    ) -> PromptPool:
        """Each prompt is counted once, under the first reason that closes it."""
        members: dict[str, set[str]] = defaultdict(set)
        for c in eligible:
            members[c.prompt_id].add(c.id)
        used: Counter[str] = Counter(t.prompt_id for t in existing)
        asked: dict[str, set[frozenset[str]]] = defaultdict(set)
        for t in existing:
            if len(set(t.candidate_ids)) == selection.k:
                asked[t.prompt_id].add(frozenset(t.candidate_ids))
        too_few = full = exhausted = 0
        for prompt, ids in members.items():
            if len(ids) < selection.k:
                too_few += 1
            elif used[prompt] >= selection.tasks_per_prompt:
                full += 1
            elif sum(g <= ids for g in asked[prompt]) >= math.comb(len(ids), selection.k):
                exhausted += 1
        return cls(len(members), too_few, full, exhausted, selection.k, selection.tasks_per_prompt)

    def note(self, wanted: int) -> str | None:
        """What to tell when fewer prompts are open than tasks are wanted; None otherwise."""
        if self.open >= wanted:
            return None
        if not self.prompts:
            return (
                "no open prompt left: no candidate is eligible (each is flagged or a "
                "same-prompt duplicate); ingest or generate more candidates"
            )
        closed = [
            f"{n} {'has' if n == 1 else 'have'} {what}"
            for n, what in (
                (self.too_few, f"fewer than k ({self.k}) eligible candidates"),
                (
                    self.full,
                    f"curation.selection.tasks_per_prompt ({self.tasks_per_prompt}) tasks already",
                ),
                (self.asked, f"every group of {self.k} candidates asked already"),
            )
            if n
        ]
        why = f"of the {plural(self.prompts, 'prompt')} with eligible candidates, " + (
            " and ".join(closed) if len(closed) < 3 else f"{closed[0]}, {closed[1]} and {closed[2]}"
        )
        if self.open:
            short = f"only {plural(self.open, 'prompt')} open for {wanted} tasks wanted"
            return f"{short}: {why}" if closed else short
        fixes = ["ingest or generate more candidates"]
        if self.full:
            fixes.append("raise curation.selection.tasks_per_prompt")
        if self.too_few and self.k > 2:
            fixes.append("lower curation.selection.k")
        return f"no open prompt left: {why}; " + ", or ".join(fixes)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
