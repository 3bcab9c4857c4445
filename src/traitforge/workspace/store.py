"""The workspace store: every stage's output, keyed by content hash, in one SQLite file.

Why SQLite rather than DuckDB: it ships with Python, its write-ahead log makes each
transaction atomic and durable across `kill -9` (an interrupted transaction simply never
happened), and the workload is many small keyed upserts from one writer at a time, which is
what SQLite is built for. DuckDB shines at analytical scans, which exports do through Arrow.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from traitforge.errors import WorkspaceError
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    DuplicateMark,
    Flag,
    Judgement,
    PreferencePair,
    Scores,
)

SCHEMA_VERSION = 1
_ID_CHUNK = 500  # ids per `IN (...)` query
_BOOKMARK = "bookmark:"  # prefix of the meta keys that bookmarks use

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL, source TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS candidates_prompt ON candidates (prompt_id);
CREATE TABLE IF NOT EXISTS scores (
    candidate_id TEXT NOT NULL, scorer TEXT NOT NULL, trait TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (candidate_id, scorer, trait));
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, prompt_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judgements (
    id TEXT PRIMARY KEY, task_id TEXT NOT NULL, annotator_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS judgements_task ON judgements (task_id);
CREATE TABLE IF NOT EXISTS pairs (id TEXT PRIMARY KEY, trait TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS flags (candidate_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS duplicates (candidate_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done (stage TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (stage, key));
CREATE TABLE IF NOT EXISTS presented (
    dataset TEXT NOT NULL, task_id TEXT NOT NULL, candidate_ids TEXT NOT NULL,
    PRIMARY KEY (dataset, task_id));
CREATE TABLE IF NOT EXISTS ingests (
    file_sha256 TEXT NOT NULL, format TEXT NOT NULL, path TEXT NOT NULL,
    rows_read INTEGER NOT NULL, new INTEGER NOT NULL, present INTEGER NOT NULL,
    rejected INTEGER NOT NULL, skipped INTEGER NOT NULL, finished_at TEXT NOT NULL,
    PRIMARY KEY (file_sha256, format));
"""


def _create(path: Path) -> None:
    """Build an empty store beside `path` and link it into place, so `path` never exists
    half-made (sqlite creates its file empty): a zero-byte store can only be a damaged one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.new")
    try:
        with closing(sqlite3.connect(tmp, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another command created the store meanwhile: that one is used
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(tmp, path)
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def _unusable(path: Path, error: Exception) -> WorkspaceError:
    return WorkspaceError(
        f"cannot open the workspace store {path}: {error}. It is damaged or not a traitforge "
        "store: restore it from a backup, point --workspace at another folder, or move the "
        "file aside to start this workspace afresh"
    )


def _body(record: BaseModel) -> str:
    return record.model_dump_json()


class Store:
    """A crash-safe keyed store. Use `transaction()` for every group of writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            if not path.exists():
                _create(path)
            elif path.is_file() and path.stat().st_size == 0:
                raise WorkspaceError(
                    f"the workspace store {path} is empty (0 bytes): traitforge never leaves a "
                    "store empty, so this one was truncated or overwritten, and opening it as "
                    "a new workspace would hide that. Restore it from a backup, or remove it to "
                    "start this workspace afresh"
                )
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction spans
            # exactly what `transaction()` wraps and nothing commits behind our back.
            self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (sqlite3.DatabaseError, OSError) as e:
            raise _unusable(path, e) from e
        try:
            # Reads only, before any pragma or write: another program's database is refused
            # as it was found, never switched to WAL or given our tables.
            self._check_store()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except WorkspaceError:
            self._db.close()
            raise
        except (sqlite3.DatabaseError, OSError) as e:
            self._db.close()
            raise _unusable(path, e) from e
        self._depth = 0

    def _check_store(self) -> None:
        """The file is a traitforge store (its meta table holds the schema version, which
        every store has from its creation) of a version this traitforge can read."""
        query = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
        tables = [row[0] for row in self._db.execute(query)]
        row = None
        if "meta" in tables:
            query = "SELECT value FROM meta WHERE key='schema_version'"
            row = self._db.execute(query).fetchone()
        if row is None or not str(row[0]).isdigit():
            shown = ", ".join(tables[:8]) + (", ..." if len(tables) > 8 else "") or "none"
            raise WorkspaceError(
                f"{self.path} is an SQLite database but not a traitforge store: it has no "
                f"traitforge schema version (its tables: {shown}), so it may belong to another "
                "program. It was left as it was: point --workspace at another folder, or move "
                "the file aside to start this workspace afresh"
            )
        if int(row[0]) > SCHEMA_VERSION:
            raise WorkspaceError(
                f"store {self.path} has schema version {row[0]}, newer than this traitforge "
                f"({SCHEMA_VERSION}); upgrade traitforge to use this workspace"
            )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _require_transaction(self) -> None:
        if not self._depth:
            raise RuntimeError("store writes must run inside Store.transaction()")

    # -- candidates -------------------------------------------------------------------------
    def add_candidates(self, candidates: Iterable[Candidate]) -> tuple[int, int]:
        """Insert candidates not yet stored. Returns (new, already present)."""
        self._require_transaction()
        new = present = 0
        for c in candidates:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO candidates VALUES (?, ?, ?, ?)",
                (c.id, c.prompt_id, c.source, _body(c)),
            )
            if cursor.rowcount:
                new += 1
            else:
                present += 1
        return new, present

    def restate_traits(self, stated: Mapping[str, Sequence[str]]) -> int:
        """Give stored candidates (by id) the traits `stated` names, where they differ: a file
        whose trait column was corrected, ingested again. Traits are not part of the id, so a
        candidate keeps its id, scores and tasks, and the rest of its record stays as stored.
        Returns how many changed."""
        self._require_transaction()
        changed = 0
        for candidate_id, traits in stated.items():
            row = self._db.execute(
                "SELECT body, json_extract(body, '$.traits') FROM candidates WHERE id = ?",
                (candidate_id,),
            ).fetchone()
            # json_extract gives the array as JSON text; NULL for a record written before
            # candidates had traits, which states none.
            if row is None or json.loads(row[1] or "[]") == list(traits):
                continue
            stored = Candidate.model_validate_json(row[0])
            restated = stored.model_copy(update={"traits": list(traits)})
            self._db.execute(
                "UPDATE candidates SET body = ? WHERE id = ?", (_body(restated), candidate_id)
            )
            changed += 1
        return changed

    def candidates(self) -> Iterator[Candidate]:
        """Every candidate, ordered by id so that downstream output is deterministic."""
        for (body,) in self._db.execute("SELECT body FROM candidates ORDER BY id"):
            yield Candidate.model_validate_json(body)

    def candidates_by_prompt(
        self, prompt_id: str | None = None, limit: int | None = None
    ) -> Iterator[Candidate]:
        """Candidates in the order they were stored, each prompt's together (where its first
        one came); only `prompt_id`'s when given; at most `limit` of them."""
        query = (
            "SELECT body FROM candidates AS c"
            + (" WHERE prompt_id = :prompt" if prompt_id is not None else "")
            + " ORDER BY (SELECT MIN(rowid) FROM candidates WHERE prompt_id = c.prompt_id), rowid"
            + " LIMIT :limit"
        )
        params = {"prompt": prompt_id, "limit": -1 if limit is None else limit}
        for (body,) in self._db.execute(query, params):
            yield Candidate.model_validate_json(body)

    def candidates_by_ids(self, ids: Iterable[str]) -> dict[str, Candidate]:
        """The stored candidates among `ids`, by id; ids the store lacks are left out."""
        return {
            c.id: c
            for c in (
                Candidate.model_validate_json(body)
                for body in self._bodies_by_ids("candidates", ids)
            )
        }

    def stored_candidate_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` that name a stored candidate (no record is read)."""
        return set(self._by_ids("candidates", "id", ids))

    def count_candidates(self, prompt_id: str | None = None) -> int:
        if prompt_id is None:
            return self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        query = "SELECT COUNT(*) FROM candidates WHERE prompt_id = ?"
        return self._db.execute(query, (prompt_id,)).fetchone()[0]

    def prompt_ids_starting(self, prefix: str) -> list[str]:
        """The stored prompt ids that begin with `prefix`, sorted (substr, not LIKE: a prefix
        holding '%' or '_' means those characters)."""
        query = (
            "SELECT DISTINCT prompt_id FROM candidates "
            "WHERE substr(prompt_id, 1, length(:prefix)) = :prefix ORDER BY prompt_id"
        )
        return [row[0] for row in self._db.execute(query, {"prefix": prefix})]

    def candidate_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM candidates")}

    def gold_traits(self) -> set[str]:
        """The traits that some candidate has a gold value for, without parsing every record."""
        query = "SELECT DISTINCT g.key FROM candidates, json_each(candidates.body, '$.gold') AS g"
        return {row[0] for row in self._db.execute(query)}

    # -- scores, tasks, judgements, pairs ---------------------------------------------------
    def put_scores(self, scores: Iterable[Scores]) -> int:
        """Insert or replace scores (one per candidate, scorer and trait)."""
        self._require_transaction()
        rows = [(s.candidate_id, s.scorer, s.trait, _body(s)) for s in scores]
        self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def scores(self) -> Iterator[Scores]:
        query = "SELECT body FROM scores ORDER BY candidate_id, scorer, trait"
        for (body,) in self._db.execute(query):
            yield Scores.model_validate_json(body)

    def add_tasks(self, tasks: Iterable[ComparisonTask]) -> int:
        """Insert tasks not yet stored. Returns how many were new."""
        self._require_transaction()
        new = 0
        for t in tasks:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO tasks VALUES (?, ?, ?)", (t.id, t.prompt_id, _body(t))
            )
            new += cursor.rowcount
        return new

    def tasks(self) -> Iterator[ComparisonTask]:
        for (body,) in self._db.execute("SELECT body FROM tasks ORDER BY id"):
            yield ComparisonTask.model_validate_json(body)

    def tasks_by_ids(self, ids: Iterable[str]) -> dict[str, ComparisonTask]:
        """The stored tasks among `ids`, by id; ids the store lacks are left out."""
        return {
            t.id: t
            for t in (
                ComparisonTask.model_validate_json(body)
                for body in self._bodies_by_ids("tasks", ids)
            )
        }

    def queued_tasks(self, trait: str, k: int) -> Iterator[ComparisonTask]:
        """The tasks of one trait and size in annotation-queue order: earlier rounds first,
        then by id. Read one row at a time, so a caller holds only what it keeps."""
        query = (
            "SELECT body FROM tasks WHERE json_extract(body, '$.trait') = ? "
            "AND json_array_length(body, '$.candidate_ids') = ? "
            "ORDER BY coalesce(json_extract(body, '$.round'), 0), id"
        )
        for (body,) in self._db.execute(query, (trait, k)):
            yield ComparisonTask.model_validate_json(body)

    def _bodies_by_ids(self, table: str, ids: Iterable[str]) -> Iterator[str]:
        return self._by_ids(table, "body", ids)

    def _by_ids(self, table: str, column: str, ids: Iterable[str]) -> Iterator[str]:
        unique = sorted(set(ids))
        # Chunks stay under SQLite's limit on bound parameters.
        for start in range(0, len(unique), _ID_CHUNK):
            chunk = unique[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT {column} FROM {table} WHERE id IN ({marks})"
            for (value,) in self._db.execute(query, chunk):
                yield value

    def put_judgements(self, judgements: Iterable[Judgement]) -> int:
        """Insert or replace judgements: an annotator who edits an answer replaces it."""
        self._require_transaction()
        rows = [(j.id, j.task_id, j.annotator_id, _body(j)) for j in judgements]
        self._db.executemany("INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def remove_judgements(self, pairs: Iterable[tuple[str, str]]) -> int:
        """Remove the judgements of these (task id, annotator id) pairs: answers withdrawn
        since they were pulled. Returns how many were stored."""
        self._require_transaction()
        removed = 0
        for task_id, annotator_id in pairs:
            cursor = self._db.execute(
                "DELETE FROM judgements WHERE task_id = ? AND annotator_id = ?",
                (task_id, annotator_id),
            )
            removed += cursor.rowcount
        return removed

    def judgements(self) -> Iterator[Judgement]:
        for (body,) in self._db.execute("SELECT body FROM judgements ORDER BY id"):
            yield Judgement.model_validate_json(body)

    def replace_pairs(self, pairs: Iterable[PreferencePair]) -> int:
        """Pairs are derived from candidates and judgements: the latest export's set wins."""
        self._require_transaction()
        self._db.execute("DELETE FROM pairs")
        rows = [(p.id, p.trait, _body(p)) for p in pairs]
        self._db.executemany("INSERT INTO pairs VALUES (?, ?, ?)", rows)
        return len(rows)

    def pairs(self) -> Iterator[PreferencePair]:
        for (body,) in self._db.execute("SELECT body FROM pairs ORDER BY id"):
            yield PreferencePair.model_validate_json(body)

    def replace_flags(self, flags: Iterable[Flag]) -> int:
        """Flags are recomputed from the candidates and the flag config: the latest set wins."""
        self._require_transaction()
        self._db.execute("DELETE FROM flags")
        rows = [(f.candidate_id, _body(f)) for f in flags]
        self._db.executemany("INSERT OR REPLACE INTO flags VALUES (?, ?)", rows)
        return len(rows)

    def flags(self) -> Iterator[Flag]:
        for (body,) in self._db.execute("SELECT body FROM flags ORDER BY candidate_id"):
            yield Flag.model_validate_json(body)

    def replace_duplicates(self, marks: Iterable[DuplicateMark]) -> int:
        """Duplicate marks are recomputed from embeddings: the latest set wins."""
        self._require_transaction()
        self._db.execute("DELETE FROM duplicates")
        rows = [(m.candidate_id, _body(m)) for m in marks]
        self._db.executemany("INSERT INTO duplicates VALUES (?, ?)", rows)
        return len(rows)

    def duplicates(self) -> Iterator[DuplicateMark]:
        for (body,) in self._db.execute("SELECT body FROM duplicates ORDER BY candidate_id"):
            yield DuplicateMark.model_validate_json(body)

    # -- bookkeeping ------------------------------------------------------------------------
    def mark_done(self, stage: str, keys: Iterable[str]) -> None:
        """Record units of work finished (e.g. generation requests), in the caller's
        transaction, so a re-run skips exactly what was stored with them."""
        self._require_transaction()
        self._db.executemany("INSERT OR IGNORE INTO done VALUES (?, ?)", ((stage, k) for k in keys))

    def forget_done(self, stage: str, keys: Iterable[str]) -> None:
        """Undo `mark_done` for these keys (work whose result was since withdrawn)."""
        self._require_transaction()
        self._db.executemany(
            "DELETE FROM done WHERE stage = ? AND key = ?", ((stage, k) for k in keys)
        )

    def done_keys(self, stage: str) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM done WHERE stage=?", (stage,))}

    def record_presented(self, dataset: str, orders: Mapping[str, Sequence[str]]) -> None:
        """Remember, per task id, the candidate ids in the order the annotation dataset shows
        them. Kept here and not on the server, where annotators could read it; the latest
        push of a task wins, since the server shows what was last sent."""
        self._require_transaction()
        self._db.executemany(
            "INSERT OR REPLACE INTO presented VALUES (?, ?, ?)",
            ((dataset, task_id, json.dumps(list(order))) for task_id, order in orders.items()),
        )

    def presented_orders(
        self, dataset: str, task_ids: Iterable[str] | None = None
    ) -> dict[str, list[str]]:
        """Task id -> candidate ids as `dataset` shows them, for the tasks pushed to it (only
        those among `task_ids` when given)."""
        if task_ids is None:
            query = "SELECT task_id, candidate_ids FROM presented WHERE dataset=?"
            rows = self._db.execute(query, (dataset,)).fetchall()
        else:
            unique = sorted(set(task_ids))
            rows = []
            for start in range(0, len(unique), _ID_CHUNK):
                chunk = unique[start : start + _ID_CHUNK]
                query = (
                    "SELECT task_id, candidate_ids FROM presented WHERE dataset=? "
                    f"AND task_id IN ({','.join('?' * len(chunk))})"
                )
                rows += self._db.execute(query, (dataset, *chunk)).fetchall()
        return {task_id: json.loads(ids) for task_id, ids in rows}

    def bookmark(self, name: str) -> str | None:
        """A value a stage keeps between runs (e.g. how far a pull got), or None if unset."""
        query = "SELECT value FROM meta WHERE key=?"
        row = self._db.execute(query, (f"{_BOOKMARK}{name}",)).fetchone()
        return None if row is None else str(row[0])

    def set_bookmark(self, name: str, value: str) -> None:
        """Keep `value` under `name`, in the caller's transaction, so it commits with the
        work it describes."""
        self._require_transaction()
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{_BOOKMARK}{name}", value))

    def record_ingest(self, file_sha256: str, fmt: str, path: str, counts: dict[str, int]) -> None:
        self._require_transaction()
        self._db.execute(
            "INSERT OR REPLACE INTO ingests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                file_sha256,
                fmt,
                path,
                counts["read"],
                counts["new"],
                counts["present"],
                counts["rejected"],
                counts["skipped"],
                datetime.now(UTC).isoformat(timespec="seconds"),
            ),
        )

    def counts(self) -> dict[str, int]:
        tables = ("candidates", "flags", "duplicates", "scores", "tasks", "judgements", "pairs")
        return {t: self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
