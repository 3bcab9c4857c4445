"""Pull: store the submitted responses of a workspace's Argilla datasets as judgements.

Incremental, twice over. A pull remembers each response by (id, updated_at) in the store
(`pull_stage`), so a re-pull writes only new or edited answers. And where the server's search
engine can say which records changed since a moment (`lists_changes`), a pull asks only for
those: the records whose last change, their responses' included, is at or after the start of
the previous complete pull less `SKEW_MARGIN`.

Streamed: records arrive a list page at a time; each page's tasks and shown orders are read
from the store for that page only, and its judgements are written with their watermark in one
transaction before the next page is read, so a killed pull loses nothing and re-reads only the
rest. Only the watermark keys (strings) are held for the whole pull.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from traitforge.annotators.argilla.client import ArgillaAPI, Connection
from traitforge.annotators.backends import PullReport, store_judgement_page
from traitforge.annotators.records import (
    CANDIDATE_ORDER,
    InvalidResponse,
    dataset_name,
    presented_order,
    response_judgement,
    suggested_values,
)
from traitforge.schemas import ComparisonTask, ProjectConfig, TraitSpec
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress

# Changes stamped this long before the previous pull began are listed again: the server
# stamps a change when its request starts and commits it later, and its clock may differ a
# little from ours. Listing a record again costs only its re-read (its keys are known).
SKEW_MARGIN = timedelta(minutes=2)
# traitforge's embedded engine from this version on counts a record's responses in its
# `updated_at` (sql_engine.ENGINE_VERSION); older ones and Elasticsearch do not.
CHANGES_ENGINE = ("traitforge-sql", 2)


def pull_stage(dataset: str) -> str:
    """The store's done-stage holding '<response id>@<updated_at>' of pulled responses; also
    the name of the bookmark holding when the last complete pull of `dataset` began."""
    return f"pull:{dataset}"


def lists_changes(engine: Mapping[str, Any]) -> bool:
    """Whether a search by record `updated_at` finds every record whose responses changed.

    Only traitforge's engine (version 2 on): Argilla stamps a response's change on the
    response, not on its record, and Elasticsearch indexes the record's own `updated_at`, so
    on a server with Elasticsearch the same search would miss answers. There a pull lists
    every record instead (and still writes only new or edited answers)."""
    name, version = CHANGES_ENGINE
    try:
        return engine.get("distribution") == name and int(engine.get("version", 0)) >= version
    except (TypeError, ValueError):
        return False


def pull(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    progress: StageProgress | None = None,
) -> PullReport:
    """Store submitted responses of every pushed dataset as judgements, only new or edited
    ones; drafts and discarded answers are counted, never stored, and an answer pulled before
    and since discarded (or returned to draft) has its judgement removed."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    template = argilla.dataset
    names = {dataset_name(template, t.trait, len(t.candidate_ids)) for t in store.tasks()}
    report = PullReport(url=connection.api_url)
    with ArgillaAPI.connect(connection, argilla.retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        report.missing_datasets = sorted(names - set(remote))
        users = api.usernames()
        incremental = lists_changes(api.search_engine()) if names & set(remote) else False
        for name in sorted(names & set(remote)):
            dataset_id = str(remote[name]["id"])
            stage = pull_stage(name)
            started = datetime.now(UTC)
            mark = store.bookmark(stage) if incremental else None
            if mark is None:
                total = api.record_count(dataset_id)
                pages = api.record_pages(dataset_id, include="responses")
            else:
                since = datetime.fromisoformat(mark) - SKEW_MARGIN
                total = None
                pages = api.changed_record_pages(dataset_id, since, include="responses")
            written = _pull_pages(store, name, pages, total, traits, users, report, progress)
            report.by_dataset[name] = written
            with store.transaction():
                store.set_bookmark(stage, started.isoformat())
    return report


def _pull_pages(
    store: Store,
    name: str,
    pages: Iterator[list[dict[str, Any]]],
    total: int | None,
    traits: Mapping[str, TraitSpec],
    users: Mapping[str, str],
    report: PullReport,
    progress: StageProgress | None,
) -> int:
    """Turn each page of records into judgements and store them before the next page."""
    stage = pull_stage(name)
    seen = store.done_keys(stage)
    seen_ids: dict[str, list[str]] = {}
    for key in seen:
        seen_ids.setdefault(key.split("@", 1)[0], []).append(key)
    written = done = 0
    for records in pages:
        ids = [str(r.get("external_id") or "") for r in records]
        tasks = store.tasks_by_ids(ids)
        orders = store.presented_orders(name, ids)
        page: list[tuple[str, Any]] = []
        withdrawn: list[tuple[str, str, str]] = []
        for record in records:
            page += _record_judgements(
                record, tasks, orders, traits, users, seen, seen_ids, report, withdrawn
            )
        with store.transaction():
            # A withdrawn answer's judgement goes, and its keys with it: the store then holds
            # what a first pull of the server as it is now would, and a re-pull, or the
            # answer submitted again, is handled as if it had never been pulled.
            report.withdrawn += store.remove_judgements((t, a) for t, a, _ in withdrawn)
            forgotten = [key for _, _, rid in withdrawn for key in seen_ids.pop(rid, [])]
            store.forget_done(stage, forgotten)
            seen.difference_update(forgotten)
            written += store_judgement_page(store, stage, page)
        for key, _ in page:
            seen.add(key)
            seen_ids.setdefault(key.split("@", 1)[0], []).append(key)
        done += len(records)
        if progress:
            progress(f"pull {name}", done, done if total is None else total)
    return written


def _record_judgements(
    record: Mapping[str, Any],
    tasks: Mapping[str, ComparisonTask],
    orders: Mapping[str, Sequence[str]],
    traits: Mapping[str, TraitSpec],
    users: Mapping[str, str],
    seen: set[str],
    seen_ids: Mapping[str, Sequence[str]],
    report: PullReport,
    withdrawn: list[tuple[str, str, str]],
) -> list[tuple[str, Any]]:
    """(done key, judgement) for each new or edited submitted response of one record.
    `orders`: task id -> candidate ids as the dataset shows them (from the store);
    `seen_ids`: response id -> its done keys. A response pulled before and no longer
    submitted (discarded, or back to draft) goes into `withdrawn` as (task id, annotator,
    response id)."""
    out: list[tuple[str, Any]] = []
    task = tasks.get(record.get("external_id") or "")
    for response in record.get("responses") or []:
        status = response.get("status")
        if status != "submitted":
            username = users.get(str(response.get("user_id")))
            if task is not None and username is not None and response.get("id") in seen_ids:
                withdrawn.append((task.id, username, str(response["id"])))
            else:
                report.ignored[str(status)] += 1
            continue
        key = f"{response['id']}@{response['updated_at']}"
        if key in seen:
            report.unchanged += 1
            continue
        if task is None:
            report.dropped["response to a record that maps to no task in the workspace"] += 1
            continue
        username = users.get(str(response.get("user_id")))
        if username is None:
            report.dropped["response by a user the server no longer lists"] += 1
            continue
        order = presented_order_of(record, task, orders)
        try:
            judgement = response_judgement(
                task,
                order,
                response.get("values") or {},
                username,
                response.get("updated_at"),
                suggested_values(task, order, traits),
            )
        except (InvalidResponse, ValueError) as e:
            report.dropped[f"invalid answer: {e}"] += 1
            continue
        if response["id"] in seen_ids:
            report.changed += 1
        else:
            report.new += 1
        out.append((key, judgement))
    return out


def presented_order_of(
    record: Mapping[str, Any], task: ComparisonTask, orders: Mapping[str, Sequence[str]]
) -> list[str]:
    """The candidate ids behind a record's response fields: the record's own metadata when an
    earlier version pushed it with them, else what the store kept at push time, else the
    deterministic shuffle they all came from (for a record older than both)."""
    legacy = (record.get("metadata") or {}).get(CANDIDATE_ORDER)
    if isinstance(legacy, list) and legacy:
        return [str(c) for c in legacy]
    return list(orders.get(task.id) or presented_order(task))
