"""Starting, finding and stopping a workspace's embedded Argilla server.

The server runs detached from the command that started it (its own session, output in
WORKSPACE/argilla/server.log), so annotators keep working after `traitforge serve` returns.
server.json records its pid, port and a random instance id that the server reports on its
status endpoint: a server counts as running only when that pid is alive, is our launcher, and
the server on the port answers with the same id. So a stale server.json (after kill -9, a
reboot, or a reused pid) never blocks a restart and never makes us kill a stranger's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from traitforge.annotators.server.detached import (
    CHILDREN,
    HOST,
    is_ours,
    launch_detached,
    now_iso,
    port_free,
    tail,
    terminate,
    terminate_group,
    wait_healthy,
)
from traitforge.annotators.server.detached import free_port as free_port
from traitforge.annotators.server.environment import (
    ARGILLA_SERVER_VERSION,
    ArgillaServerError,
    Notify,
    environment_dir,
    server_python,
)
from traitforge.annotators.server.files import (
    OwnerCredentials,
    ServerPaths,
    load_or_create_owner,
    read_json,
)
from traitforge.annotators.server.state import locked, write_json
from traitforge.workspace import Workspace
from traitforge.workspace.files import atomic_write_text

LAUNCHER = Path(__file__).resolve().parent / "embedded" / "launch.py"
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 20.0


def _server_marker() -> str:
    # In the command line of the launcher and of each worker it spawns (the server
    # environment's python), and of no process that merely inherited a recycled pid.
    return environment_dir().name


@dataclass(frozen=True)
class ServerInfo:
    """A running embedded server. `url` serves both the API and the annotators' web UI."""

    url: str
    pid: int
    port: int
    redis: str  # "fakeredis (...)" or "redis-server at redis://..."
    reused: bool = False  # True when ensure_server found it already running
    startup_s: float | None = None  # launch to healthy, when this call started it
    log: Path | None = None
    workers: int = 1  # uvicorn processes serving the port


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    detail: str
    info: ServerInfo | None = None


def ensure_server(
    workspace: Workspace,
    port: int | None = None,
    notify: Notify | None = None,
    workers: int | None = None,
) -> ServerInfo:
    """Start the workspace's embedded Argilla server, or return the one already running.

    Use this (or `owner_connection`) before talking to the embedded server. On first use it
    creates the server's virtual environment, migrates WORKSPACE/argilla/argilla.db and
    creates the owner account with generated credentials. `port` defaults to
    annotation.argilla.port and `workers` to annotation.argilla.server_workers; a server
    already running keeps its port and workers. `notify` receives progress lines meant for a
    person (slow first-time steps).
    """
    paths = ServerPaths.of(workspace)
    # Owner-only: the database holds password hashes and API keys in clear.
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths.root.chmod(0o700)
    argilla = workspace.config.annotation.argilla
    with locked(paths.lock):
        status = _status(paths)
        if status.info is not None:
            if status.running:
                if not paths.credentials.exists():
                    # Deleted while the server runs: new owner secrets, applied to its database.
                    owner, _ = load_or_create_owner(paths)
                    _prepare(server_python(notify), paths, owner, argilla.workspace)
                return replace(status.info, reused=True, startup_s=None)
            raise ArgillaServerError(
                f"{status.detail}. Look at {paths.log}; `traitforge serve --stop -w "
                f"{workspace.root}` stops it so that `traitforge serve` can start a fresh one"
            )
        _clean_stale(paths)
        port = argilla.port if port is None else port
        workers = argilla.server_workers if workers is None else workers
        if workers < 1:
            raise ArgillaServerError(
                f"the embedded server needs at least 1 worker process, got {workers}; set "
                "annotation.argilla.server_workers to 1 or more"
            )
        _check_port_free(port)
        python = server_python(notify)
        owner, created = load_or_create_owner(paths)
        expected = {"server_version": ARGILLA_SERVER_VERSION, "workspace": argilla.workspace}
        if created or read_json(paths.prepared) != expected or not paths.database.exists():
            if notify:
                notify(f"Preparing the Argilla database {paths.database} (first start)")
            _prepare(python, paths, owner, argilla.workspace)
            atomic_write_text(paths.prepared, json.dumps(expected) + "\n")
        redis_url, redis_pid, redis_label = _start_redis(paths, notify)
        try:
            return _launch(python, paths, owner, port, workers, redis_url, redis_pid, redis_label)
        except BaseException:
            if redis_pid is not None:
                terminate(redis_pid, 5.0)
            raise


def stop_server(workspace: Workspace) -> bool:
    """Stop the workspace's embedded server and its redis-server. True if one was running."""
    paths = ServerPaths.of(workspace)
    if not paths.root.exists():
        return False
    with locked(paths.lock):
        state = read_json(paths.state)
        if state is None:
            return False
        # Every worker too, and those left serving by a launcher killed with SIGKILL.
        stopped = terminate_group(state["pid"], _server_marker(), STOP_GRACE_S)
        if state.get("redis_pid") and is_ours(state["redis_pid"], "redis-server"):
            terminate(state["redis_pid"], 5.0)
        paths.state.unlink(missing_ok=True)
        return stopped


def server_status(workspace: Workspace) -> ServerStatus:
    """Whether the workspace's embedded server is running and healthy, and where."""
    paths = ServerPaths.of(workspace)
    return _status(paths)


# -- state ----------------------------------------------------------------------------------


def _status(paths: ServerPaths) -> ServerStatus:
    state = read_json(paths.state)
    if state is None:
        return ServerStatus(False, "not running")
    pid = state["pid"]
    if not is_ours(pid, "launch.py"):
        return ServerStatus(False, f"not running (server.json names pid {pid}, which is gone)")
    info = ServerInfo(
        url=state["url"],
        pid=pid,
        port=state["port"],
        redis=state["redis"],
        startup_s=state.get("startup_s"),
        log=paths.log,
        workers=state.get("workers", 1),
    )
    # A server whose starter was killed mid-start is still coming up: give it its start time.
    attempts = int(START_TIMEOUT_S / 0.5) if state.get("starting") else 3
    if _healthy(state["url"], state["instance"], attempts=attempts):
        return ServerStatus(True, f"running at {state['url']} (pid {pid})", info)
    return ServerStatus(
        False, f"server process {pid} is alive but does not answer at {state['url']}", info
    )


def _clean_stale(paths: ServerPaths) -> None:
    """Forget a dead server; stop the workers and redis-server it leaves behind after a
    kill -9 of its launcher."""
    state = read_json(paths.state)
    if state is None:
        return
    terminate_group(state["pid"], _server_marker(), 5.0)
    if state.get("redis_pid") and is_ours(state["redis_pid"], "redis-server"):
        terminate(state["redis_pid"], 5.0)
    paths.state.unlink(missing_ok=True)


def _healthy(url: str, instance: str, attempts: int = 1) -> bool:
    for attempt in range(attempts):
        try:
            response = httpx.get(f"{url}/api/v1/status", timeout=3.0)
            engine = response.json().get("search_engine", {}) if response.is_success else {}
            if engine.get("instance") == instance:
                return True
        except (httpx.HTTPError, ValueError):
            pass
        if attempt + 1 < attempts:
            time.sleep(0.5)
    return False


# -- starting -------------------------------------------------------------------------------


def _check_port_free(port: int, wait_s: float = 3.0) -> None:
    # A server that just died (kill -9, --stop) can hold its listening socket for a moment
    # after its process is gone.
    deadline = time.monotonic() + wait_s
    while not port_free(port):
        if time.monotonic() < deadline:
            time.sleep(0.1)
            continue
        raise ArgillaServerError(
            f"port {port} on {HOST} is already in use by another program; pick a free one with "
            "`traitforge serve --port PORT` (or set annotation.argilla.port in the config)"
        )


def _server_env(
    paths: ServerPaths, owner: OwnerCredentials, redis_url: str | None = None
) -> dict[str, str]:
    # Inherited ARGILLA_* variables configure clients (or another server) and must not leak
    # into this one; nor may the project's virtualenv or PYTHONPATH.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ARGILLA_") and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(
        ARGILLA_DATABASE_URL=paths.database_url,
        ARGILLA_HOME_PATH=str(paths.root),
        ARGILLA_AUTH_SECRET_KEY=owner.session_secret,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["ARGILLA_REDIS_URL"] = redis_url
    return env


def _prepare(
    python: Path, paths: ServerPaths, owner: OwnerCredentials, argilla_workspace: str
) -> None:
    """Migrate the database and upsert the owner. The secrets travel on stdin, never on a
    command line (visible in `ps`) or in the log."""
    request = {
        "username": owner.username,
        "password": owner.password,
        "api_key": owner.api_key,
        "workspace": argilla_workspace,
    }
    with open(paths.prepare_log, "w") as log:
        result = subprocess.run(
            [str(python), str(LAUNCHER), "prepare"],
            input=json.dumps(request).encode(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(paths, owner),
            cwd=paths.root,
        )
    if result.returncode != 0:
        raise ArgillaServerError(
            f"preparing the Argilla database {paths.database} failed (exit {result.returncode}); "
            f"the cause is at the end of {paths.prepare_log}. If the database is damaged, move it "
            "away and run `traitforge serve` again to start with an empty one"
        )


def _start_redis(paths: ServerPaths, notify: Notify | None) -> tuple[str | None, int | None, str]:
    """A private redis-server on a free port when the binary is installed, else None (the
    launcher then patches in fakeredis)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None, "fakeredis (no redis-server on PATH)"
    port = free_port()
    with open(paths.redis_log, "ab") as log:
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            cwd=paths.root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    CHILDREN[proc.pid] = proc
    url = f"redis://{HOST}:{port}/0"
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return url, proc.pid, f"redis-server at {url}"
        time.sleep(0.1)
    terminate(proc.pid, 2.0)
    if notify:
        notify(f"redis-server did not start (see {paths.redis_log}); using fakeredis instead")
    return None, None, "fakeredis (redis-server failed to start)"


def _launch(
    python: Path,
    paths: ServerPaths,
    owner: OwnerCredentials,
    port: int,
    workers: int,
    redis_url: str | None,
    redis_pid: int | None,
    redis_label: str,
) -> ServerInfo:
    instance = secrets.token_hex(8)
    env = _server_env(paths, owner, redis_url)
    env["TRAITFORGE_SERVER_ID"] = instance
    url = f"http://{HOST}:{port}"
    started_at = now_iso()
    started = time.perf_counter()
    proc = launch_detached(
        [str(python), str(LAUNCHER), "serve", "--port", str(port), "--workers", str(workers)],
        paths.root,  # argilla reads ./.oauth.yaml: only the workspace's counts
        env,
        paths.log,
        f"starting argilla-server at {url}, {started_at}",
    )
    state: dict[str, Any] = {
        "pid": proc.pid,
        "port": port,
        "workers": workers,
        "url": url,
        "instance": instance,
        "redis": redis_label,
        "redis_pid": redis_pid,
        "started_at": started_at,
        "startup_s": None,
        "starting": True,
        "server_version": ARGILLA_SERVER_VERSION,
    }
    # Recorded before the wait: a command killed while the server starts leaves a server that
    # the next command finds and waits for, instead of a stranger holding the port.
    write_json(paths.state, state)
    try:
        wait_healthy(
            proc,
            lambda: _healthy(url, instance),
            START_TIMEOUT_S,
            0.2,
            paths.state,
            lambda what: _start_failure(paths, port, what),
            f"{START_TIMEOUT_S} s",
        )
    except ArgillaServerError:
        # The launcher is gone; workers it had spawned would keep the port.
        terminate_group(proc.pid, _server_marker(), 5.0)
        raise
    startup_s = round(time.perf_counter() - started, 2)
    state.update(startup_s=startup_s, starting=False)
    write_json(paths.state, state)
    return ServerInfo(url, proc.pid, port, redis_label, False, startup_s, paths.log, workers)


def _start_failure(paths: ServerPaths, port: int, what: str) -> ArgillaServerError:
    last_lines = tail(paths.log, 15)
    if "address already in use" in last_lines:
        return ArgillaServerError(
            f"port {port} was taken while the server started; pick another with "
            "`traitforge serve --port PORT`"
        )
    return ArgillaServerError(
        f"the embedded Argilla server did not start: {what}. Last lines of {paths.log}:\n"
        f"{last_lines}"
    )
