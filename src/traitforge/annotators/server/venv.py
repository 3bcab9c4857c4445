"""A server's own virtual environment, built once per machine in the cache (see
`traitforge.machine_cache`). Used by both the Argilla server and Label Studio; each keeps its
own pins, names and messages.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from traitforge.errors import TraitforgeError
from traitforge.machine_cache import cache_lock, staged_folder

Notify = Callable[[str], None]


@dataclass(frozen=True)
class VenvSpec:
    """One server's environment: where, what to install, and how to name it to a person."""

    path: Path
    pins: tuple[str, ...]
    # Folders that must exist in site-packages of a finished environment (checked by folder,
    # not by importing).
    required_modules: tuple[str, ...]
    label: str  # "Argilla server environment", in messages
    size: str  # "about 600 MB", in the notice of a first install
    error: type[TraitforgeError]

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def install_command(self, target: Path | None = None) -> str:
        """The shell command that creates the environment by hand (quoted in error messages)."""
        target = target or self.path
        pins = " ".join(shlex.quote(p) for p in self.pins)
        return (
            f"python3.11 -m venv {shlex.quote(str(target))} && "
            f"{shlex.quote(str(target / 'bin' / 'python'))} -m pip install {pins}"
        )

    def complete(self) -> bool:
        if not self.python.exists():
            return False
        site = list(self.path.glob("lib/python*/site-packages"))
        return bool(site) and all((site[0] / m).is_dir() for m in self.required_modules)


def ensure_venv(spec: VenvSpec, notify: Notify | None = None) -> Path:
    """The environment's python, creating the environment first if it is missing."""
    env = spec.path
    if spec.complete():
        return spec.python
    with cache_lock(env):
        if spec.complete():
            return spec.python
        if env.exists():
            raise spec.error(
                f"{env} exists but is not a complete {spec.label} (it lacks one of "
                f"{', '.join(spec.required_modules)}); remove it and run again, or create it by "
                f"hand: {spec.install_command(env)}"
            )
        if notify:
            notify(
                f"Creating the {spec.label} in {env} (once per machine; {spec.size}, a few minutes)"
            )
        log_path = env.parent / f"{env.name}.install.log"
        with staged_folder(env) as staging:
            # bin/python is a symlink and Python finds its prefix from pyvenv.cfg, so the venv
            # works after the rename; console-script shebangs keep the staging path, so the
            # servers are started as `python -m ...` or a script of ours, never by theirs.
            steps = [
                [sys.executable, "-m", "venv", str(staging)],
                [
                    str(staging / "bin" / "python"),
                    *("-m", "pip", "install", "--disable-pip-version-check", *spec.pins),
                ],
            ]
            with open(log_path, "w") as log:
                for step in steps:
                    code = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode
                    if code != 0:
                        raise spec.error(
                            f"creating the {spec.label} failed ({shlex.join(step[:4])} exited "
                            f"with {code}; its output is in {log_path}). Fix the cause shown "
                            f"there (network, disk space) and run again, or create it by hand: "
                            f"{spec.install_command(env)}"
                        )
    return spec.python
