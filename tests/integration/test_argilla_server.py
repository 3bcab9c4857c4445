"""The embedded Argilla server: the real argilla-server 2.8.0 with traitforge's SQL search
engine, started, reused, stopped and restarted as a user would, and searched through the
argilla SDK and the REST API the web UI uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argilla as rg
import httpx
import pytest
from typer.testing import CliRunner

from traitforge.annotators.server import (
    ServerInfo,
    ServerPaths,
    add_annotators,
    annotator_accounts,
    ensure_server,
    owner_connection,
    server_status,
    stop_server,
)
from traitforge.cli import app
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture(autouse=True)
def _embedded_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # These tests are about the embedded server, even on a machine configured for another.
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)


def _mode(path: os.PathLike[str]) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _token(url: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/token", data={"username": username, "password": password})


def test_serve_starts_healthy_and_a_second_serve_reuses_it(
    argilla_server: tuple[Workspace, ServerInfo],
) -> None:
    workspace, info = argilla_server
    status = httpx.get(f"{info.url}/api/v1/status").json()
    assert status["version"] == "2.8.0"
    assert status["search_engine"]["distribution"] == "traitforge-sql"
    assert info.url == f"http://127.0.0.1:{info.port}"
    assert server_status(workspace).running

    again = ensure_server(workspace)
    assert again.reused and again.pid == info.pid and again.url == info.url

    result = runner.invoke(app, ["serve", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    assert f"Already running at {info.url}" in result.output
    result = runner.invoke(app, ["serve", "-w", str(workspace.root), "--status"])
    assert result.exit_code == 0 and "running at" in result.output

    # The web UI is served too, from the same address.
    page = httpx.get(f"{info.url}/", follow_redirects=True)
    assert page.status_code == 200 and "<html" in page.text.lower()


def test_owner_credentials_are_private_and_the_default_account_does_not_work(
    argilla_server: tuple[Workspace, ServerInfo],
) -> None:
    workspace, info = argilla_server
    paths = ServerPaths.of(workspace)
    assert _mode(paths.credentials) == 0o600
    assert _mode(paths.root) == 0o700
    owner = json.loads(paths.credentials.read_text())
    assert owner["username"] != "argilla" and owner["password"] != "1234"

    assert _token(info.url, "argilla", "1234").status_code == 401
    default_key = httpx.get(
        f"{info.url}/api/v1/me", headers={"X-Argilla-Api-Key": "argilla.apikey"}
    )
    assert default_key.status_code == 401
    assert _token(info.url, owner["username"], owner["password"]).status_code == 201

    connection = owner_connection(workspace, start=False)
    assert connection.api_url == info.url
    assert connection.api_key == owner["api_key"] and not connection.external
    me = httpx.get(f"{info.url}/api/v1/me", headers={"X-Argilla-Api-Key": connection.api_key})
    assert me.json()["role"] == "owner"
    assert owner["api_key"] not in repr(connection)

    logs = "".join(p.read_text() for p in (paths.log, paths.prepare_log))
    assert owner["password"] not in logs and owner["api_key"] not in logs


def test_annotators_add_creates_accounts_that_can_log_in(
    argilla_server: tuple[Workspace, ServerInfo],
) -> None:
    workspace, info = argilla_server
    result = runner.invoke(app, ["annotators", "add", "ann-a", "ann-b", "-w", str(workspace.root)])
    assert result.exit_code == 0, result.output
    assert "annotators.json" in result.output and info.url in result.output

    paths = ServerPaths.of(workspace)
    assert _mode(paths.annotators) == 0o600
    accounts = {a.username: a for a in annotator_accounts(workspace)}
    assert set(accounts) == {"ann-a", "ann-b"}
    for account in accounts.values():
        assert account.password not in result.output and account.api_key not in result.output
        assert _token(info.url, account.username, account.password).status_code == 201
        me = httpx.get(f"{info.url}/api/v1/me", headers={"X-Argilla-Api-Key": account.api_key})
        assert me.json()["role"] == "annotator"
        mine = httpx.get(
            f"{info.url}/api/v1/me/workspaces", headers={"X-Argilla-Api-Key": account.api_key}
        ).json()["items"]
        assert [w["name"] for w in mine] == [workspace.config.annotation.argilla.workspace]

    # Adding again keeps the credentials.
    again = add_annotators(workspace, ["ann-a"])
    assert again[0].password == accounts["ann-a"].password
    assert again[0].api_key == accounts["ann-a"].api_key


# -- the SQL search engine ------------------------------------------------------------------

# external id: (text, metadata, label suggestion (value, score, agent) or None, vector,
#               the owner's response status or None)
Row = tuple[str, dict[str, Any], tuple[str, float, str] | None, list[float], str | None]
ROWS: dict[str, Row] = {
    "r0": ("the honest answer about apples", {"source": "tqa", "length": 10, "weight": 0.5},
           ("good", 0.9, "clf-a"), [1.0, 0.0, 0.0], "submitted"),
    "r1": ("a sly answer about pears", {"source": "hh", "length": 20, "weight": 1.5},
           ("bad", 0.2, "clf-b"), [0.9, 0.1, 0.0], "draft"),
    "r2": ("an honest answer about plums", {"source": "tqa", "length": 30, "weight": 2.5},
           ("good", 0.6, "clf-b"), [0.0, 1.0, 0.0], "discarded"),
    "r3": ("a refusal", {"source": "evals", "length": 40, "weight": 3.5},
           None, [0.0, 0.0, 1.0], None),
    "r4": ("a confident lie about apples", {"source": "hh", "length": 50, "weight": 4.5},
           ("bad", 0.95, "clf-a"), [-1.0, 0.0, 0.0], None),
}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(argilla_server: tuple[Workspace, ServerInfo]) -> Iterator[rg.Dataset]:
    workspace, _ = argilla_server
    with pytest.MonkeyPatch.context() as env:
        env.delenv("ARGILLA_API_URL", raising=False)
        connection = owner_connection(workspace, start=False)
    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key)
    settings = rg.Settings(
        fields=[rg.TextField(name="text")],
        questions=[rg.LabelQuestion(name="label", labels=["good", "bad"])],
        metadata=[
            rg.TermsMetadataProperty(name="source"),
            rg.IntegerMetadataProperty(name="length"),
            rg.FloatMetadataProperty(name="weight"),
        ],
        vectors=[rg.VectorField(name="emb", dimensions=3)],
        distribution=rg.TaskDistribution(min_submitted=1),
    )
    ds = rg.Dataset(
        name="search-engine",
        workspace=workspace.config.annotation.argilla.workspace,
        settings=settings,
        client=client,
    ).create()
    owner_id = client.me.id
    records = []
    for rid, (text, metadata, suggestion, vector, response) in ROWS.items():
        records.append(
            rg.Record(
                id=rid,
                fields={"text": text},
                metadata=metadata,
                vectors={"emb": vector},
                suggestions=[
                    rg.Suggestion("label", suggestion[0], score=suggestion[1], agent=suggestion[2])
                ]
                if suggestion
                else [],
                responses=[rg.Response("label", "good", user_id=owner_id, status=response)]
                if response
                else [],
            )
        )
    ds.records.log(records)
    yield ds


def _ids(ds: rg.Dataset, **query: Any) -> list[str]:
    # With `similar`, the SDK yields (record, score) pairs.
    found = ds.records(query=rg.Query(**query))
    return [r[0].id if isinstance(r, tuple) else r.id for r in found]


def _filter(ds: rg.Dataset, *conditions: tuple[str, str, Any]) -> set[str]:
    return set(_ids(ds, filter=rg.Filter(list(conditions))))


def test_sdk_filters_by_metadata(dataset: rg.Dataset) -> None:
    assert _filter(dataset, ("metadata.source", "==", "hh")) == {"r1", "r4"}
    assert _filter(dataset, ("metadata.source", "in", ["hh", "evals"])) == {"r1", "r3", "r4"}
    assert _filter(dataset, ("metadata.length", ">=", 25), ("metadata.length", "<=", 45)) == {
        "r2",
        "r3",
    }
    assert _filter(dataset, ("metadata.weight", ">=", 4.0)) == {"r4"}


def test_sdk_filters_by_response_status_and_record_status(dataset: rg.Dataset) -> None:
    assert _filter(dataset, ("response.status", "==", "submitted")) == {"r0"}
    assert _filter(dataset, ("response.status", "in", ["draft", "discarded"])) == {"r1", "r2"}
    # Without a user in scope (the owner's dataset search), pending means "no response".
    assert _filter(dataset, ("response.status", "==", "pending")) == {"r3", "r4"}
    assert _filter(dataset, ("response.status", "in", ["pending", "draft"])) == {"r1", "r3", "r4"}
    assert _filter(dataset, ("status", "==", "completed")) == {"r0"}
    assert _filter(
        dataset, ("metadata.source", "==", "tqa"), ("response.status", "==", "submitted")
    ) == {"r0"}


def test_sdk_filters_by_suggestion_value_score_and_agent(dataset: rg.Dataset) -> None:
    assert _filter(dataset, ("label", "==", "good")) == {"r0", "r2"}
    assert _filter(dataset, ("label.score", ">=", 0.8)) == {"r0", "r4"}
    assert _filter(dataset, ("label.agent", "==", "clf-b")) == {"r1", "r2"}


def test_text_query_matches_all_terms(dataset: rg.Dataset) -> None:
    assert set(_ids(dataset, query="apples")) == {"r0", "r4"}
    assert set(_ids(dataset, query="honest apples")) == {"r0"}
    assert _ids(dataset, query="bananas") == []


def test_similar_ranks_by_cosine_similarity(dataset: rg.Dataset) -> None:
    nearest = _ids(dataset, similar=rg.Similar("emb", [1.0, 0.0, 0.0]))
    assert nearest[:2] == ["r0", "r1"] and nearest[-1] == "r4"
    farthest = _ids(dataset, similar=rg.Similar("emb", [1.0, 0.0, 0.0], most_similar=False))
    assert farthest[0] == "r4"
    scores = [s for _, s in dataset.records(query=rg.Query(similar=rg.Similar("emb", [1, 0, 0])))]
    assert scores[0] == pytest.approx(1.0) and scores[-1] == pytest.approx(0.0)
    # By record: the record itself is left out; filters still apply.
    r0 = next(iter(dataset.records(query=rg.Query(filter=rg.Filter(("id", "==", "r0"))))))
    assert _ids(dataset, similar=rg.Similar("emb", r0))[0] == "r1"
    near_hh = _ids(
        dataset,
        similar=rg.Similar("emb", [1.0, 0.0, 0.0]),
        filter=rg.Filter(("metadata.source", "==", "hh")),
    )
    assert near_hh == ["r1", "r4"]


def _search(info_url: str, key: str, dataset_id: str, body: dict[str, Any], **params: Any) -> Any:
    response = httpx.post(
        f"{info_url}/api/v1/datasets/{dataset_id}/records/search",
        json=body,
        params=params,
        headers={"X-Argilla-Api-Key": key},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _external_ids(result: dict[str, Any]) -> list[str]:
    return [item["record"]["external_id"] for item in result["items"]]


def test_sort_and_pagination(
    argilla_server: tuple[Workspace, ServerInfo], dataset: rg.Dataset
) -> None:
    workspace, info = argilla_server
    key = owner_connection(workspace, start=False).api_key
    by_length = {"scope": {"entity": "metadata", "metadata_property": "length"}, "order": "desc"}
    result = _search(info.url, key, str(dataset.id), {"sort": [by_length]})
    assert _external_ids(result) == ["r4", "r3", "r2", "r1", "r0"]

    by_score = {
        "scope": {"entity": "suggestion", "question": "label", "property": "score"},
        "order": "desc",
    }
    result = _search(info.url, key, str(dataset.id), {"sort": [by_score]})
    assert _external_ids(result) == ["r4", "r0", "r2", "r1", "r3"]  # no suggestion: last

    inserted = {"scope": {"entity": "record", "property": "inserted_at"}, "order": "asc"}
    page = _search(info.url, key, str(dataset.id), {"sort": [inserted]}, offset=2, limit=2)
    assert page["total"] == 5 and len(page["items"]) == 2
    everything = _search(info.url, key, str(dataset.id), {"sort": [inserted]})
    assert _external_ids(page) == _external_ids(everything)[2:4]


def test_annotator_queue_progress_and_metrics(
    argilla_server: tuple[Workspace, ServerInfo], dataset: rg.Dataset
) -> None:
    workspace, info = argilla_server
    annotator = add_annotators(workspace, ["queue-tester"])[0]
    headers = {"X-Argilla-Api-Key": annotator.api_key}
    owner_key = owner_connection(workspace, start=False).api_key
    records = {r.id: r._server_id for r in dataset.records}

    answer = httpx.post(
        f"{info.url}/api/v1/records/{records['r3']}/responses",
        json={"values": {"label": {"value": "bad"}}, "status": "submitted"},
        headers=headers,
    )
    assert answer.status_code == 201, answer.text

    def queue(status: str) -> set[str]:
        body = {
            "filters": {
                "and": [
                    {
                        "type": "terms",
                        "scope": {"entity": "response", "property": "status"},
                        "values": [status],
                    }
                ]
            }
        }
        response = httpx.post(
            f"{info.url}/api/v1/me/datasets/{dataset.id}/records/search",
            json=body,
            headers=headers,
        )
        assert response.status_code == 200, response.text
        return set(_external_ids(response.json()))

    # Per user: the owner's responses do not take records out of this annotator's queue.
    assert queue("pending") == {"r0", "r1", "r2", "r4"}
    assert queue("submitted") == {"r3"}
    assert _filter(dataset, ("response.status", "==", "pending")) == {"r4"}

    progress = httpx.get(
        f"{info.url}/api/v1/datasets/{dataset.id}/progress",
        headers={"X-Argilla-Api-Key": owner_key},
    ).json()
    assert progress["total"] == 5 and progress["completed"] == 2 and progress["pending"] == 3
    mine = httpx.get(f"{info.url}/api/v1/me/datasets/{dataset.id}/metrics", headers=headers).json()
    assert mine["responses"]["submitted"] == 1 and mine["responses"]["pending"] == 4

    properties = httpx.get(
        f"{info.url}/api/v1/me/datasets/{dataset.id}/metadata-properties",
        headers={"X-Argilla-Api-Key": owner_key},
    ).json()["items"]
    by_name = {p["name"]: p["id"] for p in properties}
    terms = httpx.get(
        f"{info.url}/api/v1/metadata-properties/{by_name['source']}/metrics",
        headers={"X-Argilla-Api-Key": owner_key},
    ).json()
    assert {v["term"]: v["count"] for v in terms["values"]} == {"tqa": 2, "hh": 2, "evals": 1}
    numeric = httpx.get(
        f"{info.url}/api/v1/metadata-properties/{by_name['length']}/metrics",
        headers={"X-Argilla-Api-Key": owner_key},
    ).json()
    assert (numeric["min"], numeric["max"]) == (10, 50)


# -- stop and restart (last: the other tests share the running server) ---------------------


def _port_open(port: int) -> bool:
    # The kernel may finish closing a dead server's socket a moment after the process is gone.
    deadline = time.monotonic() + 3
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)


def test_restart_after_kill_9_and_stop(argilla_server: tuple[Workspace, ServerInfo]) -> None:
    workspace, info = argilla_server
    before = server_status(workspace)
    assert before.running and before.info is not None

    # A crash leaves a stale server.json behind; it must not block the next start.
    os.kill(before.info.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_status(workspace).running and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not server_status(workspace).running
    assert ServerPaths.of(workspace).state.exists()
    stale = json.loads(ServerPaths.of(workspace).state.read_text())
    restarted = ensure_server(workspace)
    assert not restarted.reused and restarted.pid != before.info.pid
    if stale["redis_pid"]:  # with redis-server installed: the orphaned one was stopped
        assert not Path(f"/proc/{stale['redis_pid']}").exists()
    assert restarted.url == info.url  # the workspace config pins the port
    owner = json.loads(ServerPaths.of(workspace).credentials.read_text())
    assert _token(info.url, owner["username"], owner["password"]).status_code == 201

    result = runner.invoke(app, ["serve", "-w", str(workspace.root), "--stop"])
    assert result.exit_code == 0 and "Stopped" in result.output
    assert not _port_open(info.port)
    assert not server_status(workspace).running
    assert stop_server(workspace) is False
    result = runner.invoke(app, ["serve", "-w", str(workspace.root), "--status"])
    assert result.exit_code == 1 and "not running" in result.output

    # Leave it running for whoever shares the session fixture.
    assert not ensure_server(workspace).reused


def test_a_command_killed_while_the_server_starts_leaves_one_the_next_reuses(
    argilla_server: tuple[Workspace, ServerInfo],
) -> None:
    """A `push` or `loop` killed during the server's ~10 s start-up used to leave a server that
    no state file named, so the next command called its port 'in use by another program'."""
    workspace, _ = argilla_server
    paths = ServerPaths.of(workspace)
    stop_server(workspace)
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from traitforge.annotators.server import ensure_server; "
            "from traitforge.workspace import Workspace; "
            "ensure_server(Workspace.open(sys.argv[1]))",
            str(workspace.root),
        ]
    )
    try:
        deadline = time.monotonic() + 120
        while not (paths.state.is_file() and json.loads(paths.state.read_text()).get("starting")):
            assert starter.poll() is None, "the starter ended before the server was recorded"
            assert time.monotonic() < deadline, "no server was recorded while starting"
            time.sleep(0.05)
    finally:
        starter.kill()
        starter.wait()
    info = ensure_server(workspace)
    assert info.reused
    assert server_status(workspace).running
