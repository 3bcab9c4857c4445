"""The Argilla server's own virtual environment, created once per machine on first use.

argilla-server 2.8.0 pins typer 0.9 (which breaks with click >= 8.2) and an older pydantic, so
it cannot share the project's environment. It gets its own, in the user's cache folder, named
after the server version so that an upgrade installs beside the old one.
"""

from __future__ import annotations

from pathlib import Path

from traitforge.annotators.server.venv import Notify, VenvSpec, ensure_venv
from traitforge.errors import TraitforgeError
from traitforge.machine_cache import cache_dir

ARGILLA_SERVER_VERSION = "2.8.0"
SERVER_PINS: tuple[str, ...] = (
    f"argilla-server=={ARGILLA_SERVER_VERSION}",
    "click<8.2",  # argilla-server's typer 0.9.4 fails with click 8.2+
    "fakeredis==2.41.0",  # Redis stand-in when no redis-server is installed
    "numpy==2.4.6",  # cosine similarity in the SQL search engine
)
# Modules that must import in a finished environment (checked by folder, not by importing).
_REQUIRED_MODULES = ("argilla_server", "fakeredis", "numpy", "uvicorn")

__all__ = [
    "ARGILLA_SERVER_VERSION",
    "SERVER_PINS",
    "ArgillaServerError",
    "Notify",
    "cache_dir",
    "environment_dir",
    "install_command",
    "server_python",
]


class ArgillaServerError(TraitforgeError):
    """The embedded Argilla server cannot be installed, started, stopped or reached."""


def environment_dir() -> Path:
    return cache_dir() / f"argilla-server-{ARGILLA_SERVER_VERSION}"


def _spec() -> VenvSpec:
    # Built per call: environment_dir() follows $TRAITFORGE_CACHE_DIR.
    return VenvSpec(
        environment_dir(),
        SERVER_PINS,
        _REQUIRED_MODULES,
        "Argilla server environment",
        "about 600 MB",
        ArgillaServerError,
    )


def install_command(target: Path | None = None) -> str:
    """The shell command that creates the environment by hand (quoted in error messages)."""
    return _spec().install_command(target)


def server_python(notify: Notify | None = None) -> Path:
    """The server environment's python, creating the environment first if it is missing.

    The project's interpreter is Python 3.11, which argilla-server 2.8 supports. It is built
    in a temporary folder beside its final place and renamed only when pip has finished (see
    `venv.ensure_venv`).
    """
    return ensure_venv(_spec(), notify)
