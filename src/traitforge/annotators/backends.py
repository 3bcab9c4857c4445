"""What every annotation backend does, and the backend-neutral records it returns.

An annotation backend is the tool people label in (Argilla today; Label Studio is to be its
peer). traitforge asks each the same things, in the terms of its own store:
- `push`: make sure the datasets the workspace's tasks belong in exist with the questions
  they need, and send every task they lack. Idempotent: a re-run sends only what is missing
  and never duplicates a task.
- `pull`: store the submitted answers as judgements, only those new or edited since the last
  pull (incremental); drafts and discarded answers are counted, never stored.
- `progress`: per dataset, records completed and pending, and each annotator's answers
  (of every record, or of one round's tasks).
- `simulate`: simulated annotators answer through the same interface as people.
- `serve`: make the annotation UI reachable and say where it is and where the logins are.

How a backend reaches its server (an embedded one, an address from the environment) is its
own business; so are its record layout and its bookkeeping in the store. Agreement and
aggregation never meet a backend: they work from the store's judgements.

Accounts whose username starts with `SIMULATED_PREFIX` are simulated annotators: every
backend's pull marks their judgements simulated=True, so no simulated vote can pass as a
human one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, assert_never

from traitforge.workspace import Store, Workspace

if TYPE_CHECKING:
    from traitforge.annotators.answer_key import AnswerKey
    from traitforge.curation.progress import StageProgress
    from traitforge.schemas import Judgement

SIMULATED_PREFIX = "sim-"


def is_simulated(username: str) -> bool:
    return username.startswith(SIMULATED_PREFIX)


@dataclass
class DatasetPush:
    dataset: str
    tasks: int = 0
    present: int = 0  # already on the server before this push
    sent: int = 0
    without_vector: int = 0  # sent without a prompt vector (no "find similar" for them)


@dataclass
class PushReport:
    url: str
    datasets: list[DatasetPush] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> tasks not pushed

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.datasets)


@dataclass
class PullReport:
    url: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    withdrawn: int = 0  # judgements removed: their answers were discarded after a pull
    ignored: Counter[str] = field(default_factory=Counter)  # draft / discarded responses
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> responses not stored
    missing_datasets: list[str] = field(default_factory=list)
    by_dataset: dict[str, int] = field(default_factory=dict)  # judgements written


@dataclass
class DatasetProgress:
    dataset: str
    records: int
    completed: int
    pending: int
    annotators: dict[str, Counter[str]]  # username -> {"submitted": n, "draft": n, ...}


@dataclass
class SimulationReport:
    url: str
    answered: Counter[str] = field(default_factory=Counter)  # username -> responses submitted
    # gold (or answer key) / position / length / noise
    behaviour: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> records not answered
    datasets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnnotationUI:
    """Where people annotate: the web UI, and the files holding the logins (mode 0600);
    None where traitforge wrote no such file (an existing server keeps its own accounts)."""

    url: str
    owner_login: Path | None
    annotator_logins: Path | None


class AnnotationBackend(Protocol):
    """An annotation tool, as traitforge uses it (see the module docstring)."""

    @property
    def overlap(self) -> int:
        """Annotators who answer each task: a task is complete with that many answers."""
        ...

    def serve(self) -> AnnotationUI:
        """The annotation UI, reachable (started if the backend runs one of its own)."""
        ...

    def push(self, store: Store, progress: StageProgress | None = None) -> PushReport:
        """Every task of the store that its dataset lacks, sent; datasets made as needed."""
        ...

    def pull(self, store: Store, progress: StageProgress | None = None) -> PullReport:
        """New and edited submitted answers, stored as judgements."""
        ...

    def pushed_datasets(self, store: Store) -> list[str]:
        """The datasets this workspace has pushed tasks to, read from the store alone."""
        ...

    def progress(
        self, datasets: Sequence[str], tasks: Collection[str] | None = None
    ) -> list[DatasetProgress]:
        """Progress of each of `datasets` the backend holds (others are left out), counting
        only the records of `tasks` when given; a record is complete with `overlap`
        submitted answers. Quick and read-only: starts nothing and does not retry; raises
        TraitforgeError when the backend cannot be reached."""
        ...

    def simulate(
        self,
        store: Store,
        annotators: int,
        progress: StageProgress | None = None,
        answers: AnswerKey | None = None,
    ) -> SimulationReport:
        """`annotators` simulated accounts (sim-1, sim-2, ...; created when missing) answer
        their pending tasks, per annotation.simulation: from gold, or from `answers`, leaving
        the tasks it lacks unanswered."""
        ...


def store_judgement_page(store: Store, stage: str, page: Sequence[tuple[str, Judgement]]) -> int:
    """Write a pulled page of (watermark key, judgement): judgements and their watermark
    commit together, so a killed pull re-reads the rest. Returns the judgements written."""
    if not page:
        return 0
    with store.transaction():
        store.put_judgements(j for _, j in page)
        store.mark_done(stage, (key for key, _ in page))
    return len(page)


def backend_for(workspace: Workspace) -> AnnotationBackend:
    """The backend that annotation.backend names, for this workspace."""
    name = workspace.config.annotation.backend
    if name == "argilla":
        from traitforge.annotators.argilla import ArgillaBackend

        return ArgillaBackend(workspace)
    if name == "label-studio":
        from traitforge.annotators.label_studio.backend import LabelStudioBackend

        return LabelStudioBackend(workspace)
    assert_never(name)
