"""Pull: store the submitted responses of a workspace's Argilla datasets as judgements.

Incremental: a pull remembers each response by (id, updated_at) in the store (`pull_stage`),
so a re-pull writes only new or edited answers. Judgements and that watermark are written
together, page by page, so a killed pull loses nothing and re-reads only the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traitforge.annotators.argilla.client import ArgillaAPI, Connection
from traitforge.annotators.backends import PullReport, store_judgement_page
from traitforge.annotators.records import (
    CANDIDATE_ORDER,
    InvalidResponse,
    group_tasks,
    presented_order,
    response_judgement,
    suggested_values,
)
from traitforge.schemas import ComparisonTask, ProjectConfig, TraitSpec
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress

STORE_PAGE = 500  # judgements written per store transaction while pulling


def pull_stage(dataset: str) -> str:
    """The store's done-stage holding '<response id>@<updated_at>' of pulled responses."""
    return f"pull:{dataset}"


def pull(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    progress: StageProgress | None = None,
) -> PullReport:
    """Store submitted responses of every pushed dataset as judgements, only new or edited
    ones; drafts and discarded answers are counted, never stored."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    tasks = {t.id: t for t in store.tasks()}
    names = set(group_tasks(tasks.values(), argilla.dataset))
    report = PullReport(url=connection.api_url)
    with ArgillaAPI.connect(connection, argilla.retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        report.missing_datasets = sorted(names - set(remote))
        users = api.usernames()
        for name in sorted(names & set(remote)):
            dataset_id = str(remote[name]["id"])
            total = api.record_count(dataset_id)
            seen = store.done_keys(pull_stage(name))
            seen_ids = {key.split("@", 1)[0] for key in seen}
            orders = store.presented_orders(name)
            written = 0
            page: list[tuple[str, Any]] = []
            for done, record in enumerate(api.records(dataset_id, include="responses"), 1):
                page += _record_judgements(
                    record, tasks, orders, traits, users, seen, seen_ids, report
                )
                if len(page) >= STORE_PAGE:
                    written += store_judgement_page(store, pull_stage(name), page)
                    page = []
                if progress:
                    progress(f"pull {name}", done, total)
            written += store_judgement_page(store, pull_stage(name), page)
            report.by_dataset[name] = written
    return report


def _record_judgements(
    record: Mapping[str, Any],
    tasks: Mapping[str, ComparisonTask],
    orders: Mapping[str, Sequence[str]],
    traits: Mapping[str, TraitSpec],
    users: Mapping[str, str],
    seen: set[str],
    seen_ids: set[str],
    report: PullReport,
) -> list[tuple[str, Any]]:
    """(done key, judgement) for each new or edited submitted response of one record.
    `orders`: task id -> candidate ids as the dataset shows them (from the store)."""
    out: list[tuple[str, Any]] = []
    task = tasks.get(record.get("external_id") or "")
    for response in record.get("responses") or []:
        status = response.get("status")
        if status != "submitted":
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
