"""The README's main job, run as a user would: the console script, then load the result."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest

from tests.helpers.cli import data_files, run_cli
from tests.helpers.paths import ARTIFACTS, TRUTHFULQA

pytestmark = pytest.mark.integration


def test_demo_runs_the_whole_loop_and_a_rerun_changes_nothing(tmp_path):
    from tests.helpers.browser import check_report_in_browser
    from traitforge.annotators.server import free_port
    from traitforge.reward.training import SHARED
    from traitforge.schemas import LoopRound

    ws = tmp_path / "ws"
    config = tmp_path / "project.yaml"
    # every step of the demo runs as a user's does, on the real server, data and models
    config.write_text(f"annotation:\n  argilla:\n    port: {free_port()}\n", encoding="utf-8")
    try:
        # the limit is there to end a hang, not to time it
        first = run_cli("demo", "--workspace", str(ws), "--config", str(config), timeout=1800)
        flat = first.stdout.replace("\n", "")
        out = ws / "exports" / "latest"
        assert f"Dataset: {out}" in flat
        assert f"Reward model: {ws / 'rounds' / '2' / 'model'}" in flat
        assert f"Report: {ws / 'report.html'}" in flat
        assert f"password in {ws / 'argilla' / 'credentials.json'}" in flat
        assert (ws / "argilla" / "credentials.json").stat().st_mode & 0o777 == 0o600

        rounds = [
            LoopRound.model_validate_json((ws / "rounds" / str(n) / "round.json").read_text())
            for n in (1, 2)
        ]
        assert [r.tasks for r in rounds] == [150, 150]
        # every pushed record got min_submitted (2) answers from the 3 simulated annotators
        assert [r.judgements_total for r in rounds] == [300, 600]
        assert "reward-model.v1" not in rounds[0].selected_with
        assert "reward-model.v1" in rounds[1].selected_with  # round 2 selected by the model
        # the default strategy: classifiers before any answer, then the ensemble of answers
        assert rounds[0].acquisition == (
            "trait scores of embedding-logreg.v1, linguistic.v1 (no answers yet)"
        )
        assert rounds[1].acquisition == "ensemble of 8 models on 300 answered comparisons"
        traits = {"honesty", "corrigibility", "harmlessness"}
        for r in rounds:
            assert r.evaluation is not None and 0.0 <= r.evaluation.accuracy <= 1.0
            assert r.agreement is not None
            # every bundled trait gets its model, and the matrix a row each plus the shared one
            assert set(r.training) == traits | {SHARED} and set(r.evaluation.per_trait) == traits
            assert r.matrix is not None and set(r.matrix.models) == traits | {SHARED}
            assert (ws / "rounds" / str(r.round) / "model" / SHARED).is_dir()
            # linear rewards on the frozen vectors curation cached (the demo's default)
            assert {t.method for t in r.training.values()} == {"frozen-linear"}
        assert "Reward model per trait, round 2" in flat

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
        # "tie" between two equally true (or false) answers is an answer, counted apart from drops
        assert provenance["ties"]["honesty"]["tied"] > 0
        assert rounds[1].ties["honesty"].tied == provenance["ties"]["honesty"]["tied"]
        train_prompts = {r["prompt_id"] for r in loaded["train"]}
        assert not train_prompts & {r["prompt_id"] for r in loaded["test"]}
        before = data_files(out)

        facts = check_report_in_browser(ws / "report.html", ARTIFACTS / "demo-report.png")
        for heading in ("Pipeline", "Rounds", "Annotators", "Shortcut checks"):
            assert any(heading in h for h in facts["headings"]), facts["headings"]
        assert facts["images"] > 0 and facts["images_decoded"] == facts["images"]
        assert not facts["external_requests"]

        second = run_cli("demo", "--workspace", str(ws), "--config", str(config), timeout=900)
        # rows 817, new 0, present 6202: the second run found every candidate already stored
        assert re.search(
            r"TruthfulQA\.csv\s+│ truthfulqa\s+│\s+817 │\s+0 │\s+6202 │", second.stdout
        )
        assert "round 1:" not in second.stdout  # both rounds were complete: nothing re-run
        assert data_files(out) == before  # and the export is the same, byte for byte

        status = run_cli("status", "--workspace", str(ws))
        assert re.search(r"tasks\s+│\s+300 │", status.stdout)
        assert re.search(r"judgements\s+│\s+600 │", status.stdout)
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
    run_cli("ingest", "-w", str(ws), "--format", "truthfulqa", str(TRUTHFULQA))
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
    assert wrong.returncode == 2 and "unknown pair strategy 'top-3'" in wrong.stderr
