"""Pull: store the annotations of a workspace's Label Studio projects as judgements; progress.

Incremental as Argilla's pull: each annotation is remembered as '<id>@<updated_at>' in the
store (`pull_stage`), written in the same transaction as its judgement, page by page, so a
re-pull writes only new or edited answers and a killed one re-reads only the rest.

Each annotation is checked against the project's labeling config
(`traitforge.annotators.label_studio.results`); what does not fit is counted in the report,
never stored. The annotator is the account in `completed_by`; the pre-annotation it started
from is its `parent_prediction`; the shown order is the store's (kept at push time), else the
deterministic shuffle it came from.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from traitforge.annotators.backends import DatasetProgress, PullReport, store_judgement_page
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.annotators.label_studio.labeling import LabelingConfig
from traitforge.annotators.label_studio.projects import (
    copies,
    project_groups,
    project_labeling,
    pull_stage,
    task_keys,
)
from traitforge.annotators.label_studio.results import collect_judgement
from traitforge.annotators.label_studio.server import Connection
from traitforge.annotators.records import presented_order
from traitforge.schemas import ComparisonTask, Judgement, ProjectConfig, TraitSpec
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress

STORE_PAGE = 500  # judgements written per store transaction


def pull(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    progress: StageProgress | None = None,
) -> PullReport:
    """Store new and edited submitted annotations of every project as judgements."""
    traits = {t.name: t for t in config.traits}
    tasks = {t.id: t for t in store.tasks()}
    groups = project_groups(tasks.values(), config)
    report = PullReport(url=connection.url)
    with LabelStudioAPI.connect(connection, config.annotation.label_studio.retries) as api:
        remote = api.projects() if groups else {}
        report.missing_datasets = sorted(set(groups) - set(remote))
        users = api.usernames() if set(groups) & set(remote) else {}
        for name in sorted(set(groups) & set(remote)):
            labeling = project_labeling(groups[name], config, traits)
            seen = store.done_keys(pull_stage(name))
            state = _PullState(
                tasks,
                store.presented_orders(name),
                labeling,
                traits,
                users,
                seen,
                {key.split("@", 1)[0] for key in seen},
            )
            written = 0
            page: list[tuple[str, Judgement]] = []
            for done, server_task in enumerate(api.tasks(int(remote[name]["id"])), 1):
                page += state.judgements(server_task, report)
                if len(page) >= STORE_PAGE:
                    written += store_judgement_page(store, pull_stage(name), page)
                    page = []
                if progress:
                    progress(f"pull {name}", done, len(groups[name]) * _copies(config))
            written += store_judgement_page(store, pull_stage(name), page)
            report.by_dataset[name] = written
    return report


def _copies(config: ProjectConfig) -> int:
    return config.annotation.label_studio.min_submitted


class _PullState:
    """What turning one project's annotations into judgements needs."""

    def __init__(
        self,
        tasks: Mapping[str, ComparisonTask],
        orders: Mapping[str, Sequence[str]],
        labeling: LabelingConfig,
        traits: Mapping[str, TraitSpec],
        users: Mapping[int, str],
        seen: set[str],
        seen_ids: set[str],
    ) -> None:
        self.tasks = tasks
        self.orders = orders
        self.labeling = labeling
        self.traits = traits
        self.users = users
        self.seen = seen
        self.seen_ids = seen_ids
        # (task id, annotator) answered in this pull: a person who answered two copies of
        # one task gives one judgement (their id is per task and annotator).
        self.answered: set[tuple[str, str]] = set()

    def judgements(
        self, server_task: Mapping[str, Any], report: PullReport
    ) -> list[tuple[str, Judgement]]:
        out: list[tuple[str, Judgement]] = []
        _, task_id, _ = task_keys(server_task)
        task = self.tasks.get(task_id or "")
        predictions = {p.get("id"): p.get("result") for p in server_task.get("predictions") or []}
        for annotation in server_task.get("annotations") or []:
            key = f"{annotation.get('id')}@{annotation.get('updated_at')}"
            if key in self.seen:
                report.unchanged += 1
                continue
            if task is None:
                report.dropped["annotation of a task that maps to no task in the workspace"] += 1
                continue
            user = annotation.get("completed_by")
            username = self.users.get(user) if isinstance(user, int) else None
            if username is None:
                report.dropped["annotation by a user the server no longer lists"] += 1
                continue
            if not annotation.get("was_cancelled") and (task.id, username) in self.answered:
                report.dropped["a second answer by the same annotator (another copy)"] += 1
                continue
            order = list(self.orders.get(task.id) or presented_order(task))
            judgement = collect_judgement(
                task,
                order,
                annotation,
                username,
                self.labeling,
                self.traits,
                report,
                predictions.get(annotation.get("parent_prediction")),
            )
            if judgement is None:
                continue
            self.answered.add((task.id, username))
            if str(annotation.get("id")) in self.seen_ids:
                report.changed += 1
            else:
                report.new += 1
            out.append((key, judgement))
        return out


def progress(
    config: ProjectConfig,
    connection: Connection,
    names: Sequence[str],
    retries: int | None = None,
    tasks: Collection[str] | None = None,
) -> list[DatasetProgress]:
    """Per project: store tasks (only `tasks`, when given), completed (every copy answered)
    and pending, and per annotator the annotations by status. Projects not on the server are
    left out."""
    settings = config.annotation.label_studio
    out = []
    with LabelStudioAPI.connect(
        connection, settings.retries if retries is None else retries
    ) as api:
        remote = api.projects()
        present = [n for n in names if n in remote]
        users = api.usernames() if present else {}
        for name in present:
            server_tasks = api.tasks(int(remote[name]["id"]))
            out.append(count_progress(name, server_tasks, settings.min_submitted, users, tasks))
    return out


def count_progress(
    project: str,
    server_tasks: Iterable[Mapping[str, Any]],
    min_submitted: int,
    users: Mapping[int, str],
    tasks: Collection[str] | None = None,
) -> DatasetProgress:
    """One project's progress from its task copies with their annotations: a store task is
    complete when each of its `min_submitted` copies holds a submitted annotation (a skipped
    one counts as "discarded", as in Argilla)."""
    annotators: dict[str, Counter[str]] = {}
    answered: dict[str, set[str]] = {}  # store task id -> its copies answered
    for server_task in server_tasks:
        _, task_id, copy = task_keys(server_task)
        if task_id is None or (tasks is not None and task_id not in tasks):
            for annotation in server_task.get("annotations") or []:
                annotators.setdefault(_user(annotation, users), Counter())
            continue
        answered.setdefault(task_id, set())
        for annotation in server_task.get("annotations") or []:
            status = "discarded" if annotation.get("was_cancelled") else "submitted"
            annotators.setdefault(_user(annotation, users), Counter())[status] += 1
            if status == "submitted":
                answered[task_id].add(copy or "")
    wanted = set(copies(min_submitted))
    complete = sum(wanted <= done for done in answered.values())
    return DatasetProgress(
        dataset=project,
        records=len(answered),
        completed=complete,
        pending=len(answered) - complete,
        annotators=annotators,
    )


def _user(annotation: Mapping[str, Any], users: Mapping[int, str]) -> str:
    user = annotation.get("completed_by")
    return users.get(user, str(user)) if isinstance(user, int) else str(user)
