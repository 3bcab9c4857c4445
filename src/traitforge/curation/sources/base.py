"""What a source reader yields for each input row, and helpers shared by the readers."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from traitforge.errors import InputError, short_repr
from traitforge.schemas import Candidate, ProjectConfig


@dataclass(frozen=True)
class Parsed:
    """A row that became one or more candidates."""

    line: int | str
    candidates: list[Candidate]
    skipped: list[str] = field(default_factory=list)  # reasons for parts of the row left out


@dataclass(frozen=True)
class Rejected:
    """A malformed row: an error in strict mode, a quarantine entry with --skip-invalid."""

    error: InputError


@dataclass(frozen=True)
class Skipped:
    """A well-formed row that cannot give usable candidates (degenerate upstream data)."""

    line: int | str
    reason: str


RowOutcome = Parsed | Rejected | Skipped

# A reader turns one file into row outcomes. It may raise InputError for a whole-file problem
# (not a gzip file, an unreadable parquet footer) that no row can be blamed for.
SourceReader = Callable[[Path, ProjectConfig], Iterator[RowOutcome]]


@dataclass(frozen=True)
class SourceFormat:
    name: str
    reader: SourceReader
    help: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode())
            digest.update(child.read_bytes())
    else:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def has_bad_bytes(text: str) -> bool:
    """True when text was decoded with surrogateescape and held bytes that are not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def encoding_error(path: Path, line: int | str, field_name: str | None = None) -> InputError:
    return InputError(
        path,
        line,
        field_name,
        expected="UTF-8 text",
        received="bytes that are not valid UTF-8",
        fix="re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or re-run with "
        "--skip-invalid to quarantine the row",
    )


def build_candidate(path: Path, line: int | str, fields: dict[str, Any]) -> Candidate:
    """Validate a candidate, turning a pydantic error into an InputError that names the row."""
    try:
        return Candidate.model_validate(fields)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or None
        raise InputError(
            path,
            line,
            loc,
            expected=_expected(first),
            received=short_repr(first.get("input")),
            fix="correct the row in the file, or re-run with --skip-invalid to quarantine it",
        ) from e


def _expected(error: Any) -> str:
    msg = str(error["msg"])
    if "empty" in msg:
        return "a non-empty string"
    return msg[0].lower() + msg[1:] if msg else "a valid value"
