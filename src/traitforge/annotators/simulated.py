"""Simulated annotators: answer pending Argilla records from gold labels, with known biases.

For demos, tests and benchmarks only. Each simulated annotator logs in with its own API key
and goes through the same HTTP endpoints as a person in the web UI (its queue from
`/api/v1/me/datasets/{id}/records/search`, answers to `/api/v1/me/responses/bulk`), so the
server's task distribution, validation and progress all see ordinary annotators.

Usernames start with `SIMULATED_PREFIX` ("sim-"): a pull marks every judgement from such an
account simulated=True, so simulated votes can always be told from human ones.

Behaviour per (annotator, task), drawn from a generator seeded by (seed, username, task id),
so answers do not depend on the order in which records arrive: with probability
`position_bias` pick the first response shown; else with `length_bias` the longest; else with
`noise` a random answer; else the gold answer (random when the task's candidates lack gold).
Ratings, where gold exists, are the gold value on the trait's scale (random with `noise`).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from traitforge.annotators.argilla_backend import ArgillaAPI, StageProgress
from traitforge.annotators.records import (
    PREFERENCE,
    RANKING,
    RATIONALE,
    TIE,
    DatasetLayout,
    group_tasks,
    is_simulated,
    presented_order,
    rating_question,
    response_field,
    scale_value,
)
from traitforge.errors import TraitforgeError
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, SimulationConfig, TraitSpec
from traitforge.schemas.hashing import content_hash
from traitforge.workspace import Store

# Records fetched and answered per turn. Small, like a person working through a queue, so that
# annotators taking turns share the records instead of the first one answering everything.
PAGE = 10


class Account(Protocol):
    """An annotator's login: the embedded server's accounts fit."""

    @property
    def username(self) -> str: ...

    @property
    def api_key(self) -> str: ...


def gold_rating(trait: TraitSpec, gold: float) -> int:
    """A gold value as a point on the trait's scale: values in [0, 1] (booleans, shares)
    are spread over the scale, others are taken as scale points and clamped."""
    if 0.0 <= gold <= 1.0:
        return scale_value(trait, gold)
    return int(min(max(round(gold), trait.scale.min), trait.scale.max))


class SimulatedAnnotator:
    """Answers one task as one simulated annotator would; no I/O."""

    def __init__(
        self, username: str, config: SimulationConfig, traits: Mapping[str, TraitSpec]
    ) -> None:
        if not is_simulated(username):
            raise ValueError(
                f"simulated annotators need usernames starting with 'sim-' (got {username!r}), "
                "so that their answers are marked simulated when pulled"
            )
        self.username = username
        self.config = config
        self.traits = traits

    def answer(
        self,
        task: ComparisonTask,
        order: Sequence[str],
        candidates: Mapping[str, Candidate],
        layout: DatasetLayout,
    ) -> tuple[dict[str, dict[str, Any]], str]:
        """(Argilla response values, the behaviour that produced the preference)."""
        rng = random.Random(content_hash(self.config.seed, self.username, task.id))
        members = [candidates[c] for c in order]
        trait = self.traits[task.trait]
        gold = [c.gold.get(task.trait) for c in members]
        # scores: higher is preferred; equal scores are a tie
        if rng.random() < self.config.position_bias:
            why, scores = "position", [-float(i) for i in range(len(members))]
        elif rng.random() < self.config.length_bias:
            why, scores = "length", [float(len(c.response)) for c in members]
        elif rng.random() < self.config.noise or any(g is None for g in gold):
            why = "noise" if all(g is not None for g in gold) else "no gold"
            scores = [rng.random() for _ in members]
        else:
            why, scores = "gold", [trait.preference(float(g)) for g in gold if g is not None]
        values: dict[str, dict[str, Any]] = {}
        if layout.k == 2:
            label = TIE if scores[0] == scores[1] else ("A" if scores[0] > scores[1] else "B")
            values[PREFERENCE] = {"value": label}
        else:
            distinct = sorted(set(scores), reverse=True)
            values[RANKING] = {
                "value": [
                    {"value": response_field(i), "rank": distinct.index(s) + 1}
                    for i, s in enumerate(scores)
                ]
            }
        asked = {t for t in (task.trait, *task.rated_traits) if t in layout.rated_traits}
        for name in sorted(asked):
            spec = self.traits[name]
            for i, candidate in enumerate(members):
                if name not in candidate.gold:
                    continue
                rating = gold_rating(spec, candidate.gold[name])
                if rng.random() < self.config.noise:
                    rating = rng.randint(spec.scale.min, spec.scale.max)
                values[rating_question(name, i)] = {"value": rating}
        values[RATIONALE] = {"value": f"simulated answer ({why})"}
        return values, why


@dataclass
class SimulationReport:
    url: str
    answered: Counter[str] = field(default_factory=Counter)  # username -> responses submitted
    behaviour: Counter[str] = field(default_factory=Counter)  # gold / position / length / noise
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records not answered
    datasets: list[str] = field(default_factory=list)


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
) -> SimulationReport:
    """Every account answers its pending records of the workspace's datasets, taking turns
    page by page, so the server's task distribution spreads records over all of them."""
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
            return username in _assigned(task_id, usernames, argilla.min_submitted, seed)

        return assigned

    seed = config.annotation.simulation.seed
    apis = [ArgillaAPI(api_url, a.api_key, argilla.retries) for a in accounts]
    try:
        queues = []
        for account, api in zip(accounts, apis, strict=True):
            annotator = SimulatedAnnotator(account.username, config.annotation.simulation, traits)
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
        total = sum(len(groups[n]) for n in report.datasets) * argilla.min_submitted
        while any(not q.done for q in queues):
            for queue in queues:
                if not queue.done:
                    _answer_page(queue, tasks, candidates, report)
                    if progress:
                        progress("simulate", sum(report.answered.values()), total)
    finally:
        for api in apis:
            api.close()
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


def _assigned(task_id: str, usernames: Sequence[str], needed: int, seed: int) -> list[str]:
    """The `needed` simulated annotators who answer a task: a hash-ordered draw."""
    return sorted(usernames, key=lambda u: content_hash(seed, "assign", task_id, u))[:needed]


def _answer_page(
    queue: _Queue,
    tasks: Mapping[str, ComparisonTask],
    candidates: Mapping[str, Candidate],
    report: SimulationReport,
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
            report.skipped[reason] += 1
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
    shown = [fields.get(response_field(i)) for i in range(queue.layout.k)]
    if shown != [candidates[c].response for c in order]:
        return "record shows other responses than the task"
    return None
