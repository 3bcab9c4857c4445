"""Label Studio's own virtual environment and its pre-migrated data folder, made once per machine.

label-studio 1.23.2 pins label-studio-sdk 2.1.2 exactly and weighs ~1 GB (Django, pyarrow,
opencv), so it gets its own environment beside the Argilla server's, in the same cache folder.
A first start runs ~50 s of Django migrations; the template is a data folder migrated once
(with no account in it) that each workspace copies, so later workspaces start in seconds.

Both are built in a temporary folder beside their final place and renamed when complete, under
a lock file: a killed install or migration never leaves a half folder under the final name.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from traitforge.annotators.server.venv import Notify, VenvSpec, ensure_venv
from traitforge.errors import TraitforgeError
from traitforge.machine_cache import cache_dir, cache_lock, staged_folder

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


def _spec() -> VenvSpec:
    # Built per call: environment_dir() follows $TRAITFORGE_CACHE_DIR. The server is started
    # as `python -m label_studio.server`, never by its console script (see ensure_venv).
    return VenvSpec(
        environment_dir(),
        PINS,
        _REQUIRED_MODULES,
        "Label Studio environment",
        "about 1 GB",
        LabelStudioServerError,
    )


def install_command(target: Path | None = None) -> str:
    """The shell command that creates the environment by hand (quoted in error messages)."""
    return _spec().install_command(target)


def label_studio_python(notify: Notify | None = None) -> Path:
    """The environment's python, creating the environment first if it is missing."""
    return ensure_venv(_spec(), notify)


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
    with cache_lock(template):
        if (template / TEMPLATE_DATABASE).is_file():
            return template
        if template.exists():  # a folder without its database is not one of ours: rebuild
            shutil.rmtree(template)
        if notify:
            notify(
                f"Preparing a migrated Label Studio data folder in {template} (once per "
                "machine; about a minute)"
            )
        log_path = template.parent / f"{template.name}.migrate.log"
        with staged_folder(template) as staging:
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
    return template
