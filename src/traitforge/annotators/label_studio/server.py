"""Starting, finding and stopping a workspace's Label Studio server (the real label-studio 1.23.2).

Everything lives in WORKSPACE/label-studio/ (mode 0700): data/ (Label Studio's data folder,
SQLite database included), server.log, server.json (pid and port of the running server),
port.json (the port it had last, reused when free) and credentials.json (mode 0600: the
owner's generated email, password and API token, and the Django secret key). Secrets reach
the server through its environment only, never its command line or our output.

Like the Argilla server it runs detached, in its own session. It counts as running only when
server.json's pid is alive, runs label_studio.server on this workspace's data folder, and the
server on the port accepts the owner's token: a stale server.json never blocks a restart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from traitforge.annotators.label_studio.environment import (
    LABEL_STUDIO_VERSION,
    TEMPLATE_DATABASE,
    LabelStudioServerError,
    ensure_template,
    label_studio_python,
)
from traitforge.annotators.server.detached import (
    HOST,
    free_port,
    is_ours,
    launch_detached,
    now_iso,
    port_free,
    tail,
    terminate,
    wait_healthy,
)
from traitforge.annotators.server.environment import Notify
from traitforge.annotators.server.state import (
    StatePaths,
    keep_private,
    locked,
    read_json_object,
    write_json,
    write_private_json,
)
from traitforge.schemas.annotation_config import PORTS
from traitforge.workspace import Workspace

# An existing Label Studio, named as label-studio-sdk names them (the Argilla side likewise
# uses the argilla SDK's ARGILLA_API_URL / ARGILLA_API_KEY).
ENV_URL = "LABEL_STUDIO_URL"
ENV_API_KEY = "LABEL_STUDIO_API_KEY"
OWNER_EMAIL = "owner@traitforge.local"  # Label Studio's usernames are emails
START_TIMEOUT_S = 240.0
STOP_GRACE_S = 20.0
MODULE = "label_studio.server"

# Label Studio reads many settings under three names (LABEL_STUDIO_X, HEARTEX_X and plain X:
# HOST, PORT, USERNAME, PASSWORD, DATABASE_NAME...), so the server gets only these of ours.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ")
_SETTINGS = {
    "DJANGO_DB": "sqlite",
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    # Read once, when the first start creates the organization: the owner's token then works
    # as `Authorization: Token <token>`.
    "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "COLLECT_ANALYTICS": "false",
    "LATEST_VERSION_CHECK": "false",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class Connection:
    """Where and as whom to reach Label Studio with owner rights (`Authorization: Token ...`)."""

    url: str
    token: str = field(repr=False)
    external: bool = False  # True: from LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY


@dataclass(frozen=True)
class Owner:
    """The owner account of a workspace's server; secrets stay out of repr()."""

    email: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    secret_key: str = field(repr=False)  # Django's: signs sessions and JWTs


@dataclass(frozen=True)
class ServerRun:
    """A running server. `url` serves both the API and the annotators' web UI."""

    url: str
    pid: int
    port: int
    reused: bool = False  # True when it was already running
    startup_s: float | None = None  # launch to healthy, when this call started it
    from_template: bool = False  # its data folder was copied from the migrated template
    log: Path | None = None


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    detail: str
    run: ServerRun | None = None


@dataclass(frozen=True)
class ServerPaths(StatePaths):
    FOLDER = "label-studio"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def database(self) -> Path:
        return self.data / TEMPLATE_DATABASE

    @property
    def last_port(self) -> Path:
        """The port the server had last (kept after a stop, unlike server.json)."""
        return self.root / "port.json"


def server_env(data_dir: Path, secret_key: str, owner: Owner | None = None) -> dict[str, str]:
    """The whole environment Label Studio runs with for `data_dir`; with `owner`, the account
    that its first start creates (a later start finds it and changes nothing)."""
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env.update(_SETTINGS)
    env["LABEL_STUDIO_BASE_DATA_DIR"] = str(data_dir)
    # Given here, Label Studio writes no DATA_DIR/.env with a key of its own.
    env["SECRET_KEY"] = secret_key
    if owner is not None:
        env.update(
            LABEL_STUDIO_USERNAME=owner.email,
            LABEL_STUDIO_PASSWORD=owner.password,
            LABEL_STUDIO_USER_TOKEN=owner.token,
        )
    return env


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file does not exist."""
    return read_json_object(path, LabelStudioServerError)


def load_or_create_owner(paths: ServerPaths) -> Owner:
    """The owner's credentials, generated with `secrets` on first use into a 0600 file."""
    data = read_json(paths.credentials)
    if data is None:
        owner = Owner(
            email=OWNER_EMAIL,
            password=secrets.token_urlsafe(18),
            token=secrets.token_hex(20),  # Label Studio's token column holds 40 characters
            secret_key=secrets.token_urlsafe(50),
        )
        payload = {
            "email": owner.email,
            "password": owner.password,
            "token": owner.token,
            "secret_key": owner.secret_key,
        }
        write_private_json(paths.credentials, payload)
        return owner
    try:
        owner = Owner(data["email"], data["password"], data["token"], data["secret_key"])
    except KeyError as e:
        raise LabelStudioServerError(
            f"{paths.credentials} lacks the key {e}; restore the file from a backup, or move "
            f"{paths.root} away to start a fresh Label Studio (its projects are lost)"
        ) from e
    keep_private(paths.credentials)
    return owner


class LabelStudioServer:
    """A workspace's own Label Studio server: `ensure_running()` for a connection, `stop()`,
    `status()`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.paths = ServerPaths.of(workspace)

    def ensure_running(self, port: int | None = None, notify: Notify | None = None) -> Connection:
        run = self.start(port, notify)
        return Connection(run.url, load_or_create_owner(self.paths).token)

    def start(self, port: int | None = None, notify: Notify | None = None) -> ServerRun:
        """Start the server, or return the one already running. Its port: `port`, else
        annotation.label_studio.port, else the one it had last time when that is free (so
        bookmarked links keep working), else a free one.

        The first start on a machine creates Label Studio's environment (~1 GB) and migrated
        template; a workspace's first start copies that template and creates the owner.
        `notify` receives progress lines meant for a person (slow first-time steps).
        """
        paths = self.paths
        # Owner-only: the data folder holds password hashes and the token in clear.
        paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        paths.root.chmod(0o700)
        with self._locked():
            status = self._status()
            if status.run is not None:
                if status.running:
                    return replace(status.run, reused=True, startup_s=None)
                raise LabelStudioServerError(
                    f"{status.detail}. Look at {paths.log}; `traitforge serve --backend "
                    f"label-studio --stop -w {self.workspace.root}` stops it so that a new "
                    "start can begin"
                )
            paths.state.unlink(missing_ok=True)
            port = self._port(port, notify)
            if paths.database.exists() and not paths.credentials.exists():
                raise LabelStudioServerError(
                    f"{paths.credentials} is missing but {paths.data} holds an owner made with "
                    f"it; restore the file, or move {paths.root} away to start a fresh Label "
                    "Studio (its projects are lost)"
                )
            python = label_studio_python(notify)
            owner = load_or_create_owner(paths)
            from_template = False
            if not paths.database.exists():
                template = ensure_template(
                    python, lambda d: server_env(d, secrets.token_urlsafe(50)), notify
                )
                _copy_atomically(template, paths.data)
                from_template = True
            return self._launch(python, owner, port, from_template)

    def stop(self) -> bool:
        """Stop the server. True if one was running."""
        if not self.paths.root.exists():
            return False
        with self._locked():
            state = read_json(self.paths.state)
            if state is None:
                return False
            stopped = False
            if is_ours(state["pid"], str(self.paths.data)):
                terminate(state["pid"], STOP_GRACE_S)
                stopped = True
            self.paths.state.unlink(missing_ok=True)
            return stopped

    def status(self) -> ServerStatus:
        """Whether the server is running and answers the owner's token, and where."""
        return self._status()

    # -- internals ---------------------------------------------------------------------------

    def _port(self, asked: int | None, notify: Notify | None) -> int:
        asked = self.workspace.config.annotation.label_studio.port if asked is None else asked
        if asked is not None:
            if not port_free(asked):
                raise LabelStudioServerError(
                    f"port {asked} on {HOST} is already in use by another program; pick a "
                    "free one with --port PORT (or annotation.label_studio.port), or leave "
                    "both unset to get one"
                )
            return asked
        last = read_json(self.paths.last_port)
        before = last.get("port") if last else None
        if isinstance(before, int) and before in PORTS and port_free(before):
            return before
        port = free_port()
        if isinstance(before, int) and notify:
            notify(f"Port {before}, which Label Studio had last time, is taken; using {port}.")
        return port

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One start or stop at a time per workspace: a second caller waits, then reuses."""
        self.paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with locked(self.paths.lock):
            yield

    def _status(self) -> ServerStatus:
        state = read_json(self.paths.state)
        if state is None:
            return ServerStatus(False, "not running")
        pid = state["pid"]
        if not is_ours(pid, str(self.paths.data)):
            return ServerStatus(False, f"not running (server.json names pid {pid}, which is gone)")
        run = ServerRun(
            url=state["url"],
            pid=pid,
            port=state["port"],
            startup_s=state.get("startup_s"),
            from_template=state.get("from_template", False),
            log=self.paths.log,
        )
        # A server whose starter was killed mid-start is still coming up: give it its time.
        attempts = int(START_TIMEOUT_S / 0.5) if state.get("starting") else 3
        token = load_or_create_owner(self.paths).token if self.paths.credentials.exists() else ""
        if _answers(run.url, token, attempts):
            return ServerStatus(True, f"running at {run.url} (pid {pid})", run)
        return ServerStatus(
            False, f"server process {pid} is alive but does not answer at {run.url}", run
        )

    def _launch(self, python: Path, owner: Owner, port: int, from_template: bool) -> ServerRun:
        paths = self.paths
        url = f"http://{HOST}:{port}"
        started_at = now_iso()
        command = [
            *(str(python), "-m", MODULE, "start", "--no-browser", "--data-dir", str(paths.data)),
            *("--internal-host", HOST, "-p", str(port)),
        ]
        started = time.perf_counter()
        proc = launch_detached(
            command,
            paths.root,
            server_env(paths.data, owner.secret_key, owner),
            paths.log,
            f"starting label-studio at {url}, {started_at}",
        )
        state: dict[str, Any] = {
            "pid": proc.pid,
            "port": port,
            "url": url,
            "started_at": started_at,
            "startup_s": None,
            "starting": True,
            "from_template": from_template,
            "version": LABEL_STUDIO_VERSION,
        }
        # Recorded before the wait: a command killed while the server starts leaves a server
        # that the next command finds and waits for.
        write_json(paths.state, state)
        write_json(paths.last_port, {"port": port})
        wait_healthy(
            proc,
            lambda: _answers(url, owner.token),
            START_TIMEOUT_S,
            0.25,
            paths.state,
            self._failure,
            f"{START_TIMEOUT_S:.0f} s",
        )
        startup_s = round(time.perf_counter() - started, 2)
        state.update(startup_s=startup_s, starting=False)
        write_json(paths.state, state)
        return ServerRun(url, proc.pid, port, False, startup_s, from_template, paths.log)

    def _failure(self, what: str) -> LabelStudioServerError:
        return LabelStudioServerError(
            f"Label Studio did not start: {what}. Last lines of {self.paths.log}:\n"
            f"{tail(self.paths.log, 15)}"
        )


def _answers(url: str, token: str, attempts: int = 1) -> bool:
    """/health is up and the owner's token is accepted: the server on this port is ours (a
    stranger's Label Studio does not know the token)."""
    for attempt in range(attempts):
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(f"{url}/health", timeout=3.0).is_success:
                me = httpx.get(
                    f"{url}/api/current-user/whoami",
                    headers={"Authorization": f"Token {token}"},
                    timeout=5.0,
                )
                if me.is_success and me.json().get("email") == OWNER_EMAIL:
                    return True
        if attempt + 1 < attempts:
            time.sleep(0.5)
    return False


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy a folder to a temporary name beside `target`, then rename: a killed copy leaves no
    half data folder under the final name."""
    for leftover in target.parent.glob(f".{target.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
    if target.exists():  # no database in it (the caller checked): a start that failed early
        shutil.rmtree(target)
    try:
        shutil.copytree(source, staging)
        staging.chmod(0o700)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def label_studio_connection(
    workspace: Workspace, start: bool = True, notify: Notify | None = None
) -> Connection:
    """LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY when both are set (an existing Label Studio),
    else the workspace's own server, started if needed (`start=False` raises instead when it
    is not running)."""
    url, key = os.environ.get(ENV_URL), os.environ.get(ENV_API_KEY)
    if url and key:
        return Connection(url.rstrip("/"), key, external=True)
    server = LabelStudioServer(workspace)
    if start:
        return server.ensure_running(notify=notify)
    status = server.status()
    if not status.running or status.run is None:
        raise LabelStudioServerError(
            f"the Label Studio server of {workspace.root} is not running ({status.detail}); start "
            f"it with `traitforge serve --backend label-studio -w {workspace.root}`, or set "
            f"{ENV_URL} and {ENV_API_KEY} to use an existing Label Studio"
        )
    return Connection(status.run.url, load_or_create_owner(server.paths).token)
