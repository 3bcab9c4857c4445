"""Simulated annotators answering in Argilla, the way a person in the web UI does.

Each simulated annotator logs in with its own API key and goes through the same HTTP
endpoints as a person (its queue from `/api/v1/me/datasets/{id}/records/search`, answers to
`/api/v1/me/responses/bulk`), so the server's task distribution, validation and progress all
see ordinary annotators. What each one answers is `traitforge.annotators.simulated`'s: from
gold, or from an answer key (`traitforge.annotators.answer_key`) when one is given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from traitforge.annotators.answer_key import AnswerKey
from traitforge.annotators.argilla.client import ArgillaAPI
from traitforge.annotators.backends import SimulationReport
from traitforge.annotators.records import (
    DatasetLayout,
    group_tasks,
    presented_order,
    shown_responses,
)
from traitforge.annotators.simulated import SimulatedAnnotator, assignees
from traitforge.errors import TraitforgeError
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress

# Records fetched and answered per turn. Small, like a person working through a queue, so that
# annotators taking turns share the records instead of the first one answering everything.
PAGE = 10


class Account(Protocol):
    """An annotator's login: the embedded server's accounts fit."""

    @property
    def username(self) -> str: ...

    @property
    def api_key(self) -> str: ...


@dataclass
class _Queue:
    """One annotator's pending records in one dataset."""

    api: ArgillaAPI
    annotator: SimulatedAnnotator
    dataset_id: str
    layout: DatasetLayout
    orders: Mapping[str, Sequence[str]]  # task id -> candidate ids as the fields show them
    assigned: Callable[[str], bool]  # task id -> whether this annotator answers it
    passed: set[str] = field(default_factory=set)  # records it leaves: not re-fetched
    done: bool = False

    def order(self, task: ComparisonTask) -> list[str]:
        return list(self.orders.get(task.id) or presented_order(task))


def simulate(
    store: Store,
    config: ProjectConfig,
    api_url: str,
    accounts: Sequence[Account],
    progress: StageProgress | None = None,
    answers: AnswerKey | None = None,
) -> SimulationReport:
    """Every account answers its pending records of the workspace's datasets, taking turns
    page by page, so the server's task distribution spreads records over all of them.
    With `answers`, they answer from that key instead of gold, and a record whose
    candidates it lacks stays unanswered (counted in the report's `skipped`)."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    candidates = {c.id: c for c in store.candidates()}
    tasks = {t.id: t for t in store.tasks()}
    layouts = {
        name: DatasetLayout.for_tasks(argilla.dataset, members)
        for name, members in group_tasks(tasks.values(), argilla.dataset).items()
    }
    report = SimulationReport(url=api_url)
    usernames = [a.username for a in accounts]

    def assignee(username: str) -> Callable[[str], bool]:
        # Who answers a record is fixed by the task, not by timing, so a run killed midway
        # and re-run ends with the same answers as an uninterrupted one.
        def assigned(task_id: str) -> bool:
            return username in assignees(task_id, usernames, argilla.min_submitted, seed)

        return assigned

    seed = config.annotation.simulation.seed
    apis = [ArgillaAPI(api_url, a.api_key, argilla.retries) for a in accounts]
    try:
        queues = []
        for account, api in zip(accounts, apis, strict=True):
            annotator = SimulatedAnnotator(
                account.username, config.annotation.simulation, traits, answers
            )
            workspace_id = api.workspace_id(argilla.workspace)
            if workspace_id is None:
                raise TraitforgeError(
                    f"annotator {account.username} is not a member of the Argilla workspace "
                    f"{argilla.workspace!r} at {api_url}; add the account to it (traitforge "
                    "adds the accounts it creates)"
                )
            remote = api.datasets(workspace_id)
            for name in sorted(set(layouts) & set(remote)):
                queues.append(
                    _Queue(
                        api,
                        annotator,
                        str(remote[name]["id"]),
                        layouts[name],
                        store.presented_orders(name),
                        assignee(account.username),
                    )
                )
        report.datasets = sorted({q.layout.name for q in queues})
        groups = group_tasks(tasks.values(), argilla.dataset)
        # Answers still wanted: earlier rounds' records already hold their pulled answers.
        stored = Counter(j.task_id for j in store.judgements())
        total = sum(
            max(argilla.min_submitted - stored[t.id], 0) for n in report.datasets for t in groups[n]
        )
        # Every annotator's queue meets a record it cannot answer: count each record once.
        unanswerable: dict[str, set[str]] = {}
        while any(not q.done for q in queues):
            for queue in queues:
                if not queue.done:
                    _answer_page(queue, tasks, candidates, report, unanswerable)
                    if progress:
                        progress("simulate", sum(report.answered.values()), total)
    finally:
        for api in apis:
            api.close()
    report.skipped.update({reason: len(ids) for reason, ids in unanswerable.items()})
    return report


# The web UI's queue: records this annotator has not answered that still need answers (a
# record completes when min_submitted annotators submitted it).
_PENDING = {
    "filters": {
        "and": [
            {
                "type": "terms",
                "scope": {"entity": "response", "property": "status"},
                "values": ["pending"],
            },
            {
                "type": "terms",
                "scope": {"entity": "record", "property": "status"},
                "values": ["pending"],
            },
        ]
    }
}


def _answer_page(
    queue: _Queue,
    tasks: Mapping[str, ComparisonTask],
    candidates: Mapping[str, Candidate],
    report: SimulationReport,
    unanswerable: dict[str, set[str]],
) -> None:
    path = f"/api/v1/me/datasets/{queue.dataset_id}/records/search"
    # Records this annotator passed over stay pending for it, anywhere in the listing: page
    # past them until a page holds records it has not looked at yet.
    offset = 0
    while True:
        page = queue.api.request(
            "POST", path, params={"offset": offset, "limit": PAGE}, json=_PENDING
        )
        records = [item["record"] for item in page["items"]]
        if not records:
            queue.done = True
            return
        fresh = [r for r in records if str(r["id"]) not in queue.passed]
        if fresh:
            break
        offset += len(records)
    items = []
    for record in fresh:
        reason = _unanswerable(record, tasks, candidates, queue)
        if reason:
            unanswerable.setdefault(reason, set()).add(str(record["id"]))
            queue.passed.add(str(record["id"]))
            continue
        task = tasks[record["external_id"]]
        if not queue.assigned(task.id):
            queue.passed.add(str(record["id"]))
            continue
        values, why = queue.annotator.answer(task, queue.order(task), candidates, queue.layout)
        report.behaviour[why] += 1
        items.append({"record_id": str(record["id"]), "status": "submitted", "values": values})
    if not items:
        return
    result = queue.api.request("POST", "/api/v1/me/responses/bulk", json={"items": items})
    for sent, outcome in zip(items, result["items"], strict=True):
        if outcome.get("error"):
            report.skipped[f"server refused the answer: {outcome['error'].get('detail')}"] += 1
            queue.passed.add(sent["record_id"])
        else:
            report.answered[queue.annotator.username] += 1


def _unanswerable(
    record: Mapping[str, Any],
    tasks: Mapping[str, ComparisonTask],
    candidates: Mapping[str, Candidate],
    queue: _Queue,
) -> str | None:
    task = tasks.get(record.get("external_id") or "")
    if task is None:
        return "record maps to no task in the workspace"
    order = queue.order(task)
    if any(c not in candidates for c in order):
        return "a candidate is no longer in the workspace"
    fields = record.get("fields") or {}
    shown = shown_responses(fields, queue.layout.k)
    if shown != [candidates[c].response for c in order]:
        return "record shows other responses than the task"
    if not queue.annotator.knows(task, [candidates[c] for c in order]):
        return f"a candidate has no {task.trait} value in the answer key"
    return None
