"""The Argilla server's own virtual environment, created once per machine on first use.

argilla-server 2.8.0 pins typer 0.9 (which breaks with click >= 8.2) and an older pydantic, so
it cannot share the project's environment. It gets its own, in the user's cache folder, named
after the server version so that an upgrade installs beside the old one.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from traitforge.errors import TraitforgeError

ARGILLA_SERVER_VERSION = "2.8.0"
SERVER_PINS: tuple[str, ...] = (
    f"argilla-server=={ARGILLA_SERVER_VERSION}",
    "click<8.2",  # argilla-server's typer 0.9.4 fails with click 8.2+
    "fakeredis==2.41.0",  # Redis stand-in when no redis-server is installed
    "numpy==2.4.6",  # cosine similarity in the SQL search engine
)
# Modules that must import in a finished environment (checked by folder, not by importing).
_REQUIRED_MODULES = ("argilla_server", "fakeredis", "numpy", "uvicorn")


class ArgillaServerError(TraitforgeError):
    """The embedded Argilla server cannot be installed, started, stopped or reached."""


Notify = Callable[[str], None]


def cache_dir() -> Path:
    """$TRAITFORGE_CACHE_DIR, else ~/.cache/traitforge."""
    configured = os.environ.get("TRAITFORGE_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "traitforge"


def environment_dir() -> Path:
    return cache_dir() / f"argilla-server-{ARGILLA_SERVER_VERSION}"


def install_command(target: Path | None = None) -> str:
    """The shell command that creates the environment by hand (quoted in error messages)."""
    target = target or environment_dir()
    pins = " ".join(shlex.quote(p) for p in SERVER_PINS)
    return (
        f"python3.11 -m venv {shlex.quote(str(target))} && "
        f"{shlex.quote(str(target / 'bin' / 'python'))} -m pip install {pins}"
    )


def _complete(env: Path) -> bool:
    if not (env / "bin" / "python").exists():
        return False
    site = list(env.glob("lib/python*/site-packages"))
    return bool(site) and all((site[0] / m).is_dir() for m in _REQUIRED_MODULES)


def server_python(notify: Notify | None = None) -> Path:
    """The server environment's python, creating the environment first if it is missing.

    It is built in a temporary folder beside its final place and renamed only when pip has
    finished, so a killed install never leaves a half environment under the final name. A lock
    file makes a second concurrent caller wait for the first one's install.
    """
    env = environment_dir()
    if _complete(env):
        return env / "bin" / "python"
    env.parent.mkdir(parents=True, exist_ok=True)
    with open(env.parent / f".{env.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _complete(env):
            return env / "bin" / "python"
        if env.exists():
            raise ArgillaServerError(
                f"{env} exists but is not a complete Argilla server environment (it lacks one of "
                f"{', '.join(_REQUIRED_MODULES)}); remove it and run again, or create it by hand: "
                f"{install_command(env)}"
            )
        if notify:
            notify(
                f"Creating the Argilla server environment in {env} (once per machine; about "
                "600 MB, a few minutes)"
            )
        _create(env)
    return env / "bin" / "python"


def _create(env: Path) -> None:
    # Staging folders of killed installs (the caller holds the lock, so none is in use).
    for leftover in env.parent.glob(f".{env.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=env.parent, prefix=f".{env.name}.tmp-"))
    log_path = env.parent / f"{env.name}.install.log"
    try:
        with open(log_path, "w") as log:
            # The project's interpreter is Python 3.11, which argilla-server 2.8 supports. The
            # venv works after the rename: bin/python is a symlink and Python finds its prefix
            # from pyvenv.cfg next to it (only console-script shebangs keep the staging path,
            # and nothing here uses them).
            steps = [
                [sys.executable, "-m", "venv", str(staging)],
                [
                    str(staging / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    *SERVER_PINS,
                ],
            ]
            for step in steps:
                code = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode
                if code != 0:
                    raise ArgillaServerError(
                        f"creating the Argilla server environment failed ({shlex.join(step[:4])} "
                        f"exited with {code}; its output is in {log_path}). Fix the cause shown "
                        f"there (network, disk space) and run again, or create it by hand: "
                        f"{install_command(env)}"
                    )
        os.replace(staging, env)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
