"""Writes that are all-or-nothing, so a killed command never leaves a half-written file, and
output folders that are only ever replaced when traitforge wrote them."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from traitforge.errors import OutputError

# A workspace is a folder holding both; output folders never go inside one, except into the
# part of it that the writing command owns (exports/ for `export`, rounds/ for the loop).
WORKSPACE_CONFIG = "config.yaml"
WORKSPACE_STORE = "store.sqlite"
REWARD_MANIFEST = "traitforge-reward.json"


@dataclass(frozen=True)
class FolderKind:
    """An output folder traitforge writes and replaces as a whole, known by marker files that
    every version writes into it."""

    name: str
    markers: tuple[str, ...]  # all present: the folder is of this kind
    command: str
    suggested: str  # a subfolder name to suggest when --out holds other files

    def owns(self, folder: Path) -> bool:
        return all((folder / marker).is_file() for marker in self.markers)


EXPORT_FOLDER = FolderKind(
    "dataset export", ("dataset_dict.json", "provenance.json"), "traitforge export", "export"
)
REWARD_FOLDER = FolderKind(
    "reward-model output", (REWARD_MANIFEST,), "traitforge train", "reward-models"
)
FOLDER_KINDS = (EXPORT_FOLDER, REWARD_FOLDER)


def atomic_write_text(path: Path, text: str, mode: int | None = None) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if mode is not None:
            os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_folder(
    target: Path, kind: FolderKind, *, overwrite: bool = False, home: Path | None = None
) -> Path:
    """The resolved `target`, once it is safe to replace with a new folder of `kind`: it does
    not exist, is empty, or holds a folder of `kind`. With `overwrite`, a folder of another
    traitforge kind may be replaced too; a folder traitforge did not write never is. Nothing
    goes inside a workspace except strictly inside `home`, the part of it the caller owns.
    Raises OutputError saying why not and what to pass instead; creates nothing.
    """
    target = target.resolve()
    for ancestor in target.parents:
        if ancestor.exists() and not ancestor.is_dir():
            raise OutputError(
                f"output folder {target}: {ancestor} is a file, not a folder. Pass an --out "
                "path whose parent folders are folders"
            )
    workspace = _enclosing_workspace(target)
    if workspace == target:
        raise OutputError(
            f"output folder {target} is a traitforge workspace; writing there would replace "
            "its store and config. Pass an --out folder outside the workspace"
        )
    if workspace is not None and not _strictly_inside(target, home):
        inside = f", or one inside {home.resolve()}" if home is not None else ""
        raise OutputError(
            f"output folder {target} is inside the workspace {workspace}, among the files "
            f"traitforge keeps there. Pass an --out folder outside the workspace{inside}"
        )
    if not target.exists():
        return target
    if not target.is_dir():
        raise OutputError(
            f"output folder {target} is a file; traitforge writes a {kind.name} as a folder. "
            "Pass a new or empty folder as --out, or move the file away"
        )
    try:
        empty = not any(target.iterdir())
    except OSError as e:
        raise OutputError(f"output folder {target} cannot be read ({e}); pass another --out") from e
    if empty:
        return target
    owner = next((k for k in FOLDER_KINDS if k.owns(target)), None)
    if owner is None:
        raise OutputError(
            f"output folder {target} holds files traitforge did not write (no "
            f"{' + '.join(kind.markers)}). traitforge replaces its --out folder as a whole, so "
            f"it writes only into a new or empty folder, or over its own earlier {kind.name}. "
            f"Pass another --out, e.g. {target / kind.suggested}; --overwrite never replaces "
            "a folder traitforge did not write"
        )
    stores = sorted(target.rglob(WORKSPACE_STORE))
    if stores:
        raise OutputError(
            f"output folder {target} holds a {owner.name} but also a traitforge store "
            f"({stores[0]}), which replacing the folder would delete. Move the workspace out "
            "of it, or pass another --out"
        )
    if owner != kind and not overwrite:
        raise OutputError(
            f"output folder {target} holds a {owner.name} (written by `{owner.command}`), not "
            f"a {kind.name}. Pass another --out, or --overwrite to replace it"
        )
    return target


def _strictly_inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path != folder.resolve() and path.is_relative_to(folder.resolve())


def _enclosing_workspace(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / WORKSPACE_CONFIG).is_file() and (candidate / WORKSPACE_STORE).is_file():
            return candidate
    return None


@contextmanager
def atomic_directory(
    target: Path, kind: FolderKind, *, overwrite: bool = False, home: Path | None = None
) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces `target` in one rename.

    `target` must pass `check_output_folder` (checked on entry and again before the swap, as
    a long run may outlive the first look), and the staging folder must carry `kind`'s
    markers, so the next run recognizes the folder as traitforge's. The old folder is moved
    aside first and removed after the swap. A kill between the two renames leaves the old
    folder aside; the next run puts it back before looking, so a kill at any point leaves
    the old folder or the new one (plus a stale staging folder that the next run clears).
    """
    target = target.resolve()
    staging = target.parent / f".{target.name}.traitforge-staging"
    retired = target.parent / f".{target.name}.traitforge-old"
    if retired.is_dir() and not target.exists():
        os.replace(retired, target)
    check_output_folder(target, kind, overwrite=overwrite, home=home)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (staging, retired):
        if leftover.exists():
            shutil.rmtree(leftover)
    staging.mkdir()
    try:
        yield staging
        missing = [m for m in kind.markers if not (staging / m).is_file()]
        if missing:
            raise RuntimeError(f"a {kind.name} was written without its marker(s) {missing}")
        check_output_folder(target, kind, overwrite=overwrite, home=home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():
        os.replace(target, retired)
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
