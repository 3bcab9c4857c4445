"""Orchestration across stages: the only module (besides the CLI) that imports them all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from traitforge import __version__
from traitforge.curation import generation
from traitforge.curation.generation import GenerationReport, Generator, generate_file
from traitforge.curation.ingest import IngestReport, estimate_rows, ingest_file
from traitforge.errors import ConfigError, TraitforgeError
from traitforge.exports import ExportReport, build_pairs, export_dataset
from traitforge.schemas import ExportConfig, ProjectConfig, RewardConfig
from traitforge.schemas.config import parse_strategy
from traitforge.workspace import Workspace, workspace_lock

if TYPE_CHECKING:  # heavy stages load lazily: `ingest` and `export` never need them
    from traitforge.annotators.agreement import AgreementReport
    from traitforge.annotators.argilla_backend import DatasetProgress, PullReport, PushReport
    from traitforge.annotators.simulated import SimulationReport
    from traitforge.curation.pipeline import ClassifierTraining, CurationReport, StageProgress
    from traitforge.curation.scorers import Example
    from traitforge.reward.runs import TrainRun


class ProgressCallback(Protocol):
    """Told the rows done so far; `finished` once the true total is known."""

    def __call__(self, done: int, finished: bool = False) -> None: ...


# (label, estimated total or None) -> the callback for that file.
ProgressFactory = Callable[[str, int | None], ProgressCallback]

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
    formats: list[str] | None = None,
    overwrite: bool = False,
) -> ExportReport:
    """Export with the workspace config; `strategy` overrides export.strategy for this run
    (and is recorded in the exported provenance). `out` may lie inside the workspace only
    under its exports folder; `overwrite` lets it replace a traitforge folder of another kind
    (never one traitforge did not write)."""
    config = workspace.config
    if strategy is not None:
        try:
            parse_strategy(strategy)
        except ValueError as e:
            raise ConfigError(f"--strategy: {e}") from e
        export_config = ExportConfig.model_validate(
            {**config.export.model_dump(), "strategy": strategy}
        )
        config = config.model_copy(update={"export": export_config})
    with workspace.store() as store:
        return export_dataset(
            store,
            config,
            out or workspace.exports_dir / "latest",
            __version__,
            formats,
            overwrite=overwrite,
            home=workspace.exports_dir,
        )


def judgement_examples(workspace: Workspace) -> dict[str, list[Example]]:
    """Classifier labels from annotators: chosen sides are positives, rejected negatives; a
    response chosen and rejected equally often is left out."""
    from traitforge.curation.scorers import Example

    config = workspace.config.model_copy(
        update={
            "export": workspace.config.export.model_copy(
                update={"origin": "judgements", "strategy": "all-pairs", "trait_strategies": {}}
            )
        }
    )
    with workspace.store() as store:
        pairs, _, _ = build_pairs(store, config)
    votes: dict[tuple[str, str], int] = defaultdict(int)
    for pair in pairs:
        votes[(pair.trait, pair.chosen_id)] += 1
        votes[(pair.trait, pair.rejected_id)] -= 1
    examples: dict[str, list[Example]] = defaultdict(list)
    for (trait, candidate_id), balance in sorted(votes.items()):
        if balance:
            examples[trait].append(Example(candidate_id, int(balance > 0)))
    return dict(examples)


def _examples(workspace: Workspace, origin: str) -> dict[str, list[Example]] | None:
    """None means gold labels (curation reads them from the candidates)."""
    if origin == "gold":
        return None
    from_judgements = judgement_examples(workspace)
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
            _examples(workspace, origin),
            progress,
        )


def curate(
    workspace: Workspace, budget: int, round_: int = 0, progress: StageProgress | None = None
) -> CurationReport:
    from traitforge.curation import pipeline

    with workspace.store() as store:
        return pipeline.curate(
            store,
            _with_reward_scorer(workspace),
            workspace.classifiers_dir,
            workspace.embedding_cache_path,
            budget,
            round_,
            _examples(workspace, "auto"),
            progress,
        )


def _with_reward_scorer(workspace: Workspace) -> ProjectConfig:
    """The config, plus the reward-model scorer once `score` has pointed the workspace at a
    trained model: the next round then selects with its rewards too."""
    from traitforge.reward import scorer

    config = workspace.config
    if not (workspace.classifiers_dir / scorer.POINTER).is_file():
        return config
    if scorer.KEY in config.curation.scorers:
        return config
    curation = config.curation.model_copy(
        update={"scorers": [*config.curation.scorers, scorer.KEY]}
    )
    return config.model_copy(update={"curation": curation})


def agreement(workspace: Workspace) -> AgreementReport | None:
    """Agreement and annotator quality over every judgement; None before any judgement."""
    from traitforge.annotators.agreement import agreement_report

    with workspace.store() as store:
        judgements = list(store.judgements())
        if not judgements:
            return None
        return agreement_report(
            list(store.tasks()), judgements, list(store.candidates()), workspace.config
        )


# -- annotation in Argilla: push, pull, simulate ---------------------------------------------
# The Argilla server is the workspace's embedded one (started on demand), or the one named by
# ARGILLA_API_URL / ARGILLA_API_KEY (see traitforge.annotators.server.owner_connection).
# Each command that writes to it holds the workspace lock, so two never run at once.


def push(workspace: Workspace, progress: StageProgress | None = None) -> PushReport:
    """Send the workspace's comparison tasks to Argilla; re-running sends only what is missing."""
    from traitforge.annotators import argilla_backend, server

    with workspace_lock(workspace.root, "push"):
        connection = server.owner_connection(workspace)
        vectors = argilla_backend.prompt_vectors(workspace.config, workspace.embedding_cache_path)
        with workspace.store() as store:
            return argilla_backend.push(store, workspace.config, connection, vectors, progress)


def pull(workspace: Workspace, progress: StageProgress | None = None) -> PullReport:
    """Store new and edited submitted answers from Argilla as judgements."""
    from traitforge.annotators import argilla_backend, server

    with workspace_lock(workspace.root, "pull"):
        connection = server.owner_connection(workspace)
        with workspace.store() as store:
            return argilla_backend.pull(store, workspace.config, connection, progress)


def simulate(
    workspace: Workspace, annotators: int, progress: StageProgress | None = None
) -> SimulationReport:
    """`annotators` simulated accounts (sim-1, sim-2, ...; created when missing) answer their
    pending records through Argilla's API, per annotation.simulation."""
    from traitforge.annotators import server, simulated
    from traitforge.annotators.records import SIMULATED_PREFIX

    with workspace_lock(workspace.root, "simulate"):
        connection = server.owner_connection(workspace)
        wanted = [f"{SIMULATED_PREFIX}{i}" for i in range(1, annotators + 1)]
        # Idempotent: creates the missing accounts and repairs any the server lost (a replaced
        # database), so every key below works.
        accounts = server.add_annotators(workspace, wanted)
        with workspace.store() as store:
            return simulated.simulate(
                store, workspace.config, connection.api_url, accounts, progress
            )


def annotation_progress(workspace: Workspace) -> list[DatasetProgress] | str:
    """Per pushed dataset, records completed / pending and each annotator's responses; or why
    they cannot be shown. Never starts a server (status must stay quick)."""
    from traitforge.annotators import argilla_backend, server

    with workspace.store() as store:
        names = [
            n
            for n in argilla_backend.dataset_names(store, workspace.config)
            if store.done_keys(argilla_backend.push_stage(n))
        ]
    if not names:
        return []
    try:
        connection = server.owner_connection(workspace, start=False)
        return argilla_backend.progress(workspace.config, connection, names, retries=0)
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
) -> TrainRun:
    from traitforge.reward.runs import train_run

    return train_run(data, out, config, log, overwrite=overwrite)


def evaluate_reward(
    model: Path, pairs: Path, config: RewardConfig, split: str = "test"
) -> dict[str, Any]:
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
) -> dict[str, Any]:
    """The cross-trait matrix: of `model` (a per-trait set), or of a set first trained on
    `data` into `out`, each evaluated on every trait's pairs."""
    from traitforge.reward.pairs import load_pairs
    from traitforge.reward.runs import matrix_run, train_run

    if model is None:
        if data is None or out is None:
            raise TraitforgeError(
                "eval --matrix needs --model (a per-trait folder from `traitforge train`), "
                "or --data and --out to train one model per trait first"
            )
        train_run(
            data, out, config.model_copy(update={"models": "per-trait"}), log, overwrite=overwrite
        )
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


@dataclass
class ScoreResult:
    model: Path
    candidates: int
    scores: dict[str, int]  # trait -> candidates scored


def score(workspace: Workspace, model: Path) -> ScoreResult:
    """Point the workspace at a trained reward model and store its reward for every
    candidate; the next `curate` selects with them (scorer 'reward-model.v1')."""
    import numpy as np

    from traitforge.curation.scorers import CandidateFeatures
    from traitforge.reward import scorer

    pointer = scorer.point_to_model(workspace.classifiers_dir, model)
    with workspace.store() as store:
        candidates = list(store.candidates())
        empty = np.zeros((len(candidates), 0), dtype=np.float32)
        features = CandidateFeatures(candidates, empty, empty, embedding_model="")
        traits = [t.name for t in workspace.config.traits]
        scores = scorer.RewardScorer(workspace.classifiers_dir).score(features, traits)
        with store.transaction():
            store.put_scores(scores)
    counts: dict[str, int] = defaultdict(int)
    for s in scores:
        counts[s.trait] += 1
    return ScoreResult(Path(pointer["model"]), len(candidates), dict(counts))
