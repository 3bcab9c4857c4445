"""The Label Studio project behind each group of tasks, and the task copies that give overlap.

Projects are grouped as Argilla's datasets are (one per task trait and k; the title is
annotation.label_studio.project with {trait} and {k} filled), with the labeling config of
`traitforge.annotators.label_studio.labeling`.

Overlap: the open-source edition gives each task to one annotator (overlap is an Enterprise
feature), so each store task is pushed as `min_submitted` copies, "1", "2", ...: one per
annotator slot, each with its own `traitforge_id`. A task is complete when every copy holds a
submitted annotation. Who takes which slot is decided per task, deterministically (for
simulated annotators: `traitforge.annotators.simulated.assignees`, the i-th assignee answers
copy i); the server has no way to keep a person off a second copy of the same task, so pull
keeps one answer per annotator and task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from traitforge.annotators.label_studio.client import LabelStudioAPI, LabelStudioError
from traitforge.annotators.label_studio.labeling import LabelingConfig, labeling_config
from traitforge.annotators.label_studio.tasks import COPY, EXTERNAL_ID, TASK_ID
from traitforge.annotators.records import DatasetLayout, group_tasks
from traitforge.schemas import ComparisonTask, ProjectConfig, TraitSpec


def push_stage(project: str) -> str:
    """The store's done-stage holding the `traitforge_id`s of the task copies pushed."""
    return f"label-studio-push:{project}"


def pull_stage(project: str) -> str:
    """The store's done-stage holding '<annotation id>@<updated_at>' of pulled annotations."""
    return f"label-studio-pull:{project}"


def copies(min_submitted: int) -> list[str]:
    """The copy names of a task: one per annotator who answers it."""
    return [str(i) for i in range(1, min_submitted + 1)]


def project_groups(
    tasks: Iterable[ComparisonTask], config: ProjectConfig
) -> dict[str, list[ComparisonTask]]:
    """Tasks by project title; a template that mixes traits or sizes is refused."""
    template = config.annotation.label_studio.project
    groups = group_tasks(tasks, template)
    for name, members in groups.items():
        kinds = {(t.trait, len(t.candidate_ids)) for t in members}
        if len(kinds) > 1:
            raise LabelStudioError(
                f"annotation.label_studio.project {template!r} puts tasks of different traits "
                f"or sizes {sorted(kinds)} into one project {name!r}; the template must "
                "contain {trait} and {k}"
            )
    return groups


def project_labeling(
    tasks: list[ComparisonTask], config: ProjectConfig, traits: Mapping[str, TraitSpec]
) -> LabelingConfig:
    """The labeling config of the project holding `tasks` (one trait and k)."""
    annotation = config.annotation
    layout = DatasetLayout.for_tasks(annotation.label_studio.project, tasks, annotation.layout)
    return labeling_config(layout, traits)


def ensure_project(
    api: LabelStudioAPI, labeling: LabelingConfig, existing: Mapping[str, Any] | None
) -> int:
    """The project's id: created when missing; an existing project whose config or
    instructions differ from the generated ones gets them (Label Studio refuses, with its
    reason, a config that existing annotations do not fit)."""
    fields = {
        "label_config": labeling.xml,
        "expert_instruction": labeling.instructions,
        "show_instruction": True,
    }
    if existing is None:
        created = api.create_project({"title": labeling.layout.name, **fields})
        return int(created["id"])
    if any(existing.get(k) != v for k, v in fields.items()):
        api.update_project(int(existing["id"]), fields)
    return int(existing["id"])


def task_keys(task: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(traitforge_id, store task id, copy) of a server task; None where it lacks them."""
    data = task.get("data") or {}

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return text(EXTERNAL_ID), text(TASK_ID), text(COPY)
