"""Label Studio's own virtual environment and its pre-migrated data folder, made once per machine.

label-studio 1.23.2 pins label-studio-sdk 2.1.2 exactly and weighs ~1 GB (Django, pyarrow,
opencv), so it gets its own environment beside the Argilla server's, in the same cache folder.
A first start runs ~50 s of Django migrations; the template is a data folder migrated once
(with no account in it) that each workspace copies, so later workspaces start in seconds.

Both are built in a temporary folder beside their final place and renamed when complete, under
a lock file: a killed install or migration never leaves a half folder under the final name.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from traitforge.annotators.server.environment import Notify, cache_dir
from traitforge.errors import TraitforgeError

LABEL_STUDIO_VERSION = "1.23.2"
PINS: tuple[str, ...] = (f"label-studio=={LABEL_STUDIO_VERSION}",)
# Folders that must exist in a finished environment (checked by folder, not by importing).
_REQUIRED_MODULES = ("label_studio", "label_studio_sdk", "django")
TEMPLATE_DATABASE = "label_studio.sqlite3"


class LabelStudioServerError(TraitforgeError):
    """The Label Studio server cannot be installed, started, stopped or reached."""


def environment_dir() -> Path:
    return cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}"


def template_dir() -> Path:
    return cache_dir() / f"label-studio-{LABEL_STUDIO_VERSION}-template"


def install_command(target: Path | None = None) -> str:
    """The shell command that creates the environment by hand (quoted in error messages)."""
    target = target or environment_dir()
    pins = " ".join(shlex.quote(p) for p in PINS)
    return (
        f"python3.11 -m venv {shlex.quote(str(target))} && "
        f"{shlex.quote(str(target / 'bin' / 'python'))} -m pip install {pins}"
    )


def _complete(env: Path) -> bool:
    if not (env / "bin" / "python").exists():
        return False
    site = list(env.glob("lib/python*/site-packages"))
    return bool(site) and all((site[0] / m).is_dir() for m in _REQUIRED_MODULES)


@contextmanager
def _cache_lock(name: str) -> Iterator[None]:
    """One builder at a time per machine: a second caller waits, then finds the result."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _staging(final: Path) -> Path:
    # Staging folders of killed builds (the caller holds the lock, so none is in use).
    for leftover in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))


def label_studio_python(notify: Notify | None = None) -> Path:
    """The environment's python, creating the environment first if it is missing."""
    env = environment_dir()
    if _complete(env):
        return env / "bin" / "python"
    with _cache_lock(env.name):
        if _complete(env):
            return env / "bin" / "python"
        if env.exists():
            raise LabelStudioServerError(
                f"{env} exists but is not a complete Label Studio environment (it lacks one of "
                f"{', '.join(_REQUIRED_MODULES)}); remove it and run again, or create it by hand: "
                f"{install_command(env)}"
            )
        if notify:
            notify(
                f"Creating the Label Studio environment in {env} (once per machine; about 1 GB, "
                "a few minutes)"
            )
        staging = _staging(env)
        log_path = env.parent / f"{env.name}.install.log"
        try:
            # bin/python is a symlink and Python finds its prefix from pyvenv.cfg, so the venv
            # works after the rename; console-script shebangs keep the staging path, which is
            # why the server is started as `python -m label_studio.server`, never by its script.
            _run_steps(
                [
                    [sys.executable, "-m", "venv", str(staging)],
                    [
                        str(staging / "bin" / "python"),
                        *("-m", "pip", "install", "--disable-pip-version-check", *PINS),
                    ],
                ],
                log_path,
                lambda step, code: (
                    f"creating the Label Studio environment failed ({shlex.join(step[:4])} exited "
                    f"with {code}; its output is in {log_path}). Fix the cause shown there "
                    f"(network, disk space) and run again, or create it by hand: "
                    f"{install_command(env)}"
                ),
            )
            os.replace(staging, env)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return env / "bin" / "python"


def _run_steps(
    steps: list[list[str]], log_path: Path, failure: Callable[[list[str], int], str]
) -> None:
    with open(log_path, "w") as log:
        for step in steps:
            code = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode
            if code != 0:
                raise LabelStudioServerError(failure(step, code))


def ensure_template(
    python: Path, migrate_env: Callable[[Path], dict[str, str]], notify: Notify | None = None
) -> Path:
    """The pre-migrated data folder, migrating a fresh one first if it is missing.

    `migrate_env(data_dir)` gives the environment Label Studio runs with for that folder. The
    migration creates no account: each workspace gets its own owner on its first start.
    """
    template = template_dir()
    if (template / TEMPLATE_DATABASE).is_file():
        return template
    with _cache_lock(template.name):
        if (template / TEMPLATE_DATABASE).is_file():
            return template
        if template.exists():  # a folder without its database is not one of ours: rebuild
            shutil.rmtree(template)
        if notify:
            notify(
                f"Preparing a migrated Label Studio data folder in {template} (once per "
                "machine; about a minute)"
            )
        staging = _staging(template)
        log_path = template.parent / f"{template.name}.migrate.log"
        try:
            env = migrate_env(staging)
            with open(log_path, "w") as log:
                # `version` applies the migrations, as every command does, then only prints.
                code = subprocess.run(
                    [str(python), "-m", "label_studio.server", "version"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=staging,
                ).returncode
            if code != 0 or not (staging / TEMPLATE_DATABASE).is_file():
                raise LabelStudioServerError(
                    f"migrating a Label Studio data folder failed (exit {code}); the cause is at "
                    f"the end of {log_path}. Fix it and run again"
                )
            os.replace(staging, template)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    return template
