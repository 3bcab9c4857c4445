"""The README's main job, run as a user would: the console script, then load the result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

pytestmark = pytest.mark.integration

TRAITFORGE = str(Path(sys.executable).parent / "traitforge")


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(
        [TRAITFORGE, *args], capture_output=True, text=True, env=env, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"traitforge {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def _data_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_demo_ingests_curates_and_exports_a_loadable_dataset(tmp_path):
    ws = tmp_path / "ws"
    first = run_cli("demo", "--workspace", str(ws))
    out = ws / "exports" / "latest"
    assert f"Dataset: {out}" in first.stdout.replace("\n", "")
    loaded = datasets.load_from_disk(str(out))
    assert set(loaded) == {"train", "test"}
    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    for trait in ("honesty", "corrigibility", "harmlessness"):
        rows = [r for split in loaded.values() for r in split if r["trait"] == trait]
        assert len(rows) == sum(provenance["counts"][trait].values()) > 100
        assert provenance["origins"][trait] == "gold"
    # TruthfulQA gives one best-vs-worst pair per question (817 questions).
    assert sum(provenance["counts"]["honesty"].values()) == 817
    train_prompts = {r["prompt_id"] for r in loaded["train"]}
    assert not train_prompts & {r["prompt_id"] for r in loaded["test"]}
    assert provenance["sources"] == ["anthropic-evals", "hh-rlhf", "truthfulqa"]
    before = _data_files(out)

    second = run_cli("demo", "--workspace", str(ws))
    # rows 817, new 0, present 6202: the second run found every candidate already stored
    assert re.search(r"TruthfulQA\.csv\s+│ truthfulqa\s+│\s+817 │\s+0 │\s+6202 │", second.stdout)
    assert _data_files(out) == before  # re-running changes nothing, byte for byte

    assert re.search(r"tasks in round 0\s+│ 200 of 200 wanted", first.stdout)
    assert re.search(r"new tasks\s+│ none", second.stdout)  # the re-run selects nothing new

    status = run_cli("status", "--workspace", str(ws))
    assert re.search(r"tasks\s+│\s+200 │", status.stdout)
    assert re.search(r"candidates\s+│\s+8174 │", status.stdout)  # 6202 + 398 + 398 + 378 + 798


def test_ingest_error_exits_nonzero_with_a_fixable_message(tmp_path):
    bad = tmp_path / "rows.jsonl"
    bad.write_text(
        '{"prompt": "Can pigs fly?", "response": "No"}\n{"prompt": "Why?"}\n', encoding="utf-8"
    )
    result = run_cli(
        "ingest", "-w", str(tmp_path / "ws"), "--format", "jsonl", str(bad), check=False
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "rows.jsonl, line 2, field 'response'" in message
    assert "Fix:" in message and "--skip-invalid" in message
    assert "Traceback" not in result.stderr

    skipped = run_cli(
        "ingest", "-w", str(tmp_path / "ws"), "--format", "jsonl", str(bad), "--skip-invalid"
    )
    assert "set aside" in skipped.stdout
    assert len(list((tmp_path / "ws" / "quarantine").glob("rows.*.jsonl"))) == 1


def test_export_options_from_the_cli(tmp_path):
    ws = tmp_path / "ws"
    data = Path(datasets.__file__)  # any file: proves --format is validated first
    bad_format = run_cli("ingest", "-w", str(ws), "--format", "xml", str(data), check=False)
    assert "unknown input format 'xml'" in bad_format.stderr
    from traitforge.workflows import bundled_data_dir

    tqa = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
    run_cli("ingest", "-w", str(ws), "--format", "truthfulqa", str(tqa))
    out = tmp_path / "pairs"
    result = run_cli(
        "export",
        "-w",
        str(ws),
        "--out",
        str(out),
        "--strategy",
        "all-pairs",
        "--copy",
        "jsonl",
        "--copy",
        "parquet",
    )
    # true-vs-true and false-vs-false answers tie: counted, never paired
    assert re.search(r"Dropped: tie: equal preference \(\d+\)", result.stdout)
    loaded = datasets.load_from_disk(str(out))
    total = sum(len(s) for s in loaded.values())
    assert total > 817 * 3  # every true answer against every false one
    jsonl_rows = sum(1 for s in ("train", "test") for _ in (out / "jsonl" / f"{s}.jsonl").open())
    assert jsonl_rows == total
    assert (out / "parquet" / "train.parquet").stat().st_size > 0
    wrong = run_cli("export", "-w", str(ws), "--strategy", "top-3", check=False)
    assert wrong.returncode == 1 and "unknown pair strategy 'top-3'" in wrong.stderr
