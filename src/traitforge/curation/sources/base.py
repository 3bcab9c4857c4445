"""What a source reader yields for each input row, and helpers shared by the readers."""

from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import io
import shutil
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
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
    # Mapped formats: the row's columns kept as metadata (by default, every unmapped one).
    metadata_columns: tuple[str, ...] = ()


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

# How a fix ends when a bad row could be left out instead of corrected.
SKIP_HINT = "or re-run with --skip-invalid to quarantine the row"

# A reader turns one file into row outcomes. It may raise InputError for a whole-file problem
# (not a gzip file, an unreadable parquet footer) that no row can be blamed for.
SourceReader = Callable[[Path, ProjectConfig], Iterator[RowOutcome]]


@dataclass(frozen=True)
class SourceFormat:
    name: str
    reader: SourceReader
    help: str


def stated_traits(config: ProjectConfig, trait: str) -> list[str]:
    """What a source made for one trait states about its rows: that trait, when the project
    defines it (else nothing, and selection falls back to the rows' gold labels)."""
    return [trait] if any(t.name == trait for t in config.traits) else []


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


@contextlib.contextmanager
def rereadable(path: Path) -> Iterator[Path]:
    """`path` itself when it is a file or folder (or nothing). A pipe gives its bytes once
    (`ingest <(zcat rows.jsonl.gz)`), while a file is read by its hash and by its reader, which
    first sniffs its leading bytes: a pipe or device is copied once to a temporary file of the
    same name, and that copy is read instead."""
    if path.is_file() or path.is_dir() or not path.exists():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="traitforge-") as folder:
        copy = Path(folder) / (path.name or "input")
        with path.open("rb") as source, copy.open("wb") as target:
            shutil.copyfileobj(source, target)
        yield copy


def said_of(error: InputError, read: Path, given: Path) -> InputError:
    """An error about the file read (a pipe's copy) said of the path the user gave."""

    def named(text: str) -> str:
        return text.replace(str(read), str(given))

    renamed = InputError(
        given,
        error.line,
        error.field,
        named(error.expected),
        named(error.received),
        named(error.fix),
    )
    renamed.__cause__ = error.__cause__
    return renamed


def outcomes(
    rows: Iterable[tuple[int, Any]], parse: Callable[[Any, int], RowOutcome]
) -> Iterator[RowOutcome]:
    """Each row a reader yields, parsed by `parse(row, line)`; a row that the reader or
    `parse` refuses becomes Rejected, so one bad row never stops the others being read."""
    for line, row in rows:
        if isinstance(row, InputError):
            yield Rejected(row)
            continue
        try:
            yield parse(row, line)
        except InputError as e:
            yield Rejected(e)


def require_file(path: Path, fmt: str, what: str, example: str) -> None:
    """Refuse a folder or a missing path before reading: these formats read one file each."""
    if path.is_dir():
        raise InputError(
            path,
            None,
            None,
            expected=f"one {what}",
            received="a folder",
            fix=f"--format {fmt} reads files, not folders: give the file(s) inside it, "
            f"e.g. {path / example}",
        )
    if not path.exists():
        raise InputError(
            path,
            None,
            None,
            expected=f"an existing {what}",
            received="a path that does not exist",
            fix="check the path",
        )


GZIP_MAGIC = b"\x1f\x8b"
# What reading a truncated or corrupt gzip stream raises (BadGzipFile is an OSError).
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def open_input(path: Path) -> gzip.GzipFile | io.BufferedReader:
    """The file's bytes, decompressed when it is gzip (known by its first bytes, not its name)."""
    with path.open("rb") as f:
        compressed = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if compressed else path.open("rb")


def gzip_error(path: Path, lines_read: int, error: Exception) -> InputError:
    """A broken gzip stream is a whole-file error: no row can be blamed, none is kept."""
    return InputError(
        path,
        f"after line {lines_read}" if lines_read else None,
        None,
        expected="a complete gzip file",
        received=f"a truncated or corrupt gzip stream ({error or type(error).__name__})",
        fix="re-download or re-compress the file (nothing from it was stored)",
    )


# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def refuse_wide_text(path: Path, head: bytes) -> None:
    """UTF-16 and UTF-32 files fail row by row with misleading errors (their NUL bytes are
    valid UTF-8): refuse the whole file, naming the encoding its first bytes show."""
    mark = next(((bom, name) for bom, name in _BOMS if head.startswith(bom)), None)
    if mark is not None:
        encoding = mark[1]
        sign = f"byte-order mark {mark[0].hex(' ')}"
    elif b"\x00" in head:
        # ASCII text in UTF-16 has a NUL in every other byte: odd places for little-endian.
        odd, even = head[1::2].count(0), head[0::2].count(0)
        if odd > 2 * even:
            encoding = "UTF-16LE"
        elif even > 2 * odd:
            encoding = "UTF-16BE"
        else:
            return
        sign = "NUL bytes between the characters"
    else:
        return
    raise InputError(
        path,
        None,
        None,
        expected="UTF-8 text",
        received=f"{encoding} text ({sign})",
        fix=f"re-save the file as UTF-8, e.g. `iconv -f {encoding} -t UTF-8 {path} > "
        f"{path.stem}.utf8{path.suffix}`",
    )


def has_bad_bytes(text: str) -> bool:
    """True when text was decoded with surrogateescape and held bytes that are not UTF-8."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def encoding_error(
    path: Path, line: int | str, field_name: str | None = None, hint: str = SKIP_HINT
) -> InputError:
    return InputError(
        path,
        line,
        field_name,
        expected="UTF-8 text",
        received="bytes that are not valid UTF-8",
        fix=f"re-save the file as UTF-8 (for Latin-1 text: `iconv -f latin1 -t utf-8`), {hint}",
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
