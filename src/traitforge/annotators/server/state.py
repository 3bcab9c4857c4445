"""A server's state files in a workspace: JSON objects (server.json, credentials), secrets
readable only by their owner (mode 0600), and the lock that serialises starts and stops.

Used by both the Argilla server and Label Studio; each passes its own error class so that a
damaged file is reported as that server's error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from traitforge.errors import TraitforgeError
from traitforge.workspace import Workspace
from traitforge.workspace.files import atomic_write_text

PRIVATE = 0o600


@dataclass(frozen=True)
class StatePaths:
    """The files every server keeps in its folder WORKSPACE/FOLDER; subclasses add their own."""

    root: Path
    FOLDER: ClassVar[str]

    @classmethod
    def of(cls, workspace: Workspace) -> Self:
        return cls(workspace.root.resolve() / cls.FOLDER)

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def state(self) -> Path:
        return self.root / "server.json"

    @property
    def credentials(self) -> Path:
        return self.root / "credentials.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"


def read_json_object(path: Path, error: type[TraitforgeError]) -> dict[str, Any] | None:
    """A JSON object from `path`, or None when the file does not exist."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise error(
            f"cannot read {path}: {e}. Delete the file if it is damaged; traitforge recreates it"
        ) from e
    if not isinstance(data, dict):
        raise error(f"{path} should hold a JSON object; delete it to recreate it")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, indented, with a final newline (server.json)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically with mode 0600 from the first byte (secrets are never world-readable)."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=PRIVATE)


def keep_private(path: Path) -> None:
    """Take back group and other rights from a secrets file someone loosened."""
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, PRIVATE)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """One start or stop at a time per workspace: a second caller waits, then reuses."""
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
