"""Servers run detached from the command that started them: launching, waiting for health,
finding (pid liveness with /proc checks) and stopping them, and free local ports.

Used by both the Argilla server and Label Studio; each keeps its own command, environment,
health check and messages.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

HOST = "127.0.0.1"

# Popen objects of servers started by this process: kept so that Python reaps them (no
# zombies in a long-lived caller such as a test session) and does not warn about them.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def alive(pid: int) -> bool:
    child = CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # A zombie still answers kill(pid, 0).
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def is_ours(pid: int, marker: str) -> bool:
    """Alive, and (where /proc tells) running a command line that holds `marker` (our
    launcher, redis-server, our data folder), not a process that inherited a recycled pid."""
    if not alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.parent.is_dir():
        return True
    try:
        return marker in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False


def terminate(pid: int, grace_s: float) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; returns when the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)
    CHILDREN.pop(pid, None)


def group_members(pgid: int, marker: str) -> list[int]:
    """Live processes of process group `pgid` whose command line holds `marker`: a server's
    workers, which outlive a supervisor killed with SIGKILL. Empty where there is no /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if state == "Z" or int(pgrp) != pgid:
                continue
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            continue  # gone meanwhile
        if marker in cmdline.decode(errors="replace"):
            members.append(int(stat.parent.name))
    return members


def terminate_group(pid: int, marker: str, grace_s: float) -> bool:
    """Stop a server started by `launch_detached` and every process it started: SIGTERM to
    `pid` while it lives (a supervisor stops its own workers), else to what is left of its
    process group; SIGKILL to all of them after `grace_s`. `pid` leads the group
    (start_new_session), and only members whose command line holds `marker` are signalled,
    so a recycled pid never makes us signal a stranger. True if any process was there."""

    def remaining() -> list[int]:
        leader = [pid] if is_ours(pid, marker) else []
        return leader + [p for p in group_members(pid, marker) if p != pid]

    targets = remaining()
    for target in targets[:1] if targets[:1] == [pid] else targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while remaining() and time.monotonic() < deadline:
        time.sleep(0.1)
    while left := remaining():
        for target in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        time.sleep(0.05)
    CHILDREN.pop(pid, None)
    return bool(targets)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def launch_detached(
    command: list[str], cwd: Path, env: dict[str, str], log_path: Path, banner: str
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, output appended to `log_path` after a `banner`
    line, and keep it in CHILDREN."""
    with open(log_path, "ab") as log:
        log.write(f"\n=== traitforge: {banner} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the command that started it, and its Ctrl-C
        )
    CHILDREN[proc.pid] = proc
    return proc


def wait_healthy(
    proc: subprocess.Popen[bytes],
    healthy: Callable[[], bool],
    timeout_s: float,
    poll_s: float,
    state: Path,
    failure: Callable[[str], Exception],
    timeout_text: str,
) -> None:
    """Wait until `healthy()`; when the process exits or `timeout_s` passes (then it is
    stopped), forget its `state` file and raise `failure(what happened)`."""
    deadline = time.monotonic() + timeout_s
    while not healthy():
        if proc.poll() is not None:
            CHILDREN.pop(proc.pid, None)
            state.unlink(missing_ok=True)
            raise failure(f"the server exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            terminate(proc.pid, 5.0)
            state.unlink(missing_ok=True)
            raise failure(f"the server did not answer in {timeout_text}")
        time.sleep(poll_s)
