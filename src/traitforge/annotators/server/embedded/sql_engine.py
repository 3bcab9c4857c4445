"""An argilla-server search engine that answers from Argilla's own SQL tables.

Argilla 2.x keeps every record, response, suggestion and vector in its SQL database and copies
them into Elasticsearch only to search them. This engine skips the copy: each search reads the
rows it needs from the database and filters, sorts and ranks them in Python (cosine similarity
with numpy). The "index" methods are therefore no-ops: by the time the server calls them it has
already written the rows, and the next search sees them.

Cost: a search reads one dataset's records (plus its responses or suggestions when the query
refers to them), so it is linear in the dataset's size. That suits an embedded annotation
server (thousands to tens of thousands of records); teams with millions of records point
traitforge at an Argilla with Elasticsearch instead.

One deliberate difference: Elasticsearch serves each annotator its own shuffle of the queue.
This engine does so only when one answer completes a record; when a dataset's records need
more (task distribution `min_submitted` > 1), every annotator gets the same queue, in
insertion order, so the overlapping answers that agreement needs come first, not by chance
(see `search_rows.shuffles_per_user`).

A second one: a record's `updated_at`, wherever a search filters or sorts by it, is its last
change including its responses' (Argilla stamps an answer on the response, not the record, and
Elasticsearch indexes the record's own stamp). So "records updated since T" finds every record
answered, edited or discarded since T: traitforge's pull asks exactly that (ENGINE_VERSION 2).

Not supported (the server never needs them from this engine or they only tune Elasticsearch):
Elasticsearch relevance scoring (a text match scores by how often its terms occur) and the
operators of `simple_query_string` other than quoted phrases (terms are ANDed substrings).

Runs in the server's virtual environment: imports nothing from traitforge. argilla-server
creates a new instance per request, so nothing is kept on the instance. What does not need
argilla_server (the rows, and how values compare, sort and score) is in `search_rows`, beside
this file, where unit tests reach it without the server.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import numpy as np
from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, SimilarityOrder, SortOrder
from argilla_server.models import (
    Dataset,
    Field,
    MetadataProperty,
    Question,
    Record,
    Response,
    Suggestion,
    User,
    Vector,
    VectorSettings,
)
from argilla_server.search_engine import (
    AndFilter,
    Filter,
    FilterScope,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    MetadataMetrics,
    Order,
    RangeFilter,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from search_rows import (  # beside this file, like sql_engine itself (see launch.py)
    RecordRow,
    ResponseRow,
    SuggestionRow,
    as_list,
    comparable,
    in_range,
    response_value,
    seeded_random,
    shuffles_per_user,
    similarity_scores,
    term_equals,
    text_score,
    text_terms,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

ENGINE_NAME = "traitforge-sql"
ENGINE_VERSION = "2"  # 2: updated_at counts responses (traitforge pull reads it)


class SQLSearchEngine(SearchEngine):
    """Implements every abstract method of `argilla_server.search_engine.base.SearchEngine`."""

    @classmethod
    async def new_instance(cls) -> SQLSearchEngine:
        return cls()

    async def close(self) -> None:
        pass

    async def ping(self) -> bool:
        async with _session() as db:
            await db.execute(select(1))
        return True

    async def info(self) -> dict[str, str]:
        return {
            "distribution": ENGINE_NAME,
            "version": ENGINE_VERSION,
            # Lets traitforge tell its own server from any other one answering on the port.
            "instance": os.environ.get("TRAITFORGE_SERVER_ID", ""),
        }

    # -- index maintenance: the SQL tables are the index ---------------------------------
    async def create_index(self, dataset: Dataset) -> None:
        pass

    async def delete_index(self, dataset: Dataset) -> None:
        pass

    async def configure_metadata_property(
        self, dataset: Dataset, metadata_property: MetadataProperty
    ) -> None:
        pass

    async def configure_index_vectors(self, vector_settings: VectorSettings) -> None:
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def partial_record_update(self, record: Record, **update: Any) -> None:
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]) -> None:
        pass

    async def update_record_response(self, response: Response) -> None:
        pass

    async def delete_record_response(self, response: Response) -> None:
        pass

    async def update_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion) -> None:
        pass

    # -- progress and metrics -------------------------------------------------------------
    async def get_dataset_progress(self, dataset: Dataset) -> dict[str, int]:
        if dataset.is_draft:
            return {}
        query = (
            select(Record.status, func.count())
            .where(Record.dataset_id == dataset.id)
            .group_by(Record.status)
        )
        async with _session() as db:
            counts = {str(status): n for status, n in (await db.execute(query)).all()}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict[str, int]:
        if dataset.is_draft:
            return {}
        query = (
            select(Response.status, func.count())
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
            .group_by(Response.status)
        )
        async with _session() as db:
            counts = {str(status): n for status, n in (await db.execute(query)).all()}
        return {"total": sum(counts.values()), **counts}

    async def compute_metrics_for(self, metadata_property: MetadataProperty) -> MetadataMetrics:
        query = select(Record.metadata_).where(Record.dataset_id == metadata_property.dataset_id)
        async with _session() as db:
            rows = (await db.execute(query)).scalars().all()
        name = metadata_property.name
        values = [v for metadata in rows if metadata for v in as_list(metadata.get(name))]
        if metadata_property.type == MetadataPropertyType.terms:
            counts = Counter(str(v) for v in values)
            return TermsMetrics(
                total=len(values),
                values=[
                    TermsMetrics.TermCount(term=term, count=n) for term, n in counts.most_common()
                ],
            )
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if metadata_property.type == MetadataPropertyType.integer:
            ints = [int(v) for v in numbers]
            return IntegerMetadataMetrics(min=min(ints, default=None), max=max(ints, default=None))
        floats = [float(v) for v in numbers]
        return FloatMetadataMetrics(min=min(floats, default=None), max=max(floats, default=None))

    # -- search ----------------------------------------------------------------------------
    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        sort: list[Order] | None = None,
        offset: int = 0,
        limit: int = 100,
        user_id: UUID | str | None = None,
    ) -> SearchResponses:
        async with _session() as db:
            matched = await _matching(db, dataset.id, query, filter, sort)
        if sort:
            # Like Elasticsearch: sorting by fields returns no relevance score.
            rows = _sorted(matched, sort)
            items = [SearchResponseItem(record_id=r.id, score=None) for r, _ in rows]
        else:
            if user_id is not None and shuffles_per_user(dataset.distribution):
                # Elasticsearch multiplies the score by a random number seeded with the user, so
                # each annotator sees the queue in a different but stable order.
                matched = [(r, s * seeded_random(user_id, r.id)) for r, s in matched]
            # sorted() is stable: equal scores keep insertion order, as match_all does.
            ranked = sorted(matched, key=lambda pair: pair[1], reverse=True)
            items = [SearchResponseItem(record_id=r.id, score=s) for r, s in ranked]
        return SearchResponses(items=items[offset : offset + limit], total=len(items))

    async def similarity_search(
        self,
        dataset: Dataset,
        vector_settings: VectorSettings,
        value: list[float] | None = None,
        record: Record | None = None,
        query: TextQuery | str | None = None,
        filter: Filter | None = None,
        max_results: int = 100,
        order: SimilarityOrder = SimilarityOrder.most_similar,
        threshold: float | None = None,
    ) -> SearchResponses:
        if bool(value) == bool(record):
            raise ValueError("Must provide either vector value or record to compute the similarity")
        excluded = record.id if record is not None else None
        async with _session() as db:
            if value is None and record is not None:
                value = (
                    await db.execute(
                        select(Vector.value).where(
                            Vector.record_id == record.id,
                            Vector.vector_settings_id == vector_settings.id,
                        )
                    )
                ).scalar_one_or_none()
            if not value:
                raise ValueError("Cannot find a vector value to apply with provided info")
            vectors = (
                await db.execute(
                    select(Vector.record_id, Vector.value)
                    .join(Record, Vector.record_id == Record.id)
                    .where(
                        Vector.vector_settings_id == vector_settings.id,
                        Record.dataset_id == dataset.id,
                    )
                )
            ).all()
            allowed = None
            if filter is not None or query is not None:
                allowed = {r.id for r, _ in await _matching(db, dataset.id, query, filter, None)}
        candidates = [
            (rid, vec)
            for rid, vec in vectors
            if rid != excluded and (allowed is None or rid in allowed) and vec
        ]
        if not candidates:
            return SearchResponses(items=[], total=0)
        scores = similarity_scores(
            value,
            [vec for _, vec in candidates],
            least_similar=order == SimilarityOrder.least_similar,
        )
        top = np.argsort(-scores, kind="stable")[:max_results]
        items = [
            SearchResponseItem(record_id=candidates[i][0], score=float(scores[i])) for i in top
        ]
        total = len(items)
        if threshold is not None:
            items = [item for item in items if item.score is not None and item.score >= threshold]
        return SearchResponses(items=items, total=total)


# -- loading --------------------------------------------------------------------------------


@asynccontextmanager
async def _session() -> AsyncIterator[AsyncSession]:
    """A session of our own: the engine reads committed rows and never joins (or flushes) the
    request's unit of work."""
    async with AsyncSessionLocal() as db:
        yield db


def _scopes(filter: Filter | None, sort: list[Order] | None) -> Iterator[FilterScope]:
    stack: list[Any] = [filter] if filter is not None else []
    while stack:
        item = stack.pop()
        if isinstance(item, AndFilter):
            stack.extend(item.filters)
        else:
            yield item.scope
    for order in sort or []:
        yield order.scope


async def _matching(
    db: AsyncSession,
    dataset_id: UUID,
    query: TextQuery | str | None,
    filter: Filter | None,
    sort: list[Order] | None,
) -> list[tuple[RecordRow, float]]:
    """The dataset's records that pass `filter` and `query`, in insertion order, with a score
    (1.0, or the text-match score when there is a text query)."""
    scopes = list(_scopes(filter, sort))
    rows = await _load(
        db,
        dataset_id,
        with_fields=query is not None,
        with_responses=any(isinstance(s, ResponseFilterScope) for s in scopes),
        with_suggestions=any(isinstance(s, SuggestionFilterScope) for s in scopes),
        with_answer_times=any(
            isinstance(s, RecordFilterScope) and s.property == "updated_at" for s in scopes
        ),
    )
    if filter is not None:
        rows = [r for r in rows if _matches(filter, r)]
    if query is None:
        return [(r, 1.0) for r in rows]
    text = TextQuery(q=query) if isinstance(query, str) else query
    terms = text_terms(text.q)
    searched = await _text_fields(db, dataset_id, text.field)
    scored = [(r, text_score(r, searched, terms)) for r in rows]
    return [(r, s) for r, s in scored if s > 0]


async def _load(
    db: AsyncSession,
    dataset_id: UUID,
    with_fields: bool,
    with_responses: bool,
    with_suggestions: bool,
    with_answer_times: bool = False,
) -> list[RecordRow]:
    columns = [
        Record.id,
        Record.external_id,
        Record.status,
        Record.inserted_at,
        Record.updated_at,
        Record.metadata_,
    ]
    if with_fields:
        columns.append(Record.fields)
    result = await db.execute(
        select(*columns)
        .where(Record.dataset_id == dataset_id)
        .order_by(Record.inserted_at, Record.external_id, Record.id)
    )
    rows: dict[UUID, RecordRow] = {}
    for row in result.all():
        rows[row[0]] = RecordRow(
            id=row[0],
            external_id=row[1],
            status=str(row[2]),
            inserted_at=row[3],
            updated_at=row[4],
            metadata=row[5] or {},
            fields=(row[6] or {}) if with_fields else {},
        )
    if with_responses:
        responses = await db.execute(
            select(Response.record_id, Response.user_id, Response.status, Response.values)
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset_id)
        )
        for record_id, user_id, status, values in responses.all():
            if record_id in rows:
                rows[record_id].responses.append(ResponseRow(user_id, str(status), values or {}))
    if with_answer_times:
        # A record's updated_at counts its responses' changes (see the module docstring).
        answered = await db.execute(
            select(Response.record_id, func.max(Response.updated_at))
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset_id)
            .group_by(Response.record_id)
        )
        for record_id, latest in answered.all():
            row = rows.get(record_id)
            if row is not None and latest is not None and latest > row.updated_at:
                row.updated_at = latest
    if with_suggestions:
        suggestions = await db.execute(
            select(
                Suggestion.record_id,
                Question.name,
                Suggestion.value,
                Suggestion.score,
                Suggestion.agent,
                Suggestion.type,
            )
            .join(Question, Suggestion.question_id == Question.id)
            .where(Question.dataset_id == dataset_id)
        )
        for record_id, question, value, score, agent, kind in suggestions.all():
            if record_id in rows:
                rows[record_id].suggestions[question] = SuggestionRow(
                    value, score, agent, str(kind) if kind is not None else None
                )
    return list(rows.values())


# -- filters --------------------------------------------------------------------------------


def _matches(filter: Filter, row: RecordRow) -> bool:
    if isinstance(filter, AndFilter):
        return all(_matches(f, row) for f in filter.filters)
    if isinstance(filter.scope, ResponseFilterScope):
        return _response_matches(filter, row)
    return _values_match(filter, _scope_values(filter.scope, row))


def _response_matches(filter: TermsFilter | RangeFilter, row: RecordRow) -> bool:
    scope: ResponseFilterScope = filter.scope  # type: ignore[assignment]
    responses = _responses_of(scope, row)
    if scope.question:
        values = [v for r in responses for v in as_list(response_value(r, scope.question))]
        return _values_match(filter, values)
    if scope.property == "status" and isinstance(filter, TermsFilter):
        wanted = {str(v) for v in filter.values}
        # "pending" means: no response (by this user, when the scope names one).
        if "pending" in wanted and not responses:
            return True
        return any(r.status in wanted for r in responses)
    raise ValueError(f"Cannot process filter scope {scope}")


def _responses_of(scope: ResponseFilterScope, row: RecordRow) -> list[ResponseRow]:
    if scope.user is None:
        return row.responses
    return [r for r in row.responses if r.user_id == scope.user.id]


def _scope_values(scope: FilterScope, row: RecordRow) -> list[Any]:
    """The values a filter or sort on `scope` compares, as a list (several for multi-valued
    metadata and multi-label suggestions, none when the record has no value)."""
    if isinstance(scope, RecordFilterScope):
        value = getattr(row, scope.property, None)
        return [] if value is None else [str(value) if isinstance(value, UUID) else value]
    if isinstance(scope, MetadataFilterScope):
        return as_list(row.metadata.get(scope.metadata_property))
    if isinstance(scope, SuggestionFilterScope):
        suggestion = row.suggestions.get(scope.question)
        if suggestion is None:
            return []
        return as_list(getattr(suggestion, scope.property or "value", None))
    raise ValueError(f"Cannot process request for search scope {scope}")


def _values_match(filter: TermsFilter | RangeFilter, values: list[Any]) -> bool:
    if isinstance(filter, TermsFilter):
        return any(term_equals(v, str(t)) for v in values for t in filter.values)
    if isinstance(filter, RangeFilter):
        return any(in_range(v, filter.ge, filter.le) for v in values)
    raise ValueError(f"Cannot process request for filter {filter}")


# -- sorting --------------------------------------------------------------------------------


def _sorted(
    matched: list[tuple[RecordRow, float]], sort: list[Order]
) -> list[tuple[RecordRow, float]]:
    """Sort by each order, last key first, with stable sorts; records without a value go last
    in both directions (Elasticsearch's default `missing: _last`)."""
    rows = list(matched)
    for order in reversed(sort):
        descending = order.order == SortOrder.desc
        keyed = [(_sort_key(order.scope, row, descending), (row, s)) for row, s in rows]
        present = [(k, item) for k, item in keyed if k is not None]
        missing = [item for k, item in keyed if k is None]
        present.sort(key=lambda pair: pair[0], reverse=descending)
        rows = [item for _, item in present] + missing
    return rows


def _sort_key(scope: FilterScope, row: RecordRow, descending: bool) -> tuple[int, Any] | None:
    if isinstance(scope, ResponseFilterScope):
        responses = _responses_of(scope, row)
        if scope.question:
            numbers = [
                float(v)
                for r in responses
                for v in as_list(response_value(r, scope.question))
                if isinstance(v, int | float)
            ]
            # Elasticsearch sorts nested responses with mode "avg".
            return (0, sum(numbers) / len(numbers)) if numbers else None
        values: list[Any] = [r.status for r in responses]
    else:
        values = _scope_values(scope, row)
    keys = [comparable(v) for v in values]
    if not keys:
        return None
    # Multi-valued fields sort by their largest value descending, smallest ascending.
    return max(keys) if descending else min(keys)


# -- text -----------------------------------------------------------------------------------


async def _text_fields(db: AsyncSession, dataset_id: UUID, only: str | None) -> list[str]:
    """Names of the fields a text query searches: the named one, or every non-image field."""
    result = await db.execute(
        select(Field.name, Field.settings).where(Field.dataset_id == dataset_id)
    )
    names = [name for name, settings in result.all() if (settings or {}).get("type") != "image"]
    return [only] if only is not None else names
