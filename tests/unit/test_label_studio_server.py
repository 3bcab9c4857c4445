"""The pure parts of the Label Studio server: its environment, the owner's credentials file,
stale server.json handling, and the atomic builds of the environment and the template."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from traitforge.annotators.label_studio import (
    LabelStudioServer,
    LabelStudioServerError,
    ServerPaths,
    label_studio_connection,
)
from traitforge.annotators.label_studio import environment as ls_env
from traitforge.annotators.label_studio.server import (
    OWNER_EMAIL,
    _copy_atomically,
    load_or_create_owner,
    server_env,
)
from traitforge.workspace import Workspace


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _paths(tmp_path: Path) -> ServerPaths:
    paths = ServerPaths(tmp_path / "label-studio")
    paths.root.mkdir(parents=True)
    return paths


def test_server_env_keeps_only_what_label_studio_should_see(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Label Studio reads X, LABEL_STUDIO_X and HEARTEX_X alike: none of the caller's may leak.
    for name, value in {
        "USERNAME": "someone@else",
        "PASSWORD": "hunter2",
        "HOST": "https://example.org",
        "PORT": "8080",
        "DATABASE_NAME": "/elsewhere.sqlite3",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "HEARTEX_DEBUG": "1",
        "VIRTUAL_ENV": "/project/.venv",
        "PYTHONPATH": "/project/src",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    owner = load_or_create_owner(_paths(tmp_path))

    env = server_env(tmp_path / "data", owner.secret_key, owner)

    assert env["PATH"] == "/usr/bin:/bin"
    assert env["LABEL_STUDIO_BASE_DATA_DIR"] == str(tmp_path / "data")
    assert env["SECRET_KEY"] == owner.secret_key
    assert env["LABEL_STUDIO_USERNAME"] == OWNER_EMAIL
    assert env["LABEL_STUDIO_PASSWORD"] == owner.password
    assert env["LABEL_STUDIO_USER_TOKEN"] == owner.token
    assert env["LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN"] == "true"
    assert env["LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK"] == "true"
    assert env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    assert env["COLLECT_ANALYTICS"] == "false" and env["LATEST_VERSION_CHECK"] == "false"
    for leaked in (
        "USERNAME",
        "PASSWORD",
        "HOST",
        "PORT",
        "DATABASE_NAME",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED",
        "HEARTEX_DEBUG",
        "VIRTUAL_ENV",
        "PYTHONPATH",
    ):
        assert leaked not in env

    # Without an owner (the template's migration) no account is created.
    bare = server_env(tmp_path / "t", "k")
    assert not any(k.startswith("LABEL_STUDIO_USER") or k == "LABEL_STUDIO_PASSWORD" for k in bare)


def test_owner_credentials_are_generated_once_into_a_private_file(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    owner = load_or_create_owner(paths)
    assert _mode(paths.credentials) == 0o600
    assert owner.email == OWNER_EMAIL
    assert len(owner.token) == 40  # Label Studio's token column holds 40 characters
    assert len(owner.password) >= 20 and owner.password != owner.token
    for secret in (owner.password, owner.token, owner.secret_key):
        assert secret not in repr(owner)

    os.chmod(paths.credentials, 0o644)
    again = load_or_create_owner(paths)
    assert again == owner
    assert _mode(paths.credentials) == 0o600  # repaired

    other = load_or_create_owner(_paths(tmp_path / "other"))
    assert other.token != owner.token and other.password != owner.password


def test_a_credentials_file_without_a_key_is_refused(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    paths.credentials.write_text(json.dumps({"email": OWNER_EMAIL, "password": "p"}))
    with pytest.raises(LabelStudioServerError, match=r"credentials.json lacks the key 'token'"):
        load_or_create_owner(paths)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("pid", ["dead", "stranger"])
def test_a_stale_server_json_is_not_running_and_stop_forgets_it(tmp_path: Path, pid: str) -> None:
    workspace = Workspace.open(tmp_path / "ws")
    server = LabelStudioServer(workspace)
    server.paths.root.mkdir()
    # A dead pid, or a live one that is not Label Studio on this data folder (a recycled pid).
    number = _dead_pid() if pid == "dead" else os.getpid()
    state = {"pid": number, "port": 1, "url": "http://127.0.0.1:1", "starting": False}
    server.paths.state.write_text(json.dumps(state))

    status = server.status()
    assert not status.running and status.run is None
    assert f"server.json names pid {number}, which is gone" in status.detail
    assert server.stop() is False  # and our own process was not killed
    assert not server.paths.state.exists()
    assert server.status().detail == "not running"


def test_a_database_without_its_credentials_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    workspace = Workspace.open(tmp_path / "ws")
    server = LabelStudioServer(workspace)
    server.paths.data.mkdir(parents=True)
    server.paths.database.write_bytes(b"")
    with pytest.raises(LabelStudioServerError, match=r"credentials.json is missing but"):
        server.start()
    assert not server.paths.credentials.exists()


def test_an_existing_label_studio_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://ls.example:8080/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "abc123")
    workspace = Workspace.open(tmp_path / "ws")
    connection = label_studio_connection(workspace)
    assert connection.url == "http://ls.example:8080"
    assert connection.token == "abc123" and connection.external
    assert "abc123" not in repr(connection)
    assert not ServerPaths.of(workspace).root.exists()  # nothing started


def test_without_the_environment_a_stopped_server_is_named_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    workspace = Workspace.open(tmp_path / "ws")
    with pytest.raises(LabelStudioServerError, match=r"serve --backend label-studio"):
        label_studio_connection(workspace, start=False)


def test_the_data_folder_copy_replaces_leftovers_atomically(tmp_path: Path) -> None:
    source = tmp_path / "template"
    (source / "media").mkdir(parents=True)
    (source / "label_studio.sqlite3").write_text("db")
    target = tmp_path / "ws" / "data"
    target.mkdir(parents=True)
    (target / "junk").write_text("from a start that failed early")
    (tmp_path / "ws" / ".data.tmp-dead").mkdir()  # a killed copy

    _copy_atomically(source, target)

    assert sorted(p.name for p in target.iterdir()) == ["label_studio.sqlite3", "media"]
    assert _mode(target) == 0o700
    assert [p.name for p in (tmp_path / "ws").iterdir()] == ["data"]


def test_a_failed_template_migration_leaves_no_template(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAITFORGE_CACHE_DIR", str(tmp_path))
    (tmp_path / f".{ls_env.template_dir().name}.tmp-killed").mkdir()  # a killed migration
    with pytest.raises(LabelStudioServerError, match=r"migrating a Label Studio data folder"):
        ls_env.ensure_template(Path("/bin/false"), lambda d: dict(os.environ))
    assert not ls_env.template_dir().exists()
    assert not list(tmp_path.glob(".*.tmp-*"))

    # A python that "migrates" by creating the database: the template appears under its name.
    fake = tmp_path / "fake-python"
    fake.write_text(f'#!/bin/sh\ntouch "$DATA/{ls_env.TEMPLATE_DATABASE}"\n')
    fake.chmod(0o755)
    template = ls_env.ensure_template(fake, lambda d: {**os.environ, "DATA": str(d)})
    assert template == ls_env.template_dir()
    assert (template / ls_env.TEMPLATE_DATABASE).is_file()
    assert ls_env.ensure_template(Path("/bin/false"), lambda d: {}) == template  # reused


def test_an_incomplete_environment_is_named_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TRAITFORGE_CACHE_DIR", str(tmp_path))
    (ls_env.environment_dir() / "bin").mkdir(parents=True)
    with pytest.raises(LabelStudioServerError, match=r"pip install label-studio==1\.23\.2"):
        ls_env.label_studio_python()
