"""The rows a search of `sql_engine` reads, and the pure rules by which it compares, sorts and
scores their values.

Pure Python and numpy, nothing from argilla_server or traitforge: `sql_engine` imports it as a
top-level module beside it in the server's environment, and traitforge's unit tests import it
from the project's (where argilla_server is not installed).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np


@dataclass
class ResponseRow:
    user_id: UUID
    status: str
    values: dict[str, Any]


@dataclass
class SuggestionRow:
    value: Any
    score: Any
    agent: str | None
    type: str | None


@dataclass
class RecordRow:
    """What a search can look at for one record (loaded only as far as the query needs)."""

    id: UUID
    external_id: str | None
    status: str
    inserted_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    fields: dict[str, Any] = field(default_factory=dict)
    responses: list[ResponseRow] = field(default_factory=list)
    suggestions: dict[str, SuggestionRow] = field(default_factory=dict)


# -- values ---------------------------------------------------------------------------------


def response_value(response: ResponseRow, question: str) -> Any:
    answer = response.values.get(question)
    return answer.get("value") if isinstance(answer, dict) else None


def as_list(value: Any) -> list[Any]:
    """Flatten a stored value: lists give their items, ranking items ({value, rank}) their
    value, and a missing value nothing."""
    if value is None:
        return []
    if isinstance(value, list):
        return [v for item in value for v in as_list(item)]
    if isinstance(value, dict) and "value" in value:
        return as_list(value["value"])
    return [value]


def term_equals(value: Any, term: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == term.lower()
    if isinstance(value, int | float):
        try:
            return float(term) == float(value)
        except ValueError:
            return False
    if isinstance(value, datetime):
        return as_datetime(term) == value
    return str(value) == term


def in_range(value: Any, ge: Any, le: Any) -> bool:
    if isinstance(value, datetime):
        low, high = as_datetime(ge), as_datetime(le)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        low, high = _as_float(ge), _as_float(le)
    else:
        value = str(value)
        low, high = (None if ge is None else str(ge)), (None if le is None else str(le))
    return (low is None or value >= low) and (high is None or value <= high)


def _as_float(bound: Any) -> float | None:
    return None if bound is None else float(bound)


def as_datetime(bound: Any) -> datetime | None:
    """A range bound on inserted_at / updated_at: an ISO date or, as Elasticsearch reads a
    number on a date field, epoch milliseconds. Argilla stores naive UTC datetimes."""
    if bound is None:
        return None
    if isinstance(bound, int | float):
        moment = datetime.fromtimestamp(bound / 1000.0, tz=UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(bound).replace("Z", "+00:00"))
        except ValueError:
            moment = datetime.fromtimestamp(float(bound) / 1000.0, tz=UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


# -- sorting and ranking --------------------------------------------------------------------


def comparable(value: Any) -> tuple[int, Any]:
    """A sort key that orders values of mixed types: numbers, then dates, then text."""
    if isinstance(value, bool):
        return (0, float(value))
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, datetime):
        return (1, value)
    return (2, str(value))


def seeded_random(user_id: UUID | str, record_id: UUID) -> float:
    """A number in [0, 1) fixed by (user, record): each annotator's own stable shuffle."""
    digest = hashlib.sha256(f"{user_id}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:7], "big") / float(1 << 56)


def shuffles_per_user(distribution: dict[str, Any] | None) -> bool:
    """Whether each annotator gets its own shuffle of the queue, as with Elasticsearch.

    Only when one submitted answer completes a record: a shuffle then keeps annotators off
    each other's records. With overlap (`min_submitted` > 1) two annotators shuffled apart
    answered the same record only by chance (3 of 12 in a real session), so they share one
    queue instead and agreement accrues from their first answers."""
    minimum = (distribution or {}).get("min_submitted", 1)
    return not isinstance(minimum, int) or minimum <= 1


def similarity_scores(
    target: list[float], vectors: list[list[float]], least_similar: bool = False
) -> np.ndarray:
    """Elasticsearch's score for cosine similarity, (1 + cosine) / 2, of each vector against
    `target` (against its opposite for the least similar, as Elasticsearch's engine does), so
    thresholds mean the same on both. A zero vector scores 0.5."""
    aim = np.asarray(target, dtype=np.float64)
    if least_similar:
        aim = -aim
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(aim)
    cosine = np.divide(matrix @ aim, norms, out=np.zeros(len(vectors)), where=norms > 0)
    return (1.0 + cosine) / 2.0


# -- text -----------------------------------------------------------------------------------

_TERM = re.compile(r'"([^"]+)"|(\S+)')


def text_terms(q: str) -> list[str]:
    """Quoted phrases stay whole; other words are terms; all must occur (AND), as with the
    default operator Argilla gives `simple_query_string`."""
    terms = []
    for phrase, word in _TERM.findall(q):
        term = (phrase or word.lstrip("+")).strip().lower()
        if term and term != "*":
            terms.append(term)
    return terms


def text_score(row: RecordRow, fields: list[str], terms: list[str]) -> float:
    """How often the terms occur in the row's `fields`, or 0.0 unless every term occurs."""
    if not terms:
        return 1.0
    text = "\n".join(s for name in fields for s in _strings(row.fields.get(name))).lower()
    counts = [text.count(term) for term in terms]
    return float(sum(counts)) if all(counts) else 0.0


def _strings(value: Any) -> Iterator[str]:
    """The searchable text of a field value: a string, a chat's message contents, or the
    strings inside a custom field's JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        if "content" in value:
            yield from _strings(value["content"])
        else:
            for item in value.values():
                yield from _strings(item)
    elif value is not None:
        yield str(value)
