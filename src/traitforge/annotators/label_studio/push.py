"""Push: send a workspace's comparison tasks to Label Studio, one copy per annotator slot.

Idempotent, also after a kill at any point: Label Studio has no external ids, so each copy
carries its own `traitforge_id` in its data, and a push first lists the ids the project holds
and imports only the rest. One import request is committed by the server as a whole, so a
killed push leaves whole batches; ids found on the server are marked pushed in the store
(`push_stage`) even when the run that sent them died before recording it. The order each task
shows its candidates in is stored before its copies are sent, so a pull always finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from traitforge.annotators.backends import DatasetPush, PushReport
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.annotators.label_studio.projects import (
    copies,
    ensure_project,
    project_groups,
    project_labeling,
    push_stage,
    task_keys,
)
from traitforge.annotators.label_studio.server import Connection
from traitforge.annotators.label_studio.tasks import TASK_ID, TaskPayload, external_id, task_payload
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, TraitSpec
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress


def queue_position(task: ComparisonTask) -> tuple[int, str]:
    """Earlier rounds first, then by task id (a hash: the order tells nothing of gold)."""
    return (task.round, task.id)


def push(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    progress: StageProgress | None = None,
) -> PushReport:
    """Send every task copy its project lacks; see the module docstring."""
    traits = {t.name: t for t in config.traits}
    candidates = {c.id: c for c in store.candidates()}
    report = PushReport(url=connection.url)
    groups = project_groups(store.tasks(), config)
    with LabelStudioAPI.connect(connection, config.annotation.label_studio.retries) as api:
        remote = api.projects() if groups else {}
        for name, tasks in groups.items():
            usable = []
            for task in tasks:
                if all(c in candidates for c in task.candidate_ids):
                    usable.append(task)
                else:
                    report.skipped["a candidate is no longer in the workspace"] += 1
            if usable:
                report.datasets.append(
                    _push_project(
                        api, config, traits, candidates, usable, remote.get(name), store, progress
                    )
                )
    return report


def _push_project(
    api: LabelStudioAPI,
    config: ProjectConfig,
    traits: Mapping[str, TraitSpec],
    candidates: Mapping[str, Candidate],
    tasks: list[ComparisonTask],
    existing: Mapping[str, Any] | None,
    store: Store,
    progress: StageProgress | None,
) -> DatasetPush:
    settings = config.annotation.label_studio
    labeling = project_labeling(tasks, config, traits)
    name = labeling.layout.name
    result = DatasetPush(dataset=name, tasks=len(tasks))
    names = copies(settings.min_submitted)
    on_server: set[str] = set()
    if existing is not None:
        on_server = {key for t in api.tasks(int(existing["id"])) if (key := task_keys(t)[0])}
    missing = {t.id: [c for c in names if external_id(t.id, c) not in on_server] for t in tasks}
    todo = sorted((t for t in tasks if missing[t.id]), key=queue_position)
    result.present = len(tasks) - len(todo)
    label = f"push {name}"
    if progress:
        progress(label, result.present, len(tasks))
    wanted = {external_id(t.id, c) for t in tasks for c in names}
    with store.transaction():
        store.mark_done(push_stage(name), (wanted & on_server) - store.done_keys(push_stage(name)))
    project_id = ensure_project(api, labeling, existing)
    if not todo:
        return result
    done = result.present
    for start in range(0, len(todo), settings.batch_size):
        batch = todo[start : start + settings.batch_size]
        payloads: list[TaskPayload] = [
            task_payload(task, candidates, traits, labeling, copy)
            for task in batch
            for copy in missing[task.id]
        ]
        # Every copy of a task shows the same order; stored before the copies exist.
        with store.transaction():
            store.record_presented(name, {p.data[TASK_ID]: p.order for p in payloads})
        api.import_tasks(project_id, [p.as_import() for p in payloads])
        with store.transaction():
            store.mark_done(push_stage(name), [p.external_id for p in payloads])
        done += len(batch)
        result.sent += len(batch)
        if progress:
            progress(label, done, len(tasks))
    return result
