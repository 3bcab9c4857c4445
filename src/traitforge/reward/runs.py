"""Whole reward-model runs: train every model a config asks for, evaluate, and write the
folder people open (models, manifest, eval.json, model card, report.html).

The output folder is built in a staging folder and swapped in at the end, so a run killed at
any point leaves the previous models intact, and re-running starts cleanly.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.curation.progress import StageProgress
from traitforge.errors import ConfigError
from traitforge.reporting import fmt_counts
from traitforge.reward.augment import augment, augmented_counts
from traitforge.reward.card import model_card
from traitforge.reward.evaluation import evaluate, generalization_matrix
from traitforge.reward.linear import METHOD as LINEAR
from traitforge.reward.linear import fit_linear
from traitforge.reward.model import MANIFEST, RewardModelSet, read_manifest
from traitforge.reward.pairs import (
    RewardPair,
    empty_split_error,
    load_splits,
    traits_of,
    usable_pairs,
)
from traitforge.reward.report import write_report
from traitforge.reward.training import SHARED, FitResult, Log, TrainPlan, fit, plan
from traitforge.schemas import EvaluationResult, MatrixResult, RewardConfig
from traitforge.workspace.files import (
    REWARD_FOLDER,
    atomic_directory,
    atomic_write_text,
    check_output_folder,
)

EVAL_FILE = "eval.json"
MATRIX_FILE = "matrix.json"
REPORT_FILE = "report.html"
CARD_FILE = "README.md"
SHARED_ROW = "shared"  # a set's subfolder for reward.shared_row's model


@dataclass
class TrainRun:
    out: Path
    fits: list[FitResult]
    evaluation: EvaluationResult | None
    report: Path
    not_evaluated: str | None = None  # why there is no evaluation, when there is none
    untested: list[str] = field(default_factory=list)  # trained traits without a test pair


def dataset_provenance(data: Path, splits: Mapping[str, Sequence[RewardPair]]) -> dict[str, Any]:
    """Where the pairs came from: the dataset folder, a hash of its pair ids (the same pairs
    give the same hash), and the export's own provenance file, hashed."""
    ids = sorted(p.pair_id or "" for pairs in splits.values() for p in pairs)
    exported = data / "provenance.json"
    return {
        "dataset": str(data.resolve()),
        "pairs": {name: len(pairs) for name, pairs in splits.items()},
        "pairs_sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest(),
        "export_provenance_sha256": (
            hashlib.sha256(exported.read_bytes()).hexdigest() if exported.is_file() else None
        ),
    }


def train_run(
    data: Path,
    out: Path,
    config: RewardConfig,
    log: Log = print,
    keep: Callable[[RewardPair], bool] | None = None,
    test: Sequence[RewardPair] | None = None,
    *,
    overwrite: bool = False,
    home: Path | None = None,
    progress: StageProgress | None = None,
    no_test: str | None = None,
    start_from: Path | None = None,
    vectors: Path | None = None,
) -> TrainRun:
    """Train per-trait models (or one shared one) on the train split, evaluate on the test
    split, and write everything to `out`. `keep` filters the pairs (e.g. judgement pairs
    only); `test` replaces the test split (e.g. held-out gold pairs), and `no_test` says why
    it is empty when it is, with what to do. `progress` is told each model's optimizer steps.
    `start_from`: an earlier run's folder; each model continues its namesake there when it has
    one on the same backbone (reward.warm_start in the loop), else starts fresh.
    `vectors`: an embedding cache (a workspace's embeddings.sqlite) that frozen-linear models
    read their texts' vectors from and add to.
    `out` must be new, empty or an earlier reward-model folder (`overwrite` and `home`: see
    `check_output_folder`); checked on every rank before anything is trained."""
    check_output_folder(out, REWARD_FOLDER, overwrite=overwrite, home=home)
    splits = load_splits(data)
    if not splits.get("train"):
        fix = "export more judgements (`traitforge pull`, then `traitforge export`)"
        if any(splits.values()):
            fix += ", or lower export.test_fraction so that some prompts land in 'train'"
        raise empty_split_error(
            data, "train", {name: len(pairs) for name, pairs in splits.items()}, fix
        )
    if keep is not None:
        splits = {name: [p for p in pairs if keep(p)] for name, pairs in splits.items()}
    if test is not None:
        splits["test"] = list(test)
    provenance = dataset_provenance(data, splits)
    training_plan = plan(splits.get("train", []), config.models, config.min_pairs)
    if training_plan.skipped_pairs:
        provenance["skipped_train_pairs"] = training_plan.skipped_pairs
        log(f"skipped training pairs: {fmt_counts(training_plan.skipped_pairs, empty='')}")
    for name, count in training_plan.skipped.items():
        log(f"{name}: no model, {count} training pairs are fewer than reward.min_pairs")
    if not training_plan.groups:
        raise ConfigError(
            f"no trait has reward.min_pairs ({config.min_pairs}) training pairs "
            f"({training_plan.skipped}); export more pairs or lower reward.min_pairs"
        )
    trained = set(training_plan.groups)
    test_pairs = [p for p in splits.get("test", []) if SHARED in trained or p.trait in trained]
    source = f"{data} has no pairs in its 'test' split" if test is None else "no test pairs given"
    not_evaluated = _why_not_evaluated(
        no_test or source, splits.get("test", []), test_pairs, trained
    )
    untested = []  # trained traits the evaluation cannot speak for
    if not not_evaluated and SHARED not in trained:
        untested = sorted(trained - set(traits_of(test_pairs)))
    if not_evaluated:
        log(f"warning: no evaluation: {not_evaluated}")
    elif untested:
        log(f"warning: no test pairs for {', '.join(untested)}: evaluated on the other traits only")
    fits = []
    main = _is_main_process()
    with (
        atomic_directory(out, REWARD_FOLDER, overwrite=overwrite, home=home)
        if main
        else tempfile.TemporaryDirectory()
    ) as staging_dir:
        staging = Path(staging_dir)
        for name, pairs, folder, prefix in _models_to_train(training_plan, config, staging):
            added = augment(pairs, config.augment, config.seed)
            shown = f" + {fmt_counts(augmented_counts(added), '{n} {name}')}" if added else ""
            log(f"training {name}: {len(pairs)} pairs{shown} on {config.backbone}")
            if config.method == LINEAR:
                fits.append(
                    fit_linear([*pairs, *added], config, folder, name, log, provenance, vectors)
                )
                continue
            start = _earlier_model(start_from, folder.relative_to(staging), config, prefix)
            fits.append(
                fit(
                    [*pairs, *added],
                    config,
                    folder,
                    name,
                    prefix,
                    log,
                    provenance,
                    progress,
                    start=start,
                )
            )
        if not main:  # other ranks of `accelerate launch` train; the main one writes
            return TrainRun(out, fits, None, out / REPORT_FILE, not_evaluated, untested)
        if SHARED not in training_plan.groups:
            row = staging / SHARED_ROW
            manifest: dict[str, Any] = {
                "kind": "set",
                "members": {f.name: f.name for f in fits if f.folder != row},
            }
            if any(f.folder == row for f in fits):
                manifest["shared_row"] = SHARED_ROW
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        evaluation = None
        if not not_evaluated:
            evaluation = evaluate(
                RewardModelSet(staging, vectors=vectors).rewards,
                test_pairs,
                config.bootstrap_samples,
                config.confidence_level,
                config.seed,
            )
            atomic_write_text(staging / EVAL_FILE, _json(evaluation))
        training = [f.as_dict() for f in fits]
        settings = config.model_dump(mode="json")
        atomic_write_text(
            staging / CARD_FILE,
            model_card(training, evaluation, settings, provenance, not_evaluated, untested),
        )
        write_report(
            staging / REPORT_FILE,
            title=f"Reward model: {', '.join(f.name for f in fits)}",
            evaluation=evaluation,
            training=training,
            provenance=provenance,
        )
    return TrainRun(out, fits, evaluation, out / REPORT_FILE, not_evaluated, untested)


def _models_to_train(
    training_plan: TrainPlan, config: RewardConfig, staging: Path
) -> list[tuple[str, list[RewardPair], Path, bool]]:
    """(name, pairs, folder, trait prefix) of every model the run trains: the plan's groups,
    and with reward.shared_row one more model on all of them, in the set's 'shared' folder."""
    runs = [
        (name, pairs, staging if name == SHARED else staging / name, training_plan.trait_prefix)
        for name, pairs in training_plan.groups.items()
    ]
    if config.shared_row and SHARED not in training_plan.groups and len(runs) > 1:
        if SHARED_ROW in training_plan.groups:
            raise ConfigError(
                f"reward.shared_row: a trait is named {SHARED_ROW!r}, the folder the shared "
                "model would take; rename the trait or turn reward.shared_row off"
            )
        every = [p for pairs in training_plan.groups.values() for p in pairs]
        runs.append((SHARED, every, staging / SHARED_ROW, True))
    return runs


def _earlier_model(
    earlier: Path | None, relative: Path, config: RewardConfig, trait_prefix: bool
) -> Path | None:
    """The model at `relative` in the earlier run's folder, if one is there that this run's
    model can continue: trained on the same backbone, reading the same inputs."""
    if earlier is None or not (earlier / relative / MANIFEST).is_file():
        return None
    manifest = read_manifest(earlier / relative)
    fits = (manifest.get("kind"), manifest.get("backbone"), manifest.get("trait_prefix"))
    return earlier / relative if fits == ("model", config.backbone, trait_prefix) else None


def _why_not_evaluated(
    empty: str, test: Sequence[RewardPair], scored: Sequence[RewardPair], trained: set[str]
) -> str | None:
    """Why the trained models cannot be evaluated on the test pairs, if they cannot (`empty`
    says why when there are none): known before training, so the warning comes first."""
    if not test:
        return empty
    if not scored:
        return (
            f"none of the {len(test)} test pairs has a trait with a trained model (test "
            f"traits: {traits_of(test)}, trained: {sorted(trained)})"
        )
    usable, skipped = usable_pairs(scored)
    if not usable:
        return f"every test pair was skipped ({fmt_counts(skipped, empty='')})"
    return None


def _json(result: EvaluationResult | MatrixResult) -> str:
    return json.dumps(result.model_dump(mode="json"), indent=2) + "\n"


def eval_run(
    model: Path,
    pairs: Sequence[RewardPair],
    config: RewardConfig,
    report: Path | None = None,
    vectors: Path | None = None,
) -> EvaluationResult:
    """Evaluate a trained folder on pairs; writes an HTML report next to the model, named in
    the result's `report`. `vectors`: see `train_run`."""
    models = RewardModelSet(model, vectors=vectors)
    evaluation = evaluate(
        models.rewards, pairs, config.bootstrap_samples, config.confidence_level, config.seed
    )
    written = write_report(
        report or model / "eval-report.html",
        title=f"Reward model evaluation: {model.name}",
        evaluation=evaluation,
        provenance={"model": str(model.resolve()), "pairs": len(pairs)},
    )
    return evaluation.model_copy(update={"report": str(written)})


def matrix_run(
    model: Path, pairs: Sequence[RewardPair], config: RewardConfig, vectors: Path | None = None
) -> MatrixResult:
    """The cross-trait matrix of a per-trait set: each trait's model on every trait's pairs,
    and a row for the set's shared model when it was trained with reward.shared_row.
    Writes matrix.json and matrix-report.html (named in the result's `report`) into the set's
    folder. `vectors`: see `train_run`."""
    models = RewardModelSet(model, vectors=vectors)
    members: dict[str, Any] = (
        {name: m.rewards for name, m in models.members.items()}
        if models.members
        else {SHARED: _shared(models)}
    )
    if (row := models.shared_row(vectors=vectors)) is not None:
        members[SHARED] = row.rewards
    matrix = generalization_matrix(
        members, pairs, config.bootstrap_samples, config.confidence_level, config.seed
    )
    atomic_write_text(model / MATRIX_FILE, _json(matrix))
    written = write_report(
        model / "matrix-report.html",
        title=f"Cross-trait generalization: {model.name}",
        matrix=matrix,
        provenance={"models": str(model.resolve()), "pairs": len(pairs)},
    )
    return matrix.model_copy(update={"report": str(written)})


def _is_main_process() -> bool:
    """Rank 0 of `torchrun` / `accelerate launch` (both set RANK), or a single process. Read
    from the environment: the process group is not initialized before training starts."""
    return os.environ.get("RANK", "0") == "0"


def _shared(models: RewardModelSet) -> Any:
    shared = models.shared
    assert shared is not None
    return shared.rewards
