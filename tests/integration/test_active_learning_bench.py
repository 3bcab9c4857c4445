"""The active-learning bench on tiny runs: real MiniLM embeddings, the real selector and
simulated annotators, every strategy on the same seeds; and on a team's own mapped file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from traitforge.schemas import SelectionConfig

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "active_learning.py"
BUILT_IN = ("truthfulqa", "corrigibility", "survival-instinct")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    # the default embedding cache (content-addressed, in the temp dir) is shared with bench runs
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600
    )


def test_quick_bench_reports_every_strategy_per_dataset_against_random(tmp_path):
    out, plot = tmp_path / "al.json", tmp_path / "al.png"
    result = _run("--quick", "--json", str(out), "--plot", str(plot))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    data = json.loads(out.read_text(encoding="utf-8"))
    assert plot.stat().st_size > 0
    assert data["default_strategy"] == SelectionConfig().strategy
    assert "frozen" in data["reward_model"] and "not the fine-tuned" in data["reward_model"]
    assert data["fine_tuned"].startswith("not run")
    assert set(data["datasets"]) == set(BUILT_IN)
    for name, dataset in data["datasets"].items():
        strategies = dataset["strategies"]
        assert {"random", "bald.v1", "decisive.v1"} <= set(strategies)
        assert strategies["random"]["saved_at_90"] in (0.0, None)
        for row in strategies.values():
            for key in ("saved_at_80", "saved_at_90"):
                assert row[key] is None or -10 < row[key] <= 1
            ci = row["saved_at_90_ci"]
            assert ci is None or (len(ci) == 2 and ci[0] <= ci[1])
            assert 0.0 <= row["tie_share"] <= 1.0
        # paired by seed: every strategy starts from the same random seed set
        curves = [c for c in data["curves"][name]]
        for seed in {c["seed"] for c in curves}:
            first = {c["points"][0]["accuracy"] for c in curves if c["seed"] == seed}
            assert len(first) == 1
    # TruthfulQA has equally true answers: random asks some pairs that tie, two-answer evals none
    truthfulqa = data["datasets"]["truthfulqa"]["strategies"]["random"]["tie_share"]
    assert truthfulqa > 0.2
    assert data["datasets"]["corrigibility"]["strategies"]["random"]["tie_share"] < 0.05


def test_a_teams_own_mapped_file_runs_the_same_bench(tmp_path):
    """--data/--format/--trait/--config: a JSONL file whose columns a config maps, gold
    included, written here from TruthfulQA's first rows with other column names."""
    from tests.helpers.paths import TRUTHFULQA
    from traitforge.curation.sources import Parsed, source_format
    from traitforge.workspace import default_config

    rows = []
    outcomes = [
        o
        for o in source_format("truthfulqa").reader(TRUTHFULQA, default_config())
        if isinstance(o, Parsed)
    ][:60]
    for outcome in outcomes:
        for c in outcome.candidates:
            rows.append({"q": c.prompt, "a": c.response, "true": int(c.gold["honesty"])})
    data = tmp_path / "mine.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = tmp_path / "traitforge.yaml"
    config.write_text(
        "ingest:\n  mapping:\n    prompt: q\n    response: a\n    gold:\n      honesty: 'true'\n",
        encoding="utf-8",
    )
    out = tmp_path / "mine.json"
    result = _run(
        "--data", str(data), "--format", "jsonl", "--trait", "honesty", "--config", str(config),
        "--quick", "--strategies", "random,decisive.v1", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    found = json.loads(out.read_text(encoding="utf-8"))
    assert list(found["datasets"]) == ["mine"]
    mine = found["datasets"]["mine"]
    assert mine["trait"] == "honesty" and mine["prompts"] == 60
    assert set(mine["strategies"]) == {"random", "decisive.v1"}


def test_a_file_without_gold_for_the_trait_is_a_clear_error(tmp_path):
    data = tmp_path / "nogold.jsonl"
    data.write_text('{"prompt": "p", "response": "r"}\n', encoding="utf-8")
    result = _run("--data", str(data), "--format", "jsonl", "--trait", "honesty", "--quick")
    assert result.returncode == 2
    assert "needs at least 20 prompts" in result.stderr and "Traceback" not in result.stderr
