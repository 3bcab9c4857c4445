"""The workspace every stage reads and writes: config, crash-safe store, files."""

from traitforge.workspace.config_file import (
    default_config,
    dump_config,
    load_config,
    parse_config,
)
from traitforge.workspace.lock import workspace_lock
from traitforge.workspace.store import Store
from traitforge.workspace.workspace import DEFAULT_WORKSPACE, Workspace

__all__ = [
    "DEFAULT_WORKSPACE",
    "Store",
    "Workspace",
    "default_config",
    "dump_config",
    "load_config",
    "parse_config",
    "workspace_lock",
]
