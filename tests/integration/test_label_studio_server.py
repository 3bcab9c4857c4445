"""The real Label Studio 1.23.2 started, queried, stopped and restarted as a user would, through
`traitforge serve --backend label-studio`. The first run on a machine creates Label Studio's
virtual environment (~1 GB, minutes) and its migrated template (~30 s)."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.cli import cli_env, run_cli
from traitforge.annotators.label_studio import LabelStudioServer, label_studio_connection
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

_EXTERNAL = ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY")


@dataclass
class Started:
    root: Path
    url: str
    credentials: dict[str, str]
    outputs: list[str]  # everything the CLI printed, to check for secrets


def _serve(root: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "serve",
        "--backend",
        "label-studio",
        "-w",
        str(root),
        *extra,
        check=check,
        timeout=900,
        env=cli_env(drop=_EXTERNAL),
    )


def _printed(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def _url(output: str) -> str:
    match = re.search(r"running at (http://127\.0\.0\.1:\d+)", output)
    assert match, output
    return match.group(1)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    root = tmp_path_factory.mktemp("label-studio") / "ws"
    first = _serve(root)
    output = _printed(first)
    assert "Label Studio is running at" in output and "from the migrated template" in output
    credentials = json.loads((root / "label-studio" / "credentials.json").read_text())
    try:
        yield Started(root, _url(output), credentials, [output])
    finally:
        _serve(root, "--stop", check=False)


def test_the_server_is_healthy_and_the_owner_token_works(started: Started) -> None:
    assert httpx.get(f"{started.url}/health").json() == {"status": "UP"}
    token = started.credentials["token"]
    # The legacy token, enabled on the first start, in DRF's header form.
    projects = httpx.get(f"{started.url}/api/projects", headers=_auth(token))
    assert projects.status_code == 200 and projects.json()["results"] == []
    assert httpx.get(f"{started.url}/api/projects").status_code == 401
    me = httpx.get(f"{started.url}/api/current-user/whoami", headers=_auth(token)).json()
    assert me["email"] == started.credentials["email"]
    version = httpx.get(f"{started.url}/api/version", headers=_auth(token)).json()
    assert version["release"] == "1.23.2"

    with pytest.MonkeyPatch.context() as env:
        for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
            env.delenv(name, raising=False)
        connection = label_studio_connection(Workspace.open(started.root), start=False)
    assert connection.url == started.url and connection.token == token


def test_signup_without_a_link_is_refused(started: Started) -> None:
    with httpx.Client(base_url=started.url) as client:
        page = client.get("/user/signup/")
        csrf = client.cookies.get("csrftoken")
        assert page.status_code == 200 and csrf
        answer = client.post(
            "/user/signup/",
            data={
                "csrfmiddlewaretoken": csrf,
                "email": "intruder@example.org",
                "password": "a-long-enough-password-1",
            },
            headers={"Referer": f"{started.url}/user/signup/"},
        )
    assert answer.status_code == 403
    users = httpx.get(f"{started.url}/api/users", headers=_auth(started.credentials["token"]))
    assert [u["email"] for u in users.json()] == [started.credentials["email"]]


def test_serve_again_reuses_it_and_status_reports_it(started: Started) -> None:
    again = _printed(_serve(started.root))
    assert f"Already running at {started.url}" in again
    status = _printed(_serve(started.root, "--status"))
    assert f"Label Studio server: running at {started.url}" in status
    started.outputs += [again, status]


def test_the_secrets_stay_in_a_private_file(started: Started) -> None:
    folder = started.root / "label-studio"
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "credentials.json").st_mode) == 0o600
    assert not (folder / "data" / ".env").exists()  # Label Studio wrote no key of its own
    logs = (folder / "server.log").read_text()
    state = (folder / "server.json").read_text()
    for name in ("password", "token", "secret_key"):
        secret = started.credentials[name]
        assert secret not in logs and secret not in state
        assert not any(secret in output for output in started.outputs)


def test_stop_then_restart_keeps_the_owner_and_the_projects(started: Started) -> None:
    token = started.credentials["token"]
    created = httpx.post(
        f"{started.url}/api/projects", headers=_auth(token), json={"title": "kept"}
    )
    assert created.status_code == 201, created.text

    stopped = _printed(_serve(started.root, "--stop"))
    assert "Stopped the Label Studio server." in stopped
    status = _serve(started.root, "--status", check=False)
    assert status.returncode == 1 and "not running" in _printed(status)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{started.url}/health", timeout=2.0)
    assert "Not running." in _printed(_serve(started.root, "--stop"))

    restarted = _printed(_serve(started.root))
    assert "Label Studio is running at" in restarted and "template" not in restarted
    assert _url(restarted) == started.url  # the same port again: bookmarked links still work
    started.outputs += [stopped, _printed(status), restarted]
    projects = httpx.get(f"{started.url}/api/projects", headers=_auth(token)).json()
    assert [p["title"] for p in projects["results"]] == ["kept"]
    run = LabelStudioServer(Workspace.open(started.root)).status().run
    assert run is not None and run.startup_s is not None and run.startup_s < 60
    test_the_secrets_stay_in_a_private_file(started)


def test_a_restart_whose_last_port_is_taken_moves_and_says_so(started: Started) -> None:
    port = int(started.url.rsplit(":", 1)[1])
    _serve(started.root, "--stop")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        moved = _printed(_serve(started.root))
    assert f"Port {port}, which Label Studio had last time, is taken; using" in moved
    started.url = _url(moved)
    assert started.url != f"http://127.0.0.1:{port}"
    assert httpx.get(f"{started.url}/health", timeout=5.0).status_code == 200
    started.outputs.append(moved)
