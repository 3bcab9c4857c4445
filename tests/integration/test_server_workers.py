"""The embedded Argilla server with several uvicorn workers (annotation.argilla.server_workers):
all of them serve, concurrent bulk upserts to the one SQLite database all succeed, and
stopping the server, or restarting it after a kill -9 of its launcher, leaves no worker
behind."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import argilla as rg
import pytest

from traitforge.annotators.argilla.client import ArgillaAPI
from traitforge.annotators.server import (
    ServerInfo,
    ServerPaths,
    ensure_server,
    environment_dir,
    free_port,
    owner_connection,
    server_status,
    stop_server,
)
from traitforge.annotators.server.detached import alive, group_members, port_free
from traitforge.workspace import Workspace
from traitforge.workspace.config_file import dump_config

pytestmark = pytest.mark.integration

WORKERS = 2
BATCHES, BATCH_SIZE = 12, 40


@pytest.fixture(autouse=True)
def _embedded_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, ServerInfo]]:
    root = Path(tmp_path_factory.mktemp("workers")) / "ws"
    config = Workspace.open(root).config
    argilla = config.annotation.argilla.model_copy(
        update={"port": free_port(), "server_workers": WORKERS}
    )
    annotation = config.annotation.model_copy(update={"argilla": argilla})
    config = config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    workspace = Workspace.open(root)
    with pytest.MonkeyPatch.context() as env:
        env.delenv("ARGILLA_API_URL", raising=False)
        info = ensure_server(workspace)
    try:
        yield workspace, info
    finally:
        stop_server(workspace)


def _workers(pid: int) -> list[int]:
    """Worker processes of the server led by `pid` (uvicorn spawns them with multiprocessing)."""
    found = []
    for member in group_members(pid, environment_dir().name):
        cmdline = Path(f"/proc/{member}/cmdline").read_bytes()
        if b"multiprocessing.spawn" in cmdline:
            found.append(member)
    return found


def _wait_all_serving(log: Path, workers: int, timeout_s: float = 120.0) -> None:
    # Health is checked against the first worker up; the others may still be importing.
    deadline = time.monotonic() + timeout_s
    while log.read_text().count("Application startup complete") < workers:
        assert time.monotonic() < deadline, f"fewer than {workers} workers started: see {log}"
        time.sleep(0.5)


def _dataset(workspace: Workspace) -> tuple[ArgillaAPI, str, str]:
    connection = owner_connection(workspace, start=False)
    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.RatingQuestion(name="score", values=[1, 2, 3, 4, 5])],
        metadata=[rg.IntegerMetadataProperty(name="length")],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
    )
    dataset = rg.Dataset(
        name="workers",
        workspace=workspace.config.annotation.argilla.workspace,
        settings=settings,
        client=client,
    ).create()
    # No retries: a "database is locked" answer (HTTP 500) must fail the test, not be retried.
    api = ArgillaAPI.connect(connection, retries=0)
    return api, str(dataset.id), api.question_ids(str(dataset.id))["score"]


def _batch(number: int, question_id: str) -> list[dict[str, Any]]:
    return [
        {
            "external_id": f"b{number}-r{i}",
            "fields": {"text": f"record {i} of batch {number}"},
            "metadata": {"length": i},
            "vectors": {"emb": [1.0, float(i), float(number)]},
            "suggestions": [{"question_id": question_id, "value": 1 + i % 5, "agent": "test"}],
        }
        for i in range(BATCH_SIZE)
    ]


def test_every_worker_serves_and_concurrent_upserts_all_succeed(
    served: tuple[Workspace, ServerInfo],
) -> None:
    workspace, info = served
    assert info.workers == WORKERS and server_status(workspace).info.workers == WORKERS
    assert len(_workers(info.pid)) == WORKERS
    _wait_all_serving(ServerPaths.of(workspace).log, WORKERS)
    api, dataset_id, question_id = _dataset(workspace)
    with api, ThreadPoolExecutor(max_workers=6) as pool:
        written = list(
            pool.map(lambda n: api.upsert(dataset_id, _batch(n, question_id)), range(BATCHES))
        )
        # Reads while the last upserts write: another worker's searches must not fail either.
        counted = list(pool.map(lambda _: api.record_count(dataset_id), range(6)))
    assert written == [BATCH_SIZE] * BATCHES
    assert all(0 <= n <= BATCHES * BATCH_SIZE for n in counted)
    with ArgillaAPI.connect(owner_connection(workspace, start=False)) as api:
        assert api.record_count(dataset_id) == BATCHES * BATCH_SIZE
        assert len(api.external_ids(dataset_id)) == BATCHES * BATCH_SIZE
    log = ServerPaths.of(workspace).log.read_text()
    assert "database is locked" not in log and "Traceback" not in log


def test_a_kill_9_of_the_launcher_leaves_no_worker_serving_after_restart(
    served: tuple[Workspace, ServerInfo],
) -> None:
    workspace, _ = served
    before = server_status(workspace).info
    assert before is not None
    orphans = _workers(before.pid)
    assert len(orphans) == WORKERS
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_status(workspace).running and time.monotonic() < deadline:
        time.sleep(0.1)
    # The workers outlive their supervisor and keep the port...
    assert all(alive(pid) for pid in orphans)
    assert not port_free(before.port)
    # ...until the next start stops them, and takes the port back.
    restarted = ensure_server(workspace)
    assert not restarted.reused and restarted.port == before.port
    assert not any(alive(pid) for pid in orphans)
    assert len(_workers(restarted.pid)) == WORKERS


def test_stop_leaves_no_worker_process_behind(served: tuple[Workspace, ServerInfo]) -> None:
    workspace, _ = served
    info = server_status(workspace).info
    assert info is not None
    members = group_members(info.pid, environment_dir().name)
    assert len(members) >= 1 + WORKERS  # the launcher and its workers
    assert stop_server(workspace) is True
    assert not any(alive(pid) for pid in members)
    assert group_members(info.pid, environment_dir().name) == []
    assert port_free(info.port)
    assert not server_status(workspace).running
