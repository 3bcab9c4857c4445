"""Where the embedded server keeps its state in a workspace, and the owner's secrets.

Everything lives in WORKSPACE/argilla/: the SQLite database, the server log, server.json
(pid and port of the running server), and two files readable only by their owner (mode 0600)
holding generated credentials: credentials.json (the Argilla owner) and annotators.json.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.annotators.server.environment import ArgillaServerError
from traitforge.annotators.server.state import (
    StatePaths,
    keep_private,
    read_json_object,
    write_private_json,
)

OWNER_USERNAME = "owner"


@dataclass(frozen=True)
class ServerPaths(StatePaths):
    FOLDER = "argilla"

    @property
    def database(self) -> Path:
        return self.root / "argilla.db"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.database}?check_same_thread=False"

    @property
    def redis_log(self) -> Path:
        return self.root / "redis.log"

    @property
    def prepare_log(self) -> Path:
        return self.root / "prepare.log"

    @property
    def prepared(self) -> Path:
        return self.root / "prepared.json"

    @property
    def annotators(self) -> Path:
        return self.root / "annotators.json"


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
    return read_json_object(path, ArgillaServerError)


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
        keep_private(paths.credentials)
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
