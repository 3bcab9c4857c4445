"""Ingest: one input file into the workspace store, all of it or none of it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from traitforge.curation.progress import FileProgress
from traitforge.curation.quarantine import Quarantine
from traitforge.curation.sources import (
    Parsed,
    Rejected,
    RowOutcome,
    Skipped,
    file_sha256,
    source_format,
)
from traitforge.curation.sources.base import (
    GZIP_ERRORS,
    SourceReader,
    open_input,
    rereadable,
    said_of,
)
from traitforge.errors import InputError
from traitforge.schemas import ProjectConfig
from traitforge.workspace import Store


@dataclass
class IngestReport:
    """What one file gave. Rows are input rows; new/present count candidates."""

    path: Path
    format: str
    rows_read: int = 0
    rows_rejected: int = 0
    rows_skipped: int = 0
    new: int = 0
    present: int = 0
    quarantine: Path | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # said, not fatal: e.g. a file with no rows
    # Stored candidates whose stated traits this file changed (they keep their id and record).
    restated: int = 0
    # Mapped formats: the input columns kept as candidate metadata, in first-seen order.
    metadata_columns: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "read": self.rows_read,
            "new": self.new,
            "present": self.present,
            "rejected": self.rows_rejected,
            "skipped": self.rows_skipped,
        }


def estimate_rows(path: Path) -> int | None:
    """Lines in the file (decompressed), for a progress bar; None for dataset folders and
    for files that cannot be read through, whose reader then raises the error that says why."""
    if not path.is_file():
        return None
    try:
        with open_input(path) as f:
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    except (OSError, *GZIP_ERRORS):
        return None


def no_rows_warning(path: Path) -> str:
    """What a file that gave no rows gets said about it: a success, but hardly the intent."""
    empty = path.is_file() and path.stat().st_size == 0
    cause = "the file is empty (0 bytes)" if empty else "it holds no data rows"
    return f"{path} has no rows: {cause}, so nothing was stored from it; check the path"


def ingest_file(
    store: Store,
    config: ProjectConfig,
    fmt: str,
    path: Path,
    quarantine_dir: Path,
    skip_invalid: bool = False,
    progress: FileProgress | None = None,
) -> IngestReport:
    """Read `path` and store its candidates in one transaction.

    Strict mode (the default) raises the first InputError and stores nothing from the file.
    With `skip_invalid`, good rows are stored and rejects are written with their reasons to
    a quarantine JSONL named after the file's content hash, so a re-run rewrites the same file
    instead of appending duplicates. Degenerate rows (identical pair sides, for example) are
    never errors: they are skipped, counted and quarantined in both modes.
    """
    reader = source_format(fmt).reader
    if not path.exists():
        raise InputError(
            path,
            None,
            None,
            expected="an existing file or folder",
            received="a path that does not exist",
            fix="check the path",
        )
    with rereadable(path) as readable:
        # Before hashing: a reader refuses a path it cannot read (a folder, for most formats).
        outcomes = _read(reader, config, readable, path)
        return _store(
            store,
            fmt,
            path,
            file_sha256(readable),
            outcomes,
            quarantine_dir,
            skip_invalid,
            progress,
        )


def _read(
    reader: SourceReader, config: ProjectConfig, readable: Path, path: Path
) -> Iterator[RowOutcome]:
    """The reader's outcomes from `readable`; when that is a pipe's copy, every error, of a row
    or of the whole file, is said of the path the user gave."""
    if readable == path:
        return reader(path, config)
    try:
        outcomes = reader(readable, config)
    except InputError as e:
        raise said_of(e, readable, path) from e

    def renamed() -> Iterator[RowOutcome]:
        try:
            for outcome in outcomes:
                if isinstance(outcome, Rejected):
                    outcome = Rejected(said_of(outcome.error, readable, path))
                yield outcome
        except InputError as e:
            raise said_of(e, readable, path) from e

    return renamed()


def _store(
    store: Store,
    fmt: str,
    path: Path,
    sha: str,
    outcomes: Iterator[RowOutcome],
    quarantine_dir: Path,
    skip_invalid: bool,
    progress: FileProgress | None,
) -> IngestReport:
    report = IngestReport(path=path, format=fmt)
    quarantine = Quarantine(path, report.reasons)
    # Candidate id -> every trait its rows in this file state: one response on two rows, for
    # two traits, is for both, not for whichever row came last.
    stated: dict[str, list[str]] = {}
    before: set[str] = set()  # stored before this file
    grown: set[str] = set()  # new in this file, and named more traits by a later row
    kept: dict[str, None] = {}
    with store.transaction():
        for outcome in outcomes:
            report.rows_read += 1
            if isinstance(outcome, Rejected):
                if not skip_invalid:
                    raise outcome.error
                report.rows_rejected += 1
                quarantine.reject(outcome.error)
            elif isinstance(outcome, Skipped):
                report.rows_skipped += 1
                quarantine.skip(outcome.line, outcome.reason)
            elif isinstance(outcome, Parsed):
                for c in outcome.candidates:
                    seen = stated.get(c.id)
                    stated[c.id] = list(dict.fromkeys([*(seen or []), *c.traits]))
                    new, present = store.add_candidates([c])
                    report.new += new
                    report.present += present
                    if seen is None and present:
                        before.add(c.id)
                    elif seen is not None and c.id not in before and stated[c.id] != seen:
                        grown.add(c.id)
                kept.update(dict.fromkeys(outcome.metadata_columns))
                for reason in outcome.skipped:
                    quarantine.skip(outcome.line, reason)
            if progress is not None:
                progress(report.rows_read)
        if report.rows_read == 0:
            report.warnings.append(no_rows_warning(path))
        report.metadata_columns = list(kept)
        report.restated = store.restate_traits({i: stated[i] for i in before})
        store.restate_traits({i: stated[i] for i in grown})
        report.quarantine = quarantine.write(quarantine_dir, sha)
        store.record_ingest(sha, fmt, str(path), report.counts())
    return report
