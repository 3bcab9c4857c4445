"""How a round's budget is split between traits (`curation.selection.trait_budget`).

Without a split, selection ranks every open prompt together, so the trait with the most
prompts (TruthfulQA's honesty, in the bundled data) takes nearly the whole budget and the
others never get enough pairs for a reward model of their own. Each trait instead gets a
share: equal across the traits that have open prompts (the default), proportional to their
open prompts, or explicit weights. A share a trait cannot use, as it has fewer open prompts
or nothing worth asking, goes to the traits that still can (`allocate` is called again on
what is left).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from traitforge.curation.pool import plural

# "equal" | "proportional" | {trait: weight}
Rule = str | Mapping[str, float]


def allocate(rule: Rule, total: int, capacity: Mapping[str, int]) -> dict[str, int]:
    """Split `total` tasks between traits, none above its capacity (its open prompts).

    Shares follow the rule's weights among the traits that still have room; integer parts
    first, then the largest remainders (ties by trait name), again and again while a capped
    trait leaves part of the total to the others. Traits of weight 0 get nothing.
    """
    weights = _weights(rule, capacity)
    given = dict.fromkeys(capacity, 0)
    left = max(total, 0)
    while left > 0:
        room = {t: capacity[t] - given[t] for t in capacity if weights[t] > 0}
        active = sorted(t for t, r in room.items() if r > 0)
        if not active:
            break
        weight_sum = sum(weights[t] for t in active)
        exact = {t: left * weights[t] / weight_sum for t in active}
        step = {t: min(math.floor(exact[t]), room[t]) for t in active}
        spare = left - sum(step.values())
        for t in sorted(active, key=lambda t: (-(exact[t] - math.floor(exact[t])), t)):
            if spare == 0:
                break
            if step[t] < room[t]:
                step[t] += 1
                spare -= 1
        for t, n in step.items():
            given[t] += n
        left -= sum(step.values())
    return given


def _weights(rule: Rule, capacity: Mapping[str, int]) -> dict[str, float]:
    if rule == "equal":
        return {t: 1.0 for t in capacity}
    if rule == "proportional":
        return {t: float(n) for t, n in capacity.items()}
    if isinstance(rule, Mapping):
        return {t: float(rule.get(t, 0.0)) for t in capacity}
    raise ValueError(f"unknown trait budget rule {rule!r}")


def describe(rule: Rule) -> str:
    """The rule as `curate` prints it."""
    if rule == "equal":
        return "equal shares"
    if rule == "proportional":
        return "proportional to open prompts"
    if isinstance(rule, Mapping):
        return "weights " + ", ".join(f"{t} {w:g}" for t, w in sorted(rule.items()))
    return str(rule)


@dataclass
class TraitShare:
    """What one trait got in a round's selection, and why it got less than its share."""

    trait: str
    open_prompts: int  # prompts of this trait that could still get a task
    share: int  # its first allocation of the round's budget
    selected: int = 0  # tasks it got, gold checks and any share passed on to it included
    note: str | None = None  # why it got fewer than its share

    def line(self) -> str:
        text = f"{self.trait}: {self.selected} of a share of {self.share}"
        text += f" ({plural(self.open_prompts, 'open prompt')})"
        if self.note:
            text += f"; {self.note}"
        return text


def shortfall_note(share: TraitShare, left_open: int) -> str | None:
    """Why a trait selected fewer tasks than its share (None when it did not); `left_open`:
    its open prompts that got no task."""
    if share.selected >= share.share:
        return None
    if not left_open:
        return "it ran out of open prompts; the other traits took the rest"
    return (
        f"nothing in its other {plural(left_open, 'open prompt')} was worth asking; the other "
        "traits took the rest"
    )
