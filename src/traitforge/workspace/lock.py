"""Workspace locks: the commands that write to the annotation server take turns.

Two pushes at once both create the same datasets and records, and one dies on the server's
conflict. `push`, `pull`, `simulate` and the loop (which does all three) therefore hold the
workspace's server lock while they run, and a second one refuses at once, naming the holder.
The loop also holds a loop lock for its whole run, so that no second loop starts beside it,
and lends the server lock out while it waits for people to annotate (`lock_released`): then
a `pull` to look at the answers, or `simulate` standing in for people, may run.

An flock rather than a pid file: the kernel releases it when the holder exits, however it
exits (kill -9 included), so a crash never leaves a stale lock behind. The file itself stays;
it only tells the refusal who holds the lock. A lock is re-entrant within one process,
because the loop holds it and calls push and pull inside.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from traitforge.errors import WorkspaceError

LOCK_FILE = ".lock"  # held by every command that writes to the annotation server
LOOP_LOCK_FILE = ".loop.lock"  # held by the loop for its whole run


@dataclass
class _Held:
    fd: int
    depth: int


_held: dict[Path, _Held] = {}  # resolved lock file -> this process's hold on it
_guard = threading.Lock()


@contextmanager
def workspace_lock(root: Path, command: str, name: str = LOCK_FILE) -> Iterator[None]:
    """Hold the lock file `name` of the workspace at `root` for `command` (its name in the
    refusal). Raises WorkspaceError when another process holds it."""
    path = (root / name).resolve()
    with _guard:
        held = _held.get(path)
        if held is None:
            fd = _open(path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                holder = _holder(fd, root)
                os.close(fd)
                raise WorkspaceError(
                    f"{holder}; wait for it to finish, then run this command again (it holds "
                    f"the lock {path}, released as soon as that process exits)"
                ) from e
            _claim(fd, command)
            held = _held[path] = _Held(fd, 0)
        held.depth += 1
    try:
        yield
    finally:
        with _guard:
            held.depth -= 1
            if not held.depth:
                del _held[path]
                os.close(held.fd)  # closing the only descriptor releases the flock


@contextmanager
def lock_released(
    root: Path, command: str, notify: Callable[[str], object] | None = None
) -> Iterator[None]:
    """Let other processes take this process's server lock of `root` for the duration; then
    take it back for `command`, waiting for whoever took it meanwhile to finish (`notify` is
    told who). Does nothing when this process does not hold the lock."""
    with _guard:
        held = _held.get((root / LOCK_FILE).resolve())
    if held is None:
        yield
        return
    fcntl.flock(held.fd, fcntl.LOCK_UN)
    try:
        yield
    finally:
        try:
            fcntl.flock(held.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if notify:
                notify(f"{_holder(held.fd, root)}; waiting for it to finish")
            fcntl.flock(held.fd, fcntl.LOCK_EX)
        _claim(held.fd, command)


def _open(path: Path) -> int:
    # os.open descriptors are not inherited by child processes (PEP 446), so a server that
    # the command starts does not keep the lock after the command ends.
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _claim(fd: int, command: str) -> None:
    """Write the holder's pid and command for the refusals of others."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)


def _holder(fd: int, root: Path) -> str:
    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    if len(holder) >= 2 and holder[0].isdigit():
        return f"another {holder[1]} is running on {root} (pid {holder[0]})"
    # the holder has locked but not yet written its name
    return f"another push, pull, simulate or loop is running on {root}"
