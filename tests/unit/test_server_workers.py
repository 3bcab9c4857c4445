"""Several embedded-server processes: stopping a detached server's whole process group, the
`server_workers` setting, and the SQLite settings that let workers share one database."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from traitforge.annotators.server import ArgillaServerError, ensure_server
from traitforge.annotators.server.detached import (
    alive,
    group_members,
    launch_detached,
    terminate_group,
)
from traitforge.annotators.server.embedded import app as server_app
from traitforge.schemas.annotation_config import ArgillaConfig
from traitforge.workspace import Workspace

MARKER = "tf-unit-group-marker"
# A stand-in for uvicorn's supervisor: it starts two marked workers (one ignores SIGTERM, as a
# hung worker would) and an unmarked process, prints their pids, and dies on SIGTERM without
# stopping any of them.
LEADER = """
import json, subprocess, sys, time
marker = sys.argv[1]
stubborn = subprocess.Popen(
    [sys.executable, "-c",
     "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', "
     "flush=True); time.sleep(120)", marker],
    stdout=subprocess.PIPE,
)
stubborn.stdout.readline()
plain = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])
stranger = subprocess.Popen(["sleep", "120"])
print(json.dumps({"workers": [stubborn.pid, plain.pid], "stranger": stranger.pid}), flush=True)
time.sleep(120)
"""


def _pids(log: Path) -> dict[str, list[int] | int]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                return json.loads(line)
        time.sleep(0.05)
    raise AssertionError(f"the leader printed no pids: {log.read_text()}")


@pytest.fixture
def leader(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict]]:
    log = tmp_path / "leader.log"
    proc = launch_detached(
        [sys.executable, "-c", LEADER, MARKER], tmp_path, dict(os.environ), log, "test"
    )
    pids = _pids(log)
    yield proc, pids
    for pid in [proc.pid, *pids["workers"], pids["stranger"]]:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_terminate_group_stops_the_leader_and_every_marked_process_it_started(leader) -> None:
    proc, pids = leader
    assert set(group_members(proc.pid, MARKER)) == {proc.pid, *pids["workers"]}
    assert terminate_group(proc.pid, MARKER, grace_s=1.0) is True
    assert not alive(proc.pid)
    assert not any(alive(pid) for pid in pids["workers"])  # the stubborn one by SIGKILL
    assert group_members(proc.pid, MARKER) == []
    # A group member without the marker is nothing of ours: left alone.
    assert alive(pids["stranger"])


def test_terminate_group_stops_workers_left_behind_by_a_leader_killed_with_sigkill(
    leader,
) -> None:
    proc, pids = leader
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(alive(pid) for pid in pids["workers"])
    assert terminate_group(proc.pid, MARKER, grace_s=1.0) is True
    assert not any(alive(pid) for pid in pids["workers"])


def test_terminate_group_leaves_a_live_pid_without_the_marker_alone() -> None:
    # As a server.json naming a pid that a stranger (here: this test) now holds.
    assert terminate_group(os.getpid(), MARKER, grace_s=0.1) is False
    assert alive(os.getpid())


def test_server_workers_must_be_at_least_one(tmp_path: Path) -> None:
    assert ArgillaConfig().server_workers == 1
    with pytest.raises(ValidationError, match="server_workers"):
        ArgillaConfig(server_workers=0)
    with pytest.raises(ArgillaServerError, match="at least 1 worker process, got 0"):
        ensure_server(Workspace.open(tmp_path / "ws"), workers=0)


def test_wal_mode_is_set_on_the_database_named_by_the_server_url(tmp_path: Path) -> None:
    database = tmp_path / "argilla.db"
    sqlite3.connect(database).close()
    url = f"sqlite+aiosqlite:///{database}?check_same_thread=False"
    assert server_app.use_wal(url) == "wal"
    with sqlite3.connect(database) as db:  # lasts in the file, for every later connection
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(ValueError, match="not a SQLite database URL: 'postgresql"):
        server_app.use_wal("postgresql+asyncpg://localhost/argilla")


def test_server_processes_wait_for_the_write_lock_longer_than_argilla_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("ARGILLA_SEARCH_ENGINE", "ARGILLA_DATABASE_SQLITE_TIMEOUT"):
        monkeypatch.setenv(name, "unset")  # restored after the test
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "0")
    server_app.configure_environment()
    assert os.environ["ARGILLA_DATABASE_SQLITE_TIMEOUT"] == "60"
    assert os.environ["ARGILLA_SEARCH_ENGINE"] == server_app.ENGINE_NAME
