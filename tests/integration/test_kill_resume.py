"""`kill -9` in the middle of an ingest, then the same command again: nothing lost or doubled."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers.cli import TRAITFORGE
from tests.helpers.paths import TRUTHFULQA
from traitforge.workspace import Store

pytestmark = pytest.mark.integration

COPIES = 12  # TruthfulQA answers x 12 ≈ 75k rows: long enough to kill mid-transaction


@pytest.fixture(scope="module")
def big_jsonl(tmp_path_factory) -> Path:
    """Real TruthfulQA answers, one row per answer, repeated under numbered prompt variants."""
    path = tmp_path_factory.mktemp("data") / "truthfulqa-answers.jsonl"
    with TRUTHFULQA.open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    with path.open("w", encoding="utf-8") as out:
        for copy in range(COPIES):
            for row in rows:
                for column, truth in (("Correct Answers", 1), ("Incorrect Answers", 0)):
                    for answer in filter(None, (a.strip() for a in row[column].split(";"))):
                        out.write(
                            json.dumps(
                                {
                                    "prompt": f"{row['Question']} (variant {copy})",
                                    "response": answer,
                                    "honest": truth,
                                }
                            )
                            + "\n"
                        )
    return path


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "project.yaml"
    path.write_text("ingest:\n  mapping:\n    gold: {honesty: honest}\n", encoding="utf-8")
    return path


def ingest_command(ws: Path, config: Path, *paths: Path) -> list[str]:
    return [
        TRAITFORGE,
        "ingest",
        "-w",
        str(ws),
        "-c",
        str(config),
        "--format",
        "jsonl",
        *map(str, paths),
    ]


def stored(ws: Path) -> tuple[int, set[str]]:
    with Store(ws / "store.sqlite") as store:
        ids = store.candidate_ids()
        return store.counts()["candidates"], ids


def kill_when_wal_reaches(command: list[str], wal: Path, size: int) -> None:
    """Start the command and SIGKILL it once SQLite's write-ahead log holds `size` bytes of
    an uncommitted transaction, i.e. truly in the middle of writing."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size >= size:
            break
        if process.poll() is not None:
            pytest.fail(f"ingest finished before it could be killed: {process.stderr.read()}")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL


def test_killed_ingest_resumes_to_the_same_store(tmp_path, big_jsonl, config_file, data_dir):
    small = data_dir / "anthropic-evals" / "corrigible-more-HHH.jsonl"
    reference = tmp_path / "reference"
    subprocess.run(
        ingest_command(reference, config_file, big_jsonl), check=True, capture_output=True
    )
    expected_count, expected_ids = stored(reference)
    assert expected_count > 50_000

    ws = tmp_path / "killed"
    # A first, small file commits; then the big one is killed three times at growing depths.
    subprocess.run(
        [TRAITFORGE, "ingest", "-w", str(ws), "--format", "anthropic-evals", str(small)],
        check=True,
        capture_output=True,
    )
    committed, committed_ids = stored(ws)
    assert committed == 398
    for wal_bytes in (64 << 10, 1 << 20, 4 << 20):
        kill_when_wal_reaches(
            ingest_command(ws, config_file, big_jsonl), ws / "store.sqlite-wal", wal_bytes
        )
        count, ids = stored(ws)
        # the big file's transaction never committed: the earlier file is intact, nothing more
        assert (count, ids) == (committed, committed_ids)

    subprocess.run(ingest_command(ws, config_file, big_jsonl), check=True, capture_output=True)
    count, ids = stored(ws)
    assert ids == committed_ids | expected_ids
    assert count == committed + expected_count  # primary keys: no row stored twice

    again = subprocess.run(
        ingest_command(ws, config_file, big_jsonl), check=True, capture_output=True, text=True
    )
    assert stored(ws)[0] == count
    assert "rows" in again.stdout
