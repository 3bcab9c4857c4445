"""The `traitforge` console script run as a user would: to the end, or in the background
while a test waits for what it prints; and a folder's files, to compare what it wrote."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

TRAITFORGE = str(Path(sys.executable).parent / "traitforge")


def cli_env(extra: Mapping[str, str] | None = None, drop: Iterable[str] = ()) -> dict[str, str]:
    """This process's environment less the variables in `drop`, with lines 200 columns wide
    (so rich keeps table rows and paths on one line), then `extra` on top."""
    dropped = set(drop)
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update({"COLUMNS": "200", **(extra or {})})
    return env


def run_cli(
    *args: str,
    check: bool = True,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    pass_fds: tuple[int, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """`traitforge ARGS` to the end, output captured. `env` is the whole environment
    (default `cli_env()`); with `check`, a non-zero exit fails the test, showing both outputs."""
    result = subprocess.run(
        [TRAITFORGE, *args],
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else cli_env(),
        cwd=cwd,
        timeout=timeout,
        pass_fds=pass_fds,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"traitforge {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


class CliProcess:
    """`traitforge ARGS` running in the background. Its stdout is read line by line as it
    comes, so a test can wait for something the command prints (`wait_for`) and then act on
    it: kill it there, or do what the command waits for."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen(
            [TRAITFORGE, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**(env if env is not None else cli_env()), "PYTHONUNBUFFERED": "1"},
        )
        self._lines: queue.Queue[str | None] = queue.Queue()  # None: stdout closed
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._stdout.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self._stderr.extend(self.process.stderr)  # drained, so the command never blocks on it

    @property
    def stdout(self) -> str:
        return "".join(self._stdout)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def _shown(self) -> str:
        return f"traitforge {' '.join(self.args)}\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"

    def wait_for(self, text: str, timeout: float = 1200) -> str:
        """The first stdout line not read before that holds `text`; fails the test if the
        command ends first or prints no such line within `timeout` seconds."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line with {text!r} within {timeout:g} s\n{self._shown()}"
                ) from None
            if line is None:
                self.process.wait()
                raise AssertionError(
                    f"ended (rc {self.process.returncode}) before printing {text!r}\n"
                    f"{self._shown()}"
                )
            if text in line:
                return line

    def kill(self) -> None:
        """SIGKILL the command, which must still be running."""
        assert self.process.poll() is None, f"ended before it was killed\n{self._shown()}"
        self.process.send_signal(signal.SIGKILL)
        self.finish()
        assert self.process.returncode == -signal.SIGKILL, self._shown()

    def finish(self, timeout: float = 1200) -> int:
        """Wait for the command to end and for its output to be read; its exit code."""
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=30)
        return self.process.returncode

    def __enter__(self) -> CliProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.finish()


def data_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (relative path -> bytes), to compare two outputs."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
