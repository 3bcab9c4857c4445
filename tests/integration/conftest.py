"""Integration fixtures shared by every module that needs a real Argilla server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from traitforge.annotators.server import ServerInfo, ensure_server, free_port, stop_server
from traitforge.workspace import Workspace
from traitforge.workspace.config_file import dump_config


@pytest.fixture(scope="session")
def argilla_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, ServerInfo]]:
    """One embedded Argilla server (real argilla-server 2.8.0, SQL search engine) for the whole
    session, in a temporary workspace, on a free port; stopped at the end.

    Yields (workspace, info). Talk to it with `owner_connection(workspace)` and
    `add_annotators(workspace, names)`. The workspace's config holds the chosen port
    (annotation.argilla.port), so `ensure_server(workspace)` restarts it on the same URL if a
    test stopped it; after such a restart `info.pid` is stale: ask `server_status(workspace)`.
    The first run on a fresh machine also creates the server's virtual environment (minutes).
    """
    root = Path(tmp_path_factory.mktemp("argilla")) / "ws"
    workspace = Workspace.open(root)
    config = workspace.config
    argilla = config.annotation.argilla.model_copy(update={"port": free_port()})
    annotation = config.annotation.model_copy(update={"argilla": argilla})
    config = config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    workspace = Workspace.open(root)
    info = ensure_server(workspace)
    try:
        yield workspace, info
    finally:
        stop_server(workspace)
