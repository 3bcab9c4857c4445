"""Which pairs the loop's reward model is evaluated on (loop.evaluate_on), and what to say
when a trained trait has none.

Every candidate set is of held-out prompts: the export splits by prompt, and held-out gold
pairs are those of the export's test prompts, so no model trained on the export has seen
them. A workspace of a team's own data usually has no gold; 'auto' then evaluates on the
annotators' pairs of those prompts, and the round says which it used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from traitforge.reward.pairs import RewardPair

GOLD = "gold"
JUDGED = "held-out judgements"
EXPORT = "export"
MORE_TEST_PROMPTS = "raise export.test_fraction or annotate more prompts"
# Why a trait has nothing to be evaluated on, per loop.evaluate_on, with what to do.
NOTHING_TO_EVALUATE = {
    "auto": f"no gold labels and no annotated test prompts: {MORE_TEST_PROMPTS}",
    "gold": "no gold labels on the test prompts (loop.evaluate_on: gold): set "
    "loop.evaluate_on to 'auto' to evaluate on annotated test prompts instead",
    "judgements": "no annotated test prompts (loop.evaluate_on: judgements): " + MORE_TEST_PROMPTS,
    "export": "no pairs in the export's test split (loop.evaluate_on: export): "
    + MORE_TEST_PROMPTS,
}


@dataclass(frozen=True)
class HeldOutPairs:
    """The evaluation pairs, by where they came from (GOLD, JUDGED or EXPORT)."""

    mode: str  # loop.evaluate_on
    parts: dict[str, list[RewardPair]]

    @property
    def pairs(self) -> list[RewardPair]:
        return [p for part in self.parts.values() for p in part]

    def counts(self, traits: set[str] | None) -> dict[str, int]:
        """Source -> pairs of the `traits` that have a model (None: every pair counts)."""
        counts = {
            name: sum(1 for p in part if traits is None or p.trait in traits)
            for name, part in self.parts.items()
        }
        return {name: n for name, n in counts.items() if n}

    def note(self, traits: set[str] | None) -> str | None:
        """Why some trained traits (None: one model for every pair) have no test pair, and
        what to do; None when each has some."""
        reason = NOTHING_TO_EVALUATE[self.mode]
        if not self.counts(traits):
            return reason
        missing = sorted((traits or set()) - {p.trait for p in self.pairs if p.trait})
        return f"not evaluated on {', '.join(missing)}: {reason}" if missing else None


def choose_held_out(
    mode: str,
    gold: Callable[[], Sequence[RewardPair]],
    test_split: Sequence[RewardPair],
    keep: Callable[[RewardPair], bool],
) -> HeldOutPairs:
    """The pairs `mode` (loop.evaluate_on) names. `gold`: the held-out gold pairs, built only
    when asked for; `test_split`: the export's test split; `keep`: training's filter
    (loop.train_on), which 'export' applies as training does."""
    judged = [p for p in test_split if p.origin == "judgements"]
    if mode == "export":
        return HeldOutPairs(mode, {EXPORT: [p for p in test_split if keep(p)]})
    if mode == "judgements":
        return HeldOutPairs(mode, {JUDGED: judged})
    held_out_gold = list(gold())
    if mode == "gold":
        return HeldOutPairs(mode, {GOLD: held_out_gold})
    # auto: a trait's gold where it has any (more pairs, and not the annotators' own
    # noise), its annotators' pairs where it has none
    with_gold = {p.trait for p in held_out_gold}
    return HeldOutPairs(
        mode, {GOLD: held_out_gold, JUDGED: [p for p in judged if p.trait not in with_gold]}
    )
