"""The demo's last table: one row per trait's reward model, readable in an 80-column terminal."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from traitforge.cli import render
from traitforge.reward.evaluation import evaluate
from traitforge.reward.pairs import RewardPair
from traitforge.schemas import LoopRound
from traitforge.schemas.results import TrainingSummary


def longer_is_better(prompts, responses, traits):
    return np.array([float(len(r)) for r in responses])


def _pairs(trait: str, n: int, chosen_longer: int) -> list[RewardPair]:
    """n pairs of which `chosen_longer` have the longer response chosen."""
    long, short = "a long and careful answer", "no"
    return [
        RewardPair(
            f"q{trait}{i}", *((long, short) if i < chosen_longer else (short, long)), trait=trait
        )
        for i in range(n)
    ]


def test_every_trait_gets_a_whole_row_with_its_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = (
        _pairs("corrigibility", 40, 40)  # the reward is always right
        + _pairs("harmlessness", 40, 20)  # a coin flip
        + _pairs("honesty", 12, 12)  # too few test pairs for an interval
    )
    evaluation = evaluate(longer_is_better, pairs, bootstrap_samples=200)
    training = {
        t: TrainingSummary(pairs=p, epochs=3.0, steps=60, seconds=1.0)
        for t, p in (("corrigibility", 71), ("harmlessness", 65), ("honesty", 61))
    }
    record = LoopRound(round=2, evaluation=evaluation, training=training)
    console = Console(width=80, record=True, markup=False)
    monkeypatch.setattr(render, "console", console)
    render.print_trait_models(record)
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    # a row's cells wrap onto the lines below it, up to the next trait's row or the table's end
    starts = [next(i for i, line in enumerate(lines) if f"│ {t} " in line) for t in training]
    blocks = dict(zip(training, map(slice, starts, [*starts[1:], len(lines) - 1]), strict=True))

    def cell(trait: str, column: int) -> str:
        return " ".join(line.split("│")[column].strip() for line in lines[blocks[trait]]).strip()

    assert [cell(t, 1) for t in training] == list(training)  # names whole, never cut
    assert [cell(t, 2) for t in training] == ["71 pairs", "65 pairs", "61 pairs"]
    assert [cell(t, 6) for t in training] == ["above chance", "at chance", "too few pairs to tell"]
    assert cell("harmlessness", 4) == "50.0% [37.5%, 67.5%]"
    assert cell("honesty", 4) == "100.0% (no CI)"
