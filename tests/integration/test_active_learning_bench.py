"""The active-learning bench on a tiny run: real MiniLM embeddings, real selector and
simulated annotators, both strategies on the same seeds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "active_learning.py"
STRATEGIES = ("random", "uncertainty+diversity")


def test_quick_bench_reports_both_strategies(tmp_path):
    out = tmp_path / "al.json"
    plot = tmp_path / "al.png"
    # the default embedding cache (content-addressed, in the temp dir) is shared with bench runs
    args = ["--quick", "--json", str(out), "--plot", str(plot)]
    result = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    data = json.loads(out.read_text(encoding="utf-8"))
    assert plot.stat().st_size > 0
    assert "frozen" in data["reward_model"] and "not the fine-tuned" in data["reward_model"]
    seeds = data["settings"]["seeds"]
    assert seeds >= 2
    for strategy in STRATEGIES:
        rows = data["summary"][strategy]
        labels = [r["labels"] for r in rows]
        assert labels == sorted(set(labels)) and len(labels) >= 3
        assert labels[-1] == data["settings"]["labels"]
        for r in rows:
            assert 0.0 <= r["accuracy_mean"] <= 1.0
            assert 0.0 <= r["same_gold_share"] <= 1.0
            assert r["usable_mean"] <= r["labels"]
        runs = [c for c in data["curves"] if c["strategy"] == strategy]
        assert len(runs) == seeds
    # both strategies start from the same random seed set, so their first points agree
    by_seed = {(c["seed"], c["strategy"]): c["points"][0] for c in data["curves"]}
    for seed in range(seeds):
        assert by_seed[(seed, "random")] == by_seed[(seed, "uncertainty+diversity")]
    # after the seed set they choose differently
    later = {
        s: [p for c in data["curves"] if c["strategy"] == s for p in c["points"][1:]]
        for s in STRATEGIES
    }
    assert later["random"] != later["uncertainty+diversity"]
    for level in data["targets"]["levels"]:
        for axis in ("labels", "usable"):
            needed = level[axis]
            random_n, ud_n = needed["random"], needed["uncertainty+diversity"]
            if random_n and ud_n:
                assert needed["ratio"] == pytest.approx(ud_n / random_n)
    assert "frozen MiniLM embeddings" in result.stdout
    assert "labels needed to reach a target" in result.stdout
