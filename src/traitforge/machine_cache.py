"""The machine-wide cache (servers' environments, converted models), shared by every workspace.

Folders in it are built in a temporary folder beside their final place and renamed only when
complete, under a lock file: a killed build never leaves a half folder under the final name,
and a second concurrent caller waits for the first one's build, then finds it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "TRAITFORGE_CACHE_DIR"


def cache_dir() -> Path:
    """$TRAITFORGE_CACHE_DIR, else $XDG_CACHE_HOME/traitforge, else ~/.cache/traitforge."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "traitforge"


@contextmanager
def cache_lock(final: Path) -> Iterator[None]:
    """One builder of `final` at a time per machine (lock file `.NAME.lock` beside it)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """A fresh temporary folder beside `final`, renamed to `final` when the block completes and
    removed when it raises. The caller holds `cache_lock(final)`."""
    # Staging folders of killed builds (the caller holds the lock, so none is in use).
    for leftover in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        yield staging
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
