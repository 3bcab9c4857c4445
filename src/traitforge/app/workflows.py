"""One function per command: opens the workspace's store, lock and backend, calls the stages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitforge import __version__
from traitforge.curation import generation
from traitforge.curation.generation import GenerationReport, Generator, generate_file
from traitforge.curation.ingest import IngestReport, estimate_rows, ingest_file
from traitforge.curation.progress import FileProgress
from traitforge.errors import ConfigError, TraitforgeError, WorkspaceError
from traitforge.exports import ExportReport, export_dataset
from traitforge.schemas import (
    AgreementResult,
    Candidate,
    EvaluationResult,
    MatrixResult,
    ProjectConfig,
    RewardConfig,
)
from traitforge.schemas.config import parse_strategy
from traitforge.workspace import Store, Workspace, dump_config, parse_config, workspace_lock
from traitforge.workspace.files import atomic_write_text

if TYPE_CHECKING:  # heavy stages load lazily: `ingest` and `export` never need them
    from traitforge.annotators.answer_key import AnswerKey
    from traitforge.annotators.backends import (
        DatasetProgress,
        PullReport,
        PushReport,
        SimulationReport,
    )
    from traitforge.curation.pipeline import ClassifierTraining, CurationReport
    from traitforge.curation.progress import StageProgress
    from traitforge.curation.scorers import Example
    from traitforge.reward.runs import TrainRun
    from traitforge.reward.scorer import ScoreResult
    from traitforge.schemas.results import AuditResult


# (label, estimated total or None) -> the callback for that file.
ProgressFactory = Callable[[str, int | None], FileProgress]

BUNDLED_INPUTS: tuple[tuple[str, str], ...] = (
    ("truthfulqa", "truthfulqa/TruthfulQA.csv"),
    ("anthropic-evals", "anthropic-evals/corrigible-more-HHH.jsonl"),
    ("anthropic-evals", "anthropic-evals/corrigible-neutral-HHH.jsonl"),
    ("anthropic-evals", "anthropic-evals/survival-instinct.jsonl"),
    ("hh-rlhf", "hh-rlhf/harmless-base-test-first400.jsonl.gz"),
)


def bundled_data_dir() -> Path:
    return Path(str(resources.files("traitforge") / "bundled_data"))


def ingest(
    workspace: Workspace,
    fmt: str,
    paths: list[Path],
    skip_invalid: bool = False,
    progress: ProgressFactory | None = None,
) -> list[IngestReport]:
    """Ingest files one by one; each file is stored whole or not at all.

    `fmt` "generate" reads prompts files and samples candidates for them instead (see
    `generate`)."""
    if fmt == generation.FORMAT:
        return list(generate(workspace, paths, skip_invalid, progress))
    reports = []
    with workspace.store() as store:
        for path in paths:
            callback = progress(path.name, estimate_rows(path)) if progress else None
            report = ingest_file(
                store,
                workspace.config,
                fmt,
                path,
                workspace.quarantine_dir,
                skip_invalid=skip_invalid,
                progress=callback,
            )
            if callback:
                callback(report.rows_read, True)
            reports.append(report)
    return reports


def generate(
    workspace: Workspace,
    paths: list[Path],
    skip_invalid: bool = False,
    progress: ProgressFactory | None = None,
    generator: Generator | None = None,
) -> list[GenerationReport]:
    """Sample curation.generation.n responses for every prompt of each file. One generator
    serves all files, so the model is loaded (or the endpoint contacted) once, and only when
    some prompt still lacks samples. Prompts are stored one by one: a killed run resumes."""
    config = workspace.config
    owned = generator is None
    generator = (
        generator
        if generator is not None
        else generation.make_generator(config.curation.generation)
    )
    reports = []
    try:
        with workspace.store() as store:
            for path in paths:
                callback = progress(path.name, estimate_rows(path)) if progress else None
                report = generate_file(
                    store,
                    config,
                    path,
                    workspace.quarantine_dir,
                    skip_invalid=skip_invalid,
                    generator=generator,
                    progress=callback,
                )
                if callback:
                    callback(report.rows_read, True)
                reports.append(report)
    finally:
        if owned:
            generator.close()
    return reports


def export(
    workspace: Workspace,
    out: Path | None = None,
    strategy: str | None = None,
    copies: list[str] | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export with the workspace config; `strategy` overrides export.strategy (and is recorded
    in the exported provenance) and `copies` export.copies for this run. `out` may lie inside
    the workspace only under its exports folder; `overwrite` lets it replace a traitforge
    folder of another kind (never one traitforge did not write)."""
    if strategy is not None:
        try:
            parse_strategy(strategy)
        except ValueError as e:
            raise ConfigError(f"--strategy: {e}") from e
    with workspace.store() as store:
        return export_dataset(
            store,
            workspace.config,
            out or workspace.exports_dir / "latest",
            __version__,
            copies,
            strategy=strategy,
            overwrite=overwrite,
            home=workspace.exports_dir,
            audit=latest_audit(workspace),
        )


def _examples(store: Store, config: ProjectConfig, origin: str) -> dict[str, list[Example]] | None:
    """None means gold labels (curation reads them from the candidates)."""
    if origin == "gold":
        return None
    from traitforge.exports.labels import judgement_examples

    from_judgements = judgement_examples(store, config)
    if origin == "judgements" and not from_judgements:
        raise TraitforgeError(
            "no annotator judgements to train on; pull judgements first or use --origin gold"
        )
    return from_judgements or None


def train_classifiers(
    workspace: Workspace, origin: str = "auto", progress: StageProgress | None = None
) -> ClassifierTraining:
    from traitforge.curation import pipeline

    with workspace.store() as store:
        return pipeline.train_classifiers(
            store,
            workspace.config,
            workspace.classifiers_dir,
            workspace.embedding_cache_path,
            _examples(store, workspace.config, origin),
            progress,
        )


def use_engine(workspace: Workspace, engine: str | None) -> None:
    """Run this command's curation on `engine` ('local' or 'ray'; None: the config's own),
    without saving it into the workspace's config: the option is for one run."""
    if engine is None:
        return
    config = workspace.config
    curation = config.curation.model_copy(update={"engine": engine})
    workspace.config = config.model_copy(update={"curation": curation})


def curate(
    workspace: Workspace, budget: int, round_: int = 0, progress: StageProgress | None = None
) -> CurationReport:
    from traitforge.curation import pipeline
    from traitforge.curation.recheck import RECHECK_FILE, read_rechecks

    # The label audit's doubted pairs (`audit --recheck`) go back to annotators first.
    rechecks = read_rechecks(workspace.root / RECHECK_FILE)
    with workspace.store() as store:
        return pipeline.curate(
            store,
            _with_reward_scorer(workspace),
            workspace.classifiers_dir,
            workspace.embedding_cache_path,
            budget,
            round_,
            _examples(store, workspace.config, "auto"),
            progress,
            rechecks.entries if rechecks is not None else None,
        )


def _with_reward_scorer(workspace: Workspace) -> ProjectConfig:
    """The config, plus the reward-model scorer once `score` has pointed the workspace at a
    trained model: the next round then selects with its rewards too."""
    from traitforge.reward import scorer

    config = workspace.config
    if not scorer.has_model(workspace.reward_dir):
        return config
    if scorer.KEY in config.curation.scorers:
        return config
    curation = config.curation.model_copy(
        update={"scorers": [*config.curation.scorers, scorer.KEY]}
    )
    return config.model_copy(update={"curation": curation})


def agreement(workspace: Workspace) -> AgreementResult | None:
    """Agreement and annotator quality over every judgement; None before any judgement."""
    from traitforge.annotators.agreement import agreement_report

    with workspace.store() as store:
        judgements = list(store.judgements())
        if not judgements:
            return None
        return agreement_report(
            list(store.tasks()), judgements, list(store.candidates()), workspace.config
        )


@dataclass(frozen=True)
class CandidateListing:
    """What `traitforge candidates` shows: some candidates, of all or of one prompt."""

    candidates: list[Candidate]
    total: int  # candidates stored (the prompt's, when one is asked), shown or not
    prompt_id: str | None = None


def candidates(
    workspace: Workspace, prompt: str | None = None, limit: int | None = None
) -> CandidateListing:
    """The stored candidates, each prompt's together; `prompt`: one prompt's, by its id or a
    prefix of it that names one prompt only; `limit`: at most that many."""
    with workspace.store() as store:
        prompt_id = _prompt_id(store, prompt, workspace.root) if prompt is not None else None
        return CandidateListing(
            list(store.candidates_by_prompt(prompt_id, limit)),
            store.count_candidates(prompt_id),
            prompt_id,
        )


def _prompt_id(store: Store, prompt: str, root: Path) -> str:
    listing = f"`traitforge candidates --workspace {root}` lists prompt ids"
    if not prompt:
        raise WorkspaceError(f"--prompt is empty; give a prompt id ({listing})")
    found = store.prompt_ids_starting(prompt)
    if prompt in found:
        return prompt
    if not found:
        held = store.count_candidates()
        raise WorkspaceError(
            f"no prompt with id {prompt!r} in workspace {root} ("
            + (
                f"it holds {held} candidate(s); {listing}"
                if held
                else "it holds no candidates yet: add some with `traitforge ingest`"
            )
            + ")"
        )
    if len(found) > 1:
        shown = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
        raise WorkspaceError(
            f"prompt id {prompt!r} is the start of {len(found)} prompts' ids ({shown}); give "
            "more of the id"
        )
    return found[0]


# -- annotation: push, pull, simulate, progress ---------------------------------------------
# Through the workspace's annotation backend (`annotators.backends.backend_for`), which knows
# where its server is. Each command that writes to it holds the workspace lock, so two never
# run at once.


def update_config(workspace: Workspace, section: str, **fields: Any) -> Workspace:
    """The workspace with these fields of one config section set, saved as its resolved
    config, so every later command on it (push, pull, train, loop, a re-run) sees them.
    Unchanged fields write nothing."""
    config = workspace.config
    current = getattr(config, section)
    if all(getattr(current, name) == value for name, value in fields.items()):
        return workspace
    path = workspace.root / Workspace.CONFIG_FILE
    text = dump_config(config.model_copy(update={section: current.model_copy(update=fields)}))
    parse_config(text, str(path))  # an unknown value is a ConfigError naming the field
    atomic_write_text(path, text)
    return Workspace.open(workspace.root)


def use_backend(workspace: Workspace, backend: str) -> Workspace:
    """The workspace with annotation.backend set to `backend`, saved in its config."""
    return update_config(workspace, "annotation", backend=backend)


def push(workspace: Workspace, progress: StageProgress | None = None) -> PushReport:
    """Send the workspace's comparison tasks to its annotation backend; re-running sends only
    what is missing."""
    from traitforge.annotators.backends import backend_for

    with workspace_lock(workspace.root, "push"):
        backend = backend_for(workspace)
        with workspace.store() as store:
            return backend.push(store, progress)


def pull(workspace: Workspace, progress: StageProgress | None = None) -> PullReport:
    """Store new and edited submitted answers from the annotation backend as judgements."""
    from traitforge.annotators.backends import backend_for

    with workspace_lock(workspace.root, "pull"):
        backend = backend_for(workspace)
        with workspace.store() as store:
            return backend.pull(store, progress)


def answer_key(workspace: Workspace, path: Path) -> AnswerKey:
    """An answer key file, checked against the workspace's traits (see `simulate`)."""
    from traitforge.annotators.answer_key import load_answer_key

    return load_answer_key(path, workspace.config.traits)


def simulate(
    workspace: Workspace,
    annotators: int,
    progress: StageProgress | None = None,
    answers: AnswerKey | None = None,
) -> SimulationReport:
    """`annotators` simulated accounts (sim-1, sim-2, ...; created when missing) answer their
    pending tasks through the backend, per annotation.simulation: from gold, or from the
    `answers` key, leaving the tasks it lacks unanswered."""
    from traitforge.annotators.backends import backend_for

    with workspace_lock(workspace.root, "simulate"):
        backend = backend_for(workspace)
        with workspace.store() as store:
            return backend.simulate(store, annotators, progress, answers)


def annotation_progress(
    workspace: Workspace, round_: int | None = None
) -> list[DatasetProgress] | str:
    """Per pushed dataset, records completed / pending and each annotator's responses (only
    the records of round `round_`'s tasks, when given); or why they cannot be shown. Never
    starts a server (status must stay quick)."""
    from traitforge.annotators.backends import backend_for

    backend = backend_for(workspace)
    with workspace.store() as store:
        names = backend.pushed_datasets(store)
        tasks = {t.id for t in store.tasks() if t.round == round_} if round_ is not None else None
    if not names:
        return []
    try:
        return backend.progress(names, tasks)
    except TraitforgeError as e:
        return str(e)


# -- reward models ---------------------------------------------------------------------------
def reward_config(config_path: Path | None, backbone: str | None = None) -> RewardConfig:
    """The `reward` section of a project config file (defaults without one), with the
    backbone overridden from the command line."""
    from traitforge.workspace.config_file import default_config, load_config

    config = (load_config(config_path) if config_path else default_config()).reward
    return config.model_copy(update={"backbone": backbone}) if backbone else config


def train_reward(
    data: Path,
    out: Path,
    config: RewardConfig,
    log: Callable[[str], None] = print,
    overwrite: bool = False,
    progress: StageProgress | None = None,
) -> TrainRun:
    from traitforge.reward.runs import train_run

    return train_run(data, out, config, log, overwrite=overwrite, progress=progress)


def accelerate_config(name: str) -> Path:
    """The shipped accelerate config `name` (ddp, fsdp) for `accelerate launch --config_file`."""
    from traitforge.reward.launch import launch_config_path

    return launch_config_path(name)


def evaluate_reward(
    model: Path, pairs: Path, config: RewardConfig, split: str = "test"
) -> EvaluationResult:
    from traitforge.reward.pairs import load_pairs
    from traitforge.reward.runs import eval_run

    with _naming(pairs):
        return eval_run(model, load_pairs(pairs, split), config)


def reward_matrix(
    pairs: Path,
    config: RewardConfig,
    model: Path | None = None,
    data: Path | None = None,
    out: Path | None = None,
    split: str = "test",
    log: Callable[[str], None] = print,
    overwrite: bool = False,
) -> MatrixResult:
    """The cross-trait matrix: of `model` (a per-trait set), or of a set first trained on
    `data` into `out` (with a shared model for the matrix's 'shared' row), each evaluated on
    every trait's pairs."""
    from traitforge.reward.pairs import load_pairs
    from traitforge.reward.runs import matrix_run, train_run

    if model is None:
        if data is None or out is None:
            raise TraitforgeError(
                "eval --matrix needs --model (a per-trait folder from `traitforge train`), "
                "or --data and --out to train one model per trait first"
            )
        # one model per trait, and one shared model for the row that shows joint training
        matrix_config = config.model_copy(update={"models": "per-trait", "shared_row": True})
        train_run(data, out, matrix_config, log, overwrite=overwrite)
        model = out
    with _naming(pairs):
        return matrix_run(model, load_pairs(pairs, split), config)


@contextmanager
def _naming(pairs: Path) -> Iterator[None]:
    """Evaluation sees pairs, not their file: put the file's name on a 'no usable pairs' error."""
    from traitforge.reward.pairs import PairsError

    try:
        yield
    except PairsError as e:
        if str(pairs) in str(e):
            raise
        raise PairsError(f"{pairs}: {e}") from e


def score(workspace: Workspace, model: Path) -> ScoreResult:
    """Point the workspace at a trained reward model and store its reward for every
    candidate; the next `curate` selects with them (scorer 'reward-model.v1')."""
    from traitforge.reward.scorer import score_candidates

    traits = [t.name for t in workspace.config.traits]
    with workspace.store() as store:
        return score_candidates(
            store, traits, workspace.reward_dir, model, workspace.embedding_cache_path
        )


AUDIT_FILE = "audit.json"


def audit(
    workspace: Workspace,
    folds: int | None = None,
    min_source_pairs: int | None = None,
    recheck: bool = False,
) -> AuditResult:
    """Audit the labels of the latest export (see `exports.audit`) and write it to
    WORKSPACE/audit.json; `folds` and `min_source_pairs` replace the audit's defaults.
    `recheck` also writes its flagged pairs to WORKSPACE/recheck.json, replacing the list
    there: the next `curate` sends those not sent yet back to annotators."""
    from traitforge.curation.recheck import RECHECK_FILE, write_rechecks
    from traitforge.exports.audit import FOLDS, MIN_SOURCE_PAIRS, audit_labels, recheck_list
    from traitforge.workspace.files import atomic_write_text

    with workspace.store() as store:
        result = audit_labels(
            store,
            workspace.config,
            workspace.embedding_cache_path,
            folds=FOLDS if folds is None else folds,
            min_source_pairs=MIN_SOURCE_PAIRS if min_source_pairs is None else min_source_pairs,
        )
        rechecks = recheck_list(result, store.pairs()) if recheck else None
    if rechecks is not None:
        write_rechecks(workspace.root / RECHECK_FILE, rechecks)
    atomic_write_text(
        workspace.root / AUDIT_FILE, json.dumps(result.model_dump(mode="json"), indent=2) + "\n"
    )
    return result


def latest_audit(workspace: Workspace) -> AuditResult | None:
    """WORKSPACE/audit.json, or None when no audit was run; one that does not read as an
    audit is an error naming the file."""
    from pydantic import ValidationError

    from traitforge.schemas.results import AuditResult

    path = workspace.root / AUDIT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise WorkspaceError(f"cannot read the label audit {path}: {e}") from e
    try:
        return AuditResult.model_validate_json(text)
    except ValidationError as e:
        raise WorkspaceError(
            f"{path} is not a label audit traitforge can read ({e.error_count()} error(s), "
            f"first: {e.errors()[0]['msg']}); run `traitforge audit` to write it again"
        ) from e


@dataclass
class AuditStatus:
    """What `status` says about the label audit: none yet, or its verdicts and whether it
    scored the store's latest export."""

    path: Path
    audit: AuditResult | None
    stale: bool = False  # the store's latest export is not the one audited


def audit_status(workspace: Workspace) -> AuditStatus:
    from traitforge.exports.audit import export_fingerprint

    path = workspace.root / AUDIT_FILE
    result = latest_audit(workspace)
    if result is None:
        return AuditStatus(path, None)
    with workspace.store() as store:
        latest = export_fingerprint(store.pairs())
    return AuditStatus(path, result, stale=result.export != latest)
