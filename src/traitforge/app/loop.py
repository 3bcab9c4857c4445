"""The closed loop: rounds of select -> push -> annotate -> pull -> export -> train -> use-model.

Round 1 selects with the trait classifiers; with an epistemic strategy (the default
`decisive.v1`), every later round fits an ensemble of preference models to all the answers so
far, ties included, and also has the reward model that the previous round trained as a scorer.
Each round's record (W/rounds/<n>/round.json) lists the steps done; every
step is idempotent on its own (curate counts the round's tasks, push/pull skip what is done,
training writes its folder atomically), so a loop killed anywhere continues where it was.

A round whose selection finds no task (no open prompt left, or nothing scores above chance)
stops the loop with that reason instead of retraining on the same pairs; see `run`.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from traitforge.app import workflows
from traitforge.errors import TraitforgeError
from traitforge.reporting import fmt_counts
from traitforge.schemas import LoopRound, ProjectConfig
from traitforge.schemas.loop import STEPS
from traitforge.workspace import Workspace, workspace_lock
from traitforge.workspace.files import atomic_write_text
from traitforge.workspace.lock import LOOP_LOCK_FILE, lock_released

if TYPE_CHECKING:
    from traitforge.annotators.answer_key import AnswerKey
    from traitforge.annotators.backends import DatasetProgress
    from traitforge.app.held_out import HeldOutPairs
    from traitforge.app.report import WorkspaceReportData
    from traitforge.curation.ingest import IngestReport
    from traitforge.curation.progress import StageProgress
    from traitforge.reward.pairs import RewardPair

Log = Callable[[str], None]
REPORT_FILE = "report.html"


@dataclass(frozen=True)
class WaitState:
    """The people's progress on one round's records, as the loop waiting for them sees it."""

    round: int
    records: int  # this round's records on the server (not the dataset's, which holds all rounds)
    complete: int  # of them, those with the backend's overlap of submitted answers
    needed: int  # complete records the round goes on with: loop.wait_share of `records`
    # username -> (answers submitted to this round's records, an equal share of those needed)
    annotators: dict[str, tuple[int, int]]

    @property
    def done(self) -> bool:
        return self.complete >= self.needed

    def line(self) -> str:
        """The state as one line, for output that is not a terminal."""
        text = (
            f"round {self.round}: {self.complete} of {self.records} records complete "
            f"({self.needed} needed)"
        )
        if self.annotators:
            text += "; submitted: " + ", ".join(
                f"{user} {n} of {share}" for user, (n, share) in self.annotators.items()
            )
        return text


class WaitProgress(Protocol):
    """Told the state at every poll while the loop waits for people (also when unchanged,
    so a live display can keep its clock running)."""

    def __call__(self, state: WaitState) -> None: ...


@dataclass
class LoopResult:
    rounds: list[LoopRound]
    dataset: Path
    model: Path | None
    report: Path


def rounds_dir(workspace: Workspace) -> Path:
    return workspace.root / "rounds"


def round_file(workspace: Workspace, number: int) -> Path:
    return rounds_dir(workspace) / str(number) / "round.json"


def load_rounds(workspace: Workspace) -> list[LoopRound]:
    folder = rounds_dir(workspace)
    if not folder.is_dir():
        return []
    numbers = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    return [
        LoopRound.model_validate_json(round_file(workspace, n).read_text(encoding="utf-8"))
        for n in numbers
        if round_file(workspace, n).is_file()
    ]


def _save(workspace: Workspace, record: LoopRound) -> None:
    atomic_write_text(round_file(workspace, record.round), record.model_dump_json(indent=2))


def run(
    workspace: Workspace,
    rounds: int,
    budget: int,
    simulate: int | None,
    log: Log = print,
    progress: StageProgress | None = None,
    waiting: WaitProgress | None = None,
    answers: AnswerKey | None = None,
) -> LoopResult:
    """Run rounds 1..`rounds`, continuing any that a previous run left unfinished.
    `simulate`: that many simulated annotators answer (from gold, or from `answers`); None
    waits for people, telling `waiting` their progress (without it, `log` gets a line per
    change).

    A round that selects no task is stopped: it records why, trains nothing (the previous
    round's model stays in use) and no round runs after it. Running the loop again repeats
    the reason and does no work, unless what selection reads has changed since (candidates
    ingested or generated, judgements pulled, the curation config edited): then the stopped
    round is selected again from its start, which is what a user who followed the reason's
    advice expects; if it still finds nothing it stops again."""
    # One loop at a time, and no push, pull or simulate beside it but while it waits for
    # people (see `_Round.annotate`); its own steps re-enter the lock.
    with (
        workspace_lock(workspace.root, "loop", LOOP_LOCK_FILE),
        workspace_lock(workspace.root, "loop"),
    ):
        existing = {r.round: r for r in load_rounds(workspace)}
        records = []
        for number in range(1, rounds + 1):
            record = existing.get(number) or LoopRound(round=number)
            if record.stopped and (now := _selection_inputs(workspace)) != record.stopped_inputs:
                log(
                    f"round {number}: selecting again, as its inputs changed since it stopped "
                    f"(then {record.stopped_inputs}; now {now})"
                )
                record = LoopRound(round=number)
            _Round(workspace, record, budget, simulate, log, progress, waiting, answers).run()
            records.append(record)
            if record.stopped:
                break  # a later round would select from the same pool
        report = write_reports(workspace, records)
    return LoopResult(
        rounds=records,
        dataset=workspace.exports_dir / "latest",
        model=next((Path(r.model) for r in reversed(records) if r.model), None),
        report=report,
    )


class _Round:
    def __init__(
        self,
        workspace: Workspace,
        record: LoopRound,
        budget: int,
        simulate: int | None,
        log: Log,
        progress: StageProgress | None,
        waiting: WaitProgress | None,
        answers: AnswerKey | None = None,
    ) -> None:
        self.workspace = workspace
        self.config: ProjectConfig = workspace.config
        self.record = record
        self.budget = budget
        self.simulate = simulate
        self.log = log
        self.progress = progress
        self.waiting = waiting
        self.answers = answers
        self.folder = round_file(workspace, record.round).parent

    @cached_property
    def gold_test(self) -> list[RewardPair]:
        """Held-out gold pairs, built once per round for training's and the report's use."""
        from traitforge.exports.labels import held_out_gold
        from traitforge.reward.pairs import from_preference_pairs

        with self.workspace.store() as store:
            return from_preference_pairs(held_out_gold(store, self.config))

    @cached_property
    def held_out(self) -> HeldOutPairs:
        """The pairs loop.evaluate_on names, all of the export's test prompts."""
        from traitforge.app.held_out import choose_held_out
        from traitforge.reward.pairs import load_splits

        test = load_splits(self.workspace.exports_dir / "latest").get("test", [])
        mode = self.config.loop.evaluate_on
        return choose_held_out(mode, lambda: self.gold_test, test, self._keep)

    def _keep(self, pair: RewardPair) -> bool:
        """The pairs the loop's reward model learns from (loop.train_on)."""
        return self.config.loop.train_on == "all" or pair.origin == "judgements"

    def run(self) -> None:
        steps = {
            "select": self.select,
            "push": lambda: workflows.push(self.workspace, self.progress),
            "annotate": self.annotate,
            "pull": lambda: workflows.pull(self.workspace, self.progress),
            "export": self.export,
            "train": self.train,
            "use-model": self.use_model,
            "report": self.report,
        }
        for name in STEPS:
            if name in self.record.completed:
                continue
            if self.record.stopped and name != "report":
                continue  # nothing selected: nothing to push, and no new pair to train on
            self.log(f"round {self.record.round}: {name}")
            started = time.perf_counter()
            steps[name]()
            self.record.seconds[name] = round(time.perf_counter() - started, 2)
            self.record.completed.append(name)
            _save(self.workspace, self.record)
        if self.record.stopped:
            self.log(f"round {self.record.round}: stopped: {self.record.stopped}")

    def select(self) -> None:
        report = workflows.curate(self.workspace, self.budget, self.record.round, self.progress)
        with self.workspace.store() as store:
            tasks = [t for t in store.tasks() if t.round == self.record.round]
            judgements = store.counts()["judgements"]
        self.record.tasks = len(tasks)
        self.record.selected_with = sorted({k.split("/")[0] for k in report.scored})
        self.record.strategy = self.config.curation.selection.strategy
        self.record.acquisition = report.acquisition
        self.record.warnings = list(report.warnings)
        notes = [*report.scoring_notes]
        if report.rechecks is not None:
            notes.append(report.rechecks.summary())
        for line in [*notes, *(f"warning: {w}" for w in report.warnings)]:
            self.log(f"round {self.record.round}: {line}")
        if tasks and report.selection_note:
            self.log(
                f"round {self.record.round}: {len(tasks)} of {self.budget} tasks: "
                f"{report.selection_note}"
            )
        if not tasks:
            self.record.stopped = report.selection_note or "the selection found no task"
            self.record.stopped_inputs = _selection_inputs(self.workspace)
            self.record.judgements_total = judgements  # no export runs to count them

    def annotate(self) -> None:
        if self.simulate is not None:
            report = workflows.simulate(self.workspace, self.simulate, self.progress, self.answers)
            if report.skipped:
                counts = fmt_counts(dict(report.skipped), item="{n} ({name})")
                self.log(f"round {self.record.round}: records not answered: {counts}")
            return
        # Waiting only reads the server: meanwhile other commands may pull or simulate.
        with lock_released(self.workspace.root, "loop", self.log):
            self._wait_for_people()

    def _wait_for_people(self) -> None:
        from traitforge.annotators.backends import backend_for

        loop = self.config.loop
        overlap = backend_for(self.workspace).overlap
        self.log(
            f"round {self.record.round}: waiting for people: the round goes on once "
            f"loop.wait_share ({loop.wait_share:g}) of its records have {overlap} submitted "
            f"answers each (checking every {loop.poll_seconds:g} s; Ctrl-C stops, re-run "
            "continues)"
        )
        last = None
        while True:
            progress = workflows.annotation_progress(self.workspace, self.record.round)
            if isinstance(progress, str):
                raise TraitforgeError(f"cannot read annotation progress: {progress}")
            state = wait_state(self.record.round, progress, loop.wait_share, overlap)
            if self.waiting:
                self.waiting(state)
            elif state != last:
                self.log(state.line())
            last = state
            if state.done:
                return
            time.sleep(loop.poll_seconds)

    def export(self) -> None:
        report = workflows.export(self.workspace)
        self.record.pairs = {t: sum(c.values()) for t, c in report.counts.items()}
        self.record.pair_origins = dict(report.origins)
        self.record.drops = dict(report.drops)
        self.record.ties = dict(report.ties)
        self.record.agreement = report.agreement.rounded() if report.agreement else None
        self.record.length_position = report.length_position
        with self.workspace.store() as store:
            self.record.judgements_total = sum(1 for _ in store.judgements())

    def train(self) -> None:
        from traitforge.reward.pairs import load_splits
        from traitforge.reward.runs import train_run
        from traitforge.reward.training import SHARED, plan

        data = self.workspace.exports_dir / "latest"
        settings = self.config.reward
        kept = [p for p in load_splits(data).get("train", []) if self._keep(p)]
        groups = plan(kept, settings.models, settings.min_pairs).groups if kept else {}
        if not groups:
            self.record.evaluation_note = (
                f"no reward model yet: {len(kept)} training pairs, no trait with "
                f"reward.min_pairs ({settings.min_pairs}); annotate more prompts or lower "
                "reward.min_pairs"
            )
            self.log(f"round {self.record.round}: {self.record.evaluation_note}")
            return
        traits = None if SHARED in groups else set(groups)  # a shared model scores every pair
        held_out = self.held_out
        self.record.evaluated_on = held_out.counts(traits)
        self.record.evaluation_note = held_out.note(traits)
        if self.record.evaluated_on:
            used = ", ".join(f"{name} ({n} pairs)" for name, n in self.record.evaluated_on.items())
            self.log(f"round {self.record.round}: evaluating on {used}")
        out = self.folder / "model"
        earlier = round_file(self.workspace, self.record.round - 1).parent / "model"
        run = train_run(
            data,
            out,
            settings,
            self.log,
            keep=self._keep,
            test=held_out.pairs,
            home=rounds_dir(self.workspace),
            progress=self.progress,
            no_test=self.record.evaluation_note,
            start_from=earlier if settings.warm_start else None,  # missing: a fresh start
            vectors=self.workspace.embedding_cache_path,
        )
        self.record.model = str(out)
        self.record.training = {f.name: f.training_summary() for f in run.fits}
        self.record.evaluation = run.evaluation
        if run.evaluation is None:
            if self.record.evaluated_on:  # test pairs there, but none a model could order
                self.record.evaluation_note = run.not_evaluated
            self.record.evaluated_on = {}

    def use_model(self) -> None:
        """Point the workspace at this round's model: the next round's `curate` scores the
        open candidates with it (cached per model), so nothing is scored that no round uses."""
        from traitforge.reward.scorer import point_to_model

        if self.record.model:
            point_to_model(self.workspace.reward_dir, Path(self.record.model))

    def report(self) -> None:
        from traitforge.reward.model import read_manifest
        from traitforge.reward.runs import matrix_run

        model = Path(self.record.model) if self.record.model else None
        if model and read_manifest(model).get("kind") == "set":
            test = self.held_out.pairs
            if test:
                self.record.matrix = matrix_run(
                    model, test, self.config.reward, self.workspace.embedding_cache_path
                )
        rounds = [r for r in load_rounds(self.workspace) if r.round < self.record.round]
        write_reports(self.workspace, [*rounds, self.record], self.record.round)


def _selection_inputs(workspace: Workspace) -> str:
    """What a stopped round's selection read that can change: candidates and judgements
    (only ever added) and the curation config."""
    with workspace.store() as store:
        counts = store.counts()
    # Without the engine: local and Ray select the same tasks from the same inputs.
    curation = workspace.config.curation.model_dump_json(exclude={"engine"})
    digest = hashlib.sha256(curation.encode()).hexdigest()
    return (
        f"{counts['candidates']} candidates, {counts['judgements']} judgements, "
        f"curation config {digest[:12]}"
    )


def wait_state(
    number: int, progress: Sequence[DatasetProgress], wait_share: float, overlap: int
) -> WaitState:
    """Round `number`'s state from the backend's progress of its records (every dataset's
    counts cover only this round's records): records complete of those on the server, how
    many are needed, and each annotator's submitted answers against an equal share of the
    answers needed (`overlap` for each needed record)."""
    records = sum(d.records for d in progress)
    needed = math.ceil(wait_share * records)
    submitted: Counter[str] = Counter()
    for dataset in progress:
        for user, statuses in dataset.annotators.items():
            submitted[user] += statuses.get("submitted", 0)
    share = math.ceil(needed * overlap / len(submitted)) if submitted else 0
    return WaitState(
        round=number,
        records=records,
        complete=sum(d.completed for d in progress),
        needed=needed,
        annotators={user: (n, share) for user, n in sorted(submitted.items())},
    )


def report_data(workspace: Workspace, records: list[LoopRound]) -> WorkspaceReportData:
    """What the workspace report shows, read from the store and the round records."""
    from traitforge.app.report import WorkspaceReportData

    with workspace.store() as store:
        counts = store.counts()
        answered = len({j.task_id for j in store.judgements()})
        distributions: dict[str, list[float]] = {}
        for s in store.scores():
            if s.probability is not None:
                distributions.setdefault(f"{s.scorer}/{s.trait}", []).append(s.probability)
    last = next((r for r in reversed(records) if not r.stopped), None)  # the last export
    agreement = last.agreement if last else None
    if agreement is None:
        found = workflows.agreement(workspace)
        agreement = found.rounded() if found else None
    return WorkspaceReportData(
        workspace=str(workspace.root),
        counts={
            "ingested": counts["candidates"],
            "flagged": counts["flags"],
            "duplicates": counts["duplicates"],
            "selected": counts["tasks"],
            "annotated tasks": answered,
            "judgements": counts["judgements"],
            "pairs": counts["pairs"],
        },
        drops=dict(last.drops) if last else {},
        score_distributions=distributions,
        agreement=agreement,
        rounds=records,
    )


def write_reports(
    workspace: Workspace, records: Sequence[LoopRound], number: int | None = None
) -> Path:
    """The workspace report (W/report.html), and the round's own when `number` is given."""
    from traitforge.app.report import write_workspace_report

    data = report_data(workspace, list(records))
    if number is not None:
        data.round = number
        write_workspace_report(rounds_dir(workspace) / str(number) / REPORT_FILE, data)
        data.round = None
    return write_workspace_report(workspace.root / REPORT_FILE, data)


# -- the main job --------------------------------------------------------------------------
DEMO_ROUNDS = 2
DEMO_BUDGET = 150  # comparisons selected per round
DEMO_ANNOTATORS = 3  # simulated; each record needs the backend's overlap of them


@dataclass
class DemoResult:
    ingests: list[IngestReport]
    loop: LoopResult
    workspace: Workspace  # as the demo ran it: its config names the backend used
    url: str  # the annotation UI, left running
    credentials: Path | None  # owner login (0600); None: an existing server's own accounts
    annotators: Path | None  # annotator logins (0600); None: none written by traitforge


def demo(
    workspace: Workspace,
    progress: workflows.ProgressFactory | None = None,
    stage_progress: StageProgress | None = None,
    log: Log = print,
    rounds: int = DEMO_ROUNDS,
    budget: int = DEMO_BUDGET,
    backend: str | None = None,
    fine_tune: bool = False,
) -> DemoResult:
    """The main job on the bundled real data: ingest every bundled file, serve the annotation
    UI, and run the loop with simulated annotators: round 1 selected by the trait classifiers,
    round 2 by the reward models trained on round 1's judgements, each round training a model
    per trait and a shared one for the matrix's last row. Every step resumes.
    `backend` ("argilla", "label-studio") is saved as the workspace's annotation.backend
    first; None keeps the one its config names. The reward models are linear on the frozen
    embedding model's vectors (seconds a round on a CPU); `fine_tune` fine-tunes them, round 2
    continuing round 1's (most of half an hour on 2 CPU cores)."""
    from traitforge.annotators.backends import backend_for
    from traitforge.reward.linear import METHOD as LINEAR

    if backend is not None:
        workspace = workflows.use_backend(workspace, backend)
    reward = workspace.config.reward
    if reward.models == "per-trait" and not reward.shared_row:
        # the matrix's question is whether one model of all traits transfers better
        workspace = workflows.update_config(workspace, "reward", shared_row=True)
        log("The demo trains a shared model beside each trait's (reward.shared_row: true).")
    method = "fine-tune" if fine_tune else LINEAR
    if reward.method != method:
        workspace = workflows.update_config(workspace, "reward", method=method)
        log(
            "The reward models fine-tune the backbone (reward.method: fine-tune)."
            if fine_tune
            else "The reward models are linear on frozen embedding vectors "
            "(reward.method: frozen-linear; `traitforge demo --fine-tune` fine-tunes them)."
        )
    if fine_tune and not reward.warm_start:
        # round 2 continues round 1's models: on CPUs, training is most of the demo's time
        workspace = workflows.update_config(workspace, "reward", warm_start=True)
        log("Round 2 continues round 1's reward models (reward.warm_start: true).")
    root = workflows.bundled_data_dir()
    reports = []
    for fmt, relative in workflows.BUNDLED_INPUTS:
        reports += workflows.ingest(workspace, fmt, [root / relative], progress=progress)
    ui = backend_for(workspace).serve()  # starts the backend's own server unless external
    result = run(workspace, rounds, budget, DEMO_ANNOTATORS, log, stage_progress)
    return DemoResult(
        ingests=reports,
        loop=result,
        workspace=workspace,
        url=ui.url,
        credentials=ui.owner_login,
        annotators=ui.annotator_logins,
    )
