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


def test_demo_runs_the_whole_job_and_a_rerun_changes_nothing(tmp_path):
    from traitforge.annotators.server import free_port

    ws = tmp_path / "ws"
    config = tmp_path / "project.yaml"
    config.write_text(f"annotation:\n  argilla:\n    port: {free_port()}\n", encoding="utf-8")
    try:
        first = run_cli("demo", "--workspace", str(ws), "--config", str(config))
        flat = first.stdout.replace("\n", "")
        out = ws / "exports" / "latest"
        assert f"Dataset: {out}" in flat
        assert f"password in {ws / 'argilla' / 'credentials.json'}" in flat
        assert (ws / "argilla" / "credentials.json").stat().st_mode & 0o777 == 0o600
        assert re.search(r"tasks in round 0\s+│ 200 of 200 wanted", first.stdout)
        # every pushed record got min_submitted (2) answers from the 3 simulated annotators
        assert re.search(r"new\s+│\s+400 │", first.stdout)
        assert "Annotator agreement" in first.stdout

        loaded = datasets.load_from_disk(str(out))
        assert set(loaded) == {"train", "test"}
        provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
        assert provenance["simulated_annotators"] is True
        assert provenance["annotators"] == ["sim-1", "sim-2", "sim-3"]
        assert provenance["agreement"]["preference_alpha"] is not None
        rows = [r for split in loaded.values() for r in split]
        assert len(rows) == sum(sum(c.values()) for c in provenance["counts"].values())
        assert provenance["origins"]["honesty"] == "judgements"
        assert all(r["votes"] >= 1 and r["origin"] == "judgements" for r in rows)
        # ties between two equally true (or false) answers are dropped and counted
        assert any(reason.startswith("tie") or "ties" in reason for reason in provenance["drops"])
        train_prompts = {r["prompt_id"] for r in loaded["train"]}
        assert not train_prompts & {r["prompt_id"] for r in loaded["test"]}
        before = _data_files(out)

        second = run_cli("demo", "--workspace", str(ws), "--config", str(config))
        # rows 817, new 0, present 6202: the second run found every candidate already stored
        assert re.search(
            r"TruthfulQA\.csv\s+│ truthfulqa\s+│\s+817 │\s+0 │\s+6202 │", second.stdout
        )
        assert re.search(r"new tasks\s+│ none", second.stdout)  # nothing selected twice
        assert re.search(r"new\s+│\s+0 │", second.stdout)  # nothing pulled twice
        assert _data_files(out) == before  # and the export is the same, byte for byte

        status = run_cli("status", "--workspace", str(ws))
        assert re.search(r"tasks\s+│\s+200 │", status.stdout)
        assert re.search(r"judgements\s+│\s+400 │", status.stdout)
        assert re.search(r"candidates\s+│\s+8174 │", status.stdout)  # 6202+398+398+378+798
        assert "Annotators" in status.stdout and "sim-1" in status.stdout
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)


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
