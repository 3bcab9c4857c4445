"""The workspace folder: resolved config, store, quarantine, models and exports of one pipeline."""

from __future__ import annotations

from pathlib import Path

from traitforge.errors import WorkspaceError
from traitforge.schemas import ProjectConfig
from traitforge.workspace.config_file import default_config, dump_config, load_config
from traitforge.workspace.files import WORKSPACE_CONFIG, WORKSPACE_STORE, atomic_write_text
from traitforge.workspace.store import Store

DEFAULT_WORKSPACE = Path("traitforge-workspace")


class Workspace:
    """Opens (and on first use creates) a workspace folder.

    The resolved config is saved inside it, so later commands and every export know exactly
    which traits, rubrics and settings produced the data.
    """

    CONFIG_FILE = WORKSPACE_CONFIG
    STORE_FILE = WORKSPACE_STORE
    CLASSIFIERS_DIR = "classifiers"
    REWARD_DIR = "reward"
    EMBEDDING_CACHE = "embeddings.sqlite"

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def open(
        cls, root: str | Path, config_path: str | Path | None = None, create: bool = True
    ) -> Workspace:
        """Use `config_path` when given (and save it as the resolved config), else the
        workspace's saved config, else the defaults. `create=False` opens only a workspace
        that has a store and writes nothing, for commands that only read one."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise WorkspaceError(
                f"workspace {root} is a file, not a workspace folder; pass a folder path with "
                "--workspace"
            )
        if not create and not (root / cls.STORE_FILE).exists():
            raise WorkspaceError(
                f"no workspace store in {root}; run `traitforge ingest` first, or pass the "
                "workspace folder with --workspace"
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:  # e.g. a file where a folder above it should be
            raise WorkspaceError(
                f"cannot create the workspace folder {root}: {e.strerror or e}; pass a folder "
                "path with --workspace"
            ) from e
        saved = root / cls.CONFIG_FILE
        if config_path is not None:
            config = load_config(config_path)
        elif saved.exists():
            config = load_config(saved)
        else:
            config = default_config()
        workspace = cls(root, config)
        if create:
            workspace._save_config()
        return workspace

    def _save_config(self) -> None:
        text = dump_config(self.config)
        path = self.root / self.CONFIG_FILE
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)

    @property
    def store_path(self) -> Path:
        return self.root / self.STORE_FILE

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def classifiers_dir(self) -> Path:
        """The trait classifiers; curation hands this folder to every scorer it looks up."""
        return self.root / self.CLASSIFIERS_DIR

    @property
    def reward_dir(self) -> Path:
        """The reward model that scores candidates for selection: its pointer and cache."""
        return self.root / self.REWARD_DIR

    @property
    def embedding_cache_path(self) -> Path:
        return self.root / self.EMBEDDING_CACHE

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    def store(self) -> Store:
        return Store(self.store_path)
