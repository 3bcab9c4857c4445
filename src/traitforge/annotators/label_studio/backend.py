"""Label Studio as an annotation backend: push, pull, progress and simulation."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from traitforge.annotators.backends import (
    SIMULATED_PREFIX,
    AnnotationUI,
    DatasetProgress,
    PullReport,
    PushReport,
    SimulationReport,
)
from traitforge.annotators.label_studio.projects import project_groups, push_stage
from traitforge.annotators.label_studio.pull import progress as project_progress
from traitforge.annotators.label_studio.pull import pull
from traitforge.annotators.label_studio.push import push
from traitforge.annotators.label_studio.server import ServerPaths, label_studio_connection
from traitforge.annotators.label_studio.simulate import simulate
from traitforge.workspace import Store, Workspace

if TYPE_CHECKING:
    from traitforge.annotators.answer_key import AnswerKey
    from traitforge.curation.progress import StageProgress


class LabelStudioBackend:
    """An `AnnotationBackend` on the workspace's Label Studio: its own server (started on
    demand), or the one named by LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY (see
    `label_studio_connection`). Settings: annotation.label_studio."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.config = workspace.config

    @property
    def overlap(self) -> int:
        return self.config.annotation.label_studio.min_submitted

    def serve(self) -> AnnotationUI:
        connection = label_studio_connection(self.workspace)
        paths = ServerPaths.of(self.workspace)
        # Label Studio's annotators sign up through an invite link, so the owner's file of
        # traitforge's own server is the only login traitforge writes.
        owner = None if connection.external else paths.credentials
        return AnnotationUI(url=connection.url, owner_login=owner, annotator_logins=None)

    def push(self, store: Store, progress: StageProgress | None = None) -> PushReport:
        return push(store, self.config, label_studio_connection(self.workspace), progress)

    def pull(self, store: Store, progress: StageProgress | None = None) -> PullReport:
        return pull(store, self.config, label_studio_connection(self.workspace), progress)

    def pushed_datasets(self, store: Store) -> list[str]:
        names = project_groups(store.tasks(), self.config)
        return [n for n in names if store.done_keys(push_stage(n))]

    def progress(
        self, datasets: Sequence[str], tasks: Collection[str] | None = None
    ) -> list[DatasetProgress]:
        connection = label_studio_connection(self.workspace, start=False)
        return project_progress(self.config, connection, datasets, retries=0, tasks=tasks)

    def simulate(
        self,
        store: Store,
        annotators: int,
        progress: StageProgress | None = None,
        answers: AnswerKey | None = None,
    ) -> SimulationReport:
        connection = label_studio_connection(self.workspace)
        wanted = [f"{SIMULATED_PREFIX}{i}" for i in range(1, annotators + 1)]
        return simulate(store, self.config, connection, wanted, progress, answers)
