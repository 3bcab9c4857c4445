"""Where the embedded server keeps its state in a workspace, and the owner's secrets.

Everything lives in WORKSPACE/argilla/: the SQLite database, the server log, server.json
(pid and port of the running server), and two files readable only by their owner (mode 0600)
holding generated credentials: credentials.json (the Argilla owner) and annotators.json.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.annotators.server.environment import ArgillaServerError
from traitforge.workspace import Workspace
from traitforge.workspace.files import atomic_write_text

OWNER_USERNAME = "owner"
PRIVATE = 0o600


@dataclass(frozen=True)
class ServerPaths:
    root: Path

    @classmethod
    def of(cls, workspace: Workspace) -> ServerPaths:
        return cls(workspace.root.resolve() / "argilla")

    @property
    def database(self) -> Path:
        return self.root / "argilla.db"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}?check_same_thread=False"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def redis_log(self) -> Path:
        return self.root / "redis.log"

    @property
    def prepare_log(self) -> Path:
        return self.root / "prepare.log"

    @property
    def state(self) -> Path:
        return self.root / "server.json"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared.json"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def annotators(self) -> Path:
        return self.root / "annotators.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


@dataclass(frozen=True)
class OwnerCredentials:
    """The Argilla owner account of an embedded server; secrets stay out of repr()."""

    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    # Signs the web UI's session tokens; kept so that a restart does not log annotators out.
    session_secret: str = field(repr=False)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ArgillaServerError(
            f"cannot read {path}: {e}. Delete the file if it is damaged; traitforge recreates it"
        ) from e
    if not isinstance(data, dict):
        raise ArgillaServerError(f"{path} should hold a JSON object; delete it to recreate it")
    return data


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the first byte (secrets are never world-readable)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=PRIVATE)


def load_or_create_owner(paths: ServerPaths) -> tuple[OwnerCredentials, bool]:
    """The owner's credentials, generating them on first use. Returns (credentials, created).

    Never Argilla's default argilla/1234: the password, API key and session secret come from
    the `secrets` module.
    """
    data = read_json(paths.credentials)
    if data is not None:
        try:
            owner = OwnerCredentials(
                username=data["username"],
                password=data["password"],
                api_key=data["api_key"],
                session_secret=data["session_secret"],
            )
        except KeyError as e:
            raise ArgillaServerError(
                f"{paths.credentials} lacks the key {e}; delete the file and run "
                "`traitforge serve` again to generate new owner credentials"
            ) from e
        if os.stat(paths.credentials).st_mode & 0o077:
            os.chmod(paths.credentials, PRIVATE)
        return owner, False
    owner = OwnerCredentials(
        username=OWNER_USERNAME,
        password=secrets.token_urlsafe(18),
        api_key=secrets.token_urlsafe(32),
        session_secret=secrets.token_hex(32),
    )
    write_private_json(
        paths.credentials,
        {
            "username": owner.username,
            "password": owner.password,
            "api_key": owner.api_key,
            "session_secret": owner.session_secret,
        },
    )
    return owner, True
