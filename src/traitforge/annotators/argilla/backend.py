"""Argilla as an annotation backend: push, pull, progress and simulation with its connection."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from traitforge.annotators import server
from traitforge.annotators.argilla.datasets import dataset_names
from traitforge.annotators.argilla.progress import progress as dataset_progress
from traitforge.annotators.argilla.pull import pull
from traitforge.annotators.argilla.push import prompt_vectors, push, push_stage
from traitforge.annotators.argilla.simulate import simulate
from traitforge.annotators.backends import (
    SIMULATED_PREFIX,
    AnnotationUI,
    DatasetProgress,
    PullReport,
    PushReport,
    SimulationReport,
)
from traitforge.workspace import Store, Workspace

if TYPE_CHECKING:
    from traitforge.annotators.answer_key import AnswerKey
    from traitforge.curation.progress import StageProgress


class ArgillaBackend:
    """An `AnnotationBackend` on the workspace's Argilla: its embedded server (started on
    demand), or the one named by ARGILLA_API_URL / ARGILLA_API_KEY (see
    `traitforge.annotators.server.owner_connection`). Settings: annotation.argilla."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.config = workspace.config

    @property
    def overlap(self) -> int:
        return self.config.annotation.argilla.min_submitted

    def serve(self) -> AnnotationUI:
        connection = server.owner_connection(self.workspace)
        return AnnotationUI(
            url=connection.api_url,
            owner_login=None
            if connection.external
            else server.ServerPaths.of(self.workspace).credentials,
            annotator_logins=server.annotators_file(self.workspace),
        )

    def push(self, store: Store, progress: StageProgress | None = None) -> PushReport:
        connection = server.owner_connection(self.workspace)
        vectors = prompt_vectors(self.config, self.workspace.embedding_cache_path)
        return push(store, self.config, connection, vectors, progress)

    def pull(self, store: Store, progress: StageProgress | None = None) -> PullReport:
        return pull(store, self.config, server.owner_connection(self.workspace), progress)

    def pushed_datasets(self, store: Store) -> list[str]:
        return [n for n in dataset_names(store, self.config) if store.done_keys(push_stage(n))]

    def progress(
        self, datasets: Sequence[str], tasks: Collection[str] | None = None
    ) -> list[DatasetProgress]:
        connection = server.owner_connection(self.workspace, start=False)
        return dataset_progress(self.config, connection, datasets, retries=0, tasks=tasks)

    def simulate(
        self,
        store: Store,
        annotators: int,
        progress: StageProgress | None = None,
        answers: AnswerKey | None = None,
    ) -> SimulationReport:
        connection = server.owner_connection(self.workspace)
        wanted = [f"{SIMULATED_PREFIX}{i}" for i in range(1, annotators + 1)]
        # Idempotent: creates the missing accounts and repairs any the server lost (a replaced
        # database), so every key below works.
        accounts = server.add_annotators(self.workspace, wanted)
        return simulate(store, self.config, connection.api_url, accounts, progress, answers)
