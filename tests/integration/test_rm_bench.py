"""The reward-model GPU bench on CPU: `--tiny` trains both sides for real and reports them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rm_throughput.py"


def test_tiny_bench_trains_and_evaluates_both_sides(tmp_path):
    out = tmp_path / "rm.json"
    args = ["--tiny", "--backbone", "all-MiniLM-L6-v2", "--json", str(out)]
    result = subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    data = json.loads(out.read_text(encoding="utf-8"))
    ours, trl = data["traitforge"], data["trl"]
    for side in (ours, trl):
        assert side["pairs_per_second"] > 0
        assert 0.0 <= side["accuracy"] <= 1.0
    assert 0.0 <= trl["accuracy_with_traitforge_encoding"] <= 1.0
    assert data["ratio"] > 0
    # same work on both sides: every tiny pair trained once, same precision
    assert data["train_pairs"] == ours["pairs"] == trl["pairs"] == 8
    assert data["test_pairs"] == 8
    assert ours["precision"] == trl["precision"]
    # TRL keeps its default, traitforge turns checkpointing off
    assert trl["gradient_checkpointing"] is True
    assert ours["gradient_checkpointing"] is False
    assert trl["format"] == "text"  # MiniLM has no chat template
    assert "throughput ratio traitforge/TRL" in result.stdout
