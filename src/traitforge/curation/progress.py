"""How long steps report progress, for the CLI's bars: the stages of curation, annotation
and the loop per label, ingest and generation per file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

StageProgress = Callable[[str, int, int], object]  # (stage label, done, total)


class FileProgress(Protocol):
    """Told the rows of one file done so far; `finished` once the true total is known."""

    def __call__(self, done: int, finished: bool = False) -> None: ...
