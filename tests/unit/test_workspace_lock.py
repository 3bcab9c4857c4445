"""The workspace lock of the commands that write to the annotation server: a second push, pull,
simulate or loop refuses with a clear error while another process holds it; a killed holder
leaves no stale lock; the holding process itself may re-enter it (the loop pushes inside).

No server is needed: the commands refuse before connecting, and the workspace points at an
unreachable Argilla (ARGILLA_API_URL) that an empty push never contacts.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from traitforge.app import loop, workflows
from traitforge.cli import app
from traitforge.errors import WorkspaceError
from traitforge.workspace import Workspace, dump_config, workspace_lock
from traitforge.workspace.lock import LOCK_FILE, LOOP_LOCK_FILE, lock_released

HOLD = """
import sys, time
from pathlib import Path
from traitforge.workspace import workspace_lock
with workspace_lock(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
    if len(sys.argv) > 4:
        Path(sys.argv[4]).touch()  # the last thing done before letting go
"""

TRY = """
import sys
from pathlib import Path
from traitforge.errors import WorkspaceError
from traitforge.workspace import workspace_lock
try:
    with workspace_lock(Path(sys.argv[1]), sys.argv[2], *sys.argv[3:]):
        print("acquired")
except WorkspaceError as e:
    print(e)
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("ARGILLA_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ARGILLA_API_KEY", "unused-key")
    root = tmp_path / "ws"
    workspace = Workspace.open(root)
    config = workspace.config
    argilla = config.annotation.argilla.model_copy(update={"retries": 0})
    annotation = config.annotation.model_copy(update={"argilla": argilla})
    (root / Workspace.CONFIG_FILE).write_text(
        dump_config(config.model_copy(update={"annotation": annotation})), encoding="utf-8"
    )
    return Workspace.open(root)


@contextmanager
def _held_elsewhere(
    root: Path, command: str, seconds: float = 120
) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the server lock for `command`, until the block ends or
    `seconds` pass."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), command, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        yield process
    finally:
        process.kill()
        process.wait()


def _try_elsewhere(root: Path, command: str, *name: str) -> str:
    """What another process gets when it tries to take the lock (file `name`) for `command`:
    'acquired' or the refusal."""
    out = subprocess.run(
        [sys.executable, "-c", TRY, str(root), command, *name],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _refusal(ws: Workspace, command: str, pid: int) -> str:
    return (
        rf"another {command} is running on {re.escape(str(ws.root))} \(pid {pid}\); "
        "wait for it to finish"
    )


@pytest.mark.parametrize(
    "run",
    [
        workflows.push,
        workflows.pull,
        lambda ws: workflows.simulate(ws, 1),
        lambda ws: loop.run(ws, rounds=1, budget=2, simulate=1, log=lambda _: None),
    ],
    ids=["push", "pull", "simulate", "loop"],
)
def test_commands_writing_to_the_server_refuse_while_another_holds_the_lock(ws, run):
    with _held_elsewhere(ws.root, "push") as holder:
        with pytest.raises(WorkspaceError, match=_refusal(ws, "push", holder.pid)):
            run(ws)
        assert holder.poll() is None  # the holder is untouched


def test_the_cli_prints_the_refusal_without_a_traceback(ws):
    with _held_elsewhere(ws.root, "loop") as holder:
        result = CliRunner().invoke(app, ["push", "-w", str(ws.root)])
    assert result.exit_code == 1
    assert re.search(_refusal(ws, "loop", holder.pid), result.output), result.output
    assert "Traceback" not in result.output


def test_a_killed_holder_leaves_no_stale_lock(ws):
    with _held_elsewhere(ws.root, "push") as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The file still names the dead holder; the kernel released its lock all the same.
    assert (ws.root / LOCK_FILE).read_text().split() == [str(holder.pid), "push"]
    report = workflows.push(ws)
    assert report.datasets == []


def test_the_holding_process_re_enters_and_keeps_the_lock_until_the_outer_hold_ends(ws):
    with workspace_lock(ws.root, "loop"):
        assert workflows.push(ws).datasets == []  # what the loop does inside itself
        refusal = _try_elsewhere(ws.root, "pull")  # the inner hold's end kept the outer one
    assert re.match(_refusal(ws, "loop", os.getpid()), refusal), refusal
    assert _try_elsewhere(ws.root, "pull") == "acquired"


def test_while_the_loop_waits_for_people_others_may_pull_but_no_second_loop_starts(ws):
    notes: list[str] = []
    with workspace_lock(ws.root, "loop", LOOP_LOCK_FILE), workspace_lock(ws.root, "loop"):
        with lock_released(ws.root, "loop", notes.append):
            assert _try_elsewhere(ws.root, "pull") == "acquired"
            second_loop = _try_elsewhere(ws.root, "loop", LOOP_LOCK_FILE)
            assert re.match(_refusal(ws, "loop", os.getpid()), second_loop), second_loop
            # A pull still running when the wait ends: the loop waits for it, then goes on.
            let_go = ws.root.parent / "pull-let-go"
            pull = subprocess.Popen(
                [sys.executable, "-c", HOLD, str(ws.root), "pull", "1", str(let_go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert pull.stdout is not None and pull.stdout.readline() == "held\n"
        pull.kill()
        pull.wait()
        assert let_go.exists()  # the loop went on only once the pull had let go
        assert notes == [
            f"another pull is running on {ws.root} (pid {pull.pid}); waiting for it to finish"
        ]
        refusal = _try_elsewhere(ws.root, "push")
        assert re.match(_refusal(ws, "loop", os.getpid()), refusal), refusal
    assert _try_elsewhere(ws.root, "push") == "acquired"
