"""Judgements of the trait judge, kept in one SQLite file in the workspace.

The key is everything that determines a rating: the model (with its backend), the judge's
prompt wording, the candidate (whose id hashes prompt and response), the trait and its rubric.
Each batch is committed as it finishes, so a killed run keeps what it judged and a re-run
judges nothing twice; INSERT OR IGNORE makes two runs racing on one batch harmless.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class JudgementKey:
    model: str  # "backend:model"
    prompt_hash: str
    candidate_id: str
    trait: str
    rubric_hash: str


@dataclass(frozen=True)
class Rating:
    """An expected rating on the trait's scale (its own direction). `mass`: the local model's
    probability on the scale's digits before normalizing (None for an endpoint)."""

    value: float
    mass: float | None = None


class JudgementCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judgements (model TEXT NOT NULL, prompt_hash TEXT NOT "
            "NULL, candidate_id TEXT NOT NULL, trait TEXT NOT NULL, rubric_hash TEXT NOT NULL, "
            "rating REAL NOT NULL, mass REAL, PRIMARY KEY (model, prompt_hash, candidate_id, "
            "trait, rubric_hash))"
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JudgementCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, keys: Sequence[JudgementKey]) -> dict[JudgementKey, Rating]:
        found: dict[JudgementKey, Rating] = {}
        wanted = set(keys)
        # Keys of one call share model, prompt and rubric: select by those, filter here.
        for scope in {(k.model, k.prompt_hash, k.trait, k.rubric_hash) for k in keys}:
            rows = self._db.execute(
                "SELECT candidate_id, rating, mass FROM judgements WHERE model=? AND "
                "prompt_hash=? AND trait=? AND rubric_hash=?",
                scope,
            )
            for candidate_id, rating, mass in rows:
                key = JudgementKey(scope[0], scope[1], candidate_id, scope[2], scope[3])
                if key in wanted:
                    found[key] = Rating(rating, mass)
        return found

    def put(self, ratings: Iterable[tuple[JudgementKey, Rating]]) -> None:
        rows = [
            (k.model, k.prompt_hash, k.candidate_id, k.trait, k.rubric_hash, r.value, r.mass)
            for k, r in ratings
        ]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(
                "INSERT OR IGNORE INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
