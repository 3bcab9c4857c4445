"""Reward-model commands: train, eval, score."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from traitforge.app import workflows
from traitforge.cli._app import (
    BackboneOpt,
    ConfigOpt,
    OverwriteOpt,
    RewardConfigOpt,
    WorkspaceOpt,
    app,
    bar_logger,
    bold,
    console,
    friendly_errors,
    progress_bars,
    stderr,
)
from traitforge.cli.render import print_evaluation, print_fits, print_matrix
from traitforge.errors import TraitforgeError
from traitforge.reporting import fmt_counts
from traitforge.workspace import DEFAULT_WORKSPACE, Workspace


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset folder written by `traitforge export`.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the trained model(s): new, empty, or an earlier `train` output, "
            "which is replaced.",
        ),
    ],
    backbone: BackboneOpt = None,
    config: RewardConfigOpt = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Train reward models on the train split (one per trait, or one shared), evaluate them on
    the test split, and write models, card and report to OUT. Several GPUs:
    `accelerate launch --config_file "$(traitforge accelerate-config ddp)" -m traitforge.cli
    train ...` (or fsdp)."""
    with friendly_errors():
        settings = workflows.reward_config(config, backbone)
        with progress_bars() as bars:
            run = workflows.train_reward(
                data, out, settings, bar_logger(bars), overwrite, bars.stage
            )
    print_fits(run.fits)
    if run.evaluation:
        print_evaluation(run.evaluation)
    console.print(Text.assemble("Models: ", bold(run.out), "\nReport: ", bold(run.report)))


@app.command("accelerate-config")
def accelerate_config(
    name: Annotated[
        str, typer.Argument(help="ddp (data parallel) or fsdp (weights sharded over GPUs).")
    ],
) -> None:
    """Print the path of an accelerate config shipped for training on the GPUs of one machine,
    for `accelerate launch --config_file "$(traitforge accelerate-config ddp)" -m
    traitforge.cli train ...`. Copy it to change it."""
    with friendly_errors():
        path = workflows.accelerate_config(name)
    sys.stdout.write(f"{path}\n")  # plain, so that $(...) gets the path whole


@app.command("eval")
def eval_(
    model: Annotated[
        Path | None, typer.Option(help="Folder written by `traitforge train`.")
    ] = None,
    pairs: Annotated[
        Path | None,
        typer.Option(help="JSONL of prompt/chosen/rejected[/trait], or a saved dataset folder."),
    ] = None,
    split: Annotated[str, typer.Option(help="Split to read from a DatasetDict.")] = "test",
    matrix: Annotated[
        bool,
        typer.Option(
            "--matrix", help="Cross-trait matrix: each trait's model on every trait's pairs."
        ),
    ] = False,
    data: Annotated[
        Path | None, typer.Option(help="--matrix without --model: train on this dataset first.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="--matrix: where trained models go.")
    ] = None,
    backbone: BackboneOpt = None,
    config: RewardConfigOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Pairwise accuracy (with bootstrap CI), shortcut checks and calibration of a reward
    model; with --matrix, the cross-trait generalization matrix. Writes an HTML report next
    to the model."""
    pairs = pairs or data
    with friendly_errors():
        if pairs is None:
            raise TraitforgeError("give --pairs (a JSONL file or a dataset folder)")
        settings = workflows.reward_config(config, backbone)
        log = (lambda m: stderr.print(m, highlight=False)) if as_json else console.print
        if matrix:
            result = workflows.reward_matrix(
                pairs, settings, model, data, out, split, log, overwrite
            )
        elif model is None:
            raise TraitforgeError("give --model (a folder written by `traitforge train`)")
        else:
            result = workflows.evaluate_reward(model, pairs, settings, split)
    if as_json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), sort_keys=True) + "\n")
    elif matrix:
        print_matrix(result)
    else:
        print_evaluation(result)


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="Folder written by `traitforge train`.")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
) -> None:
    """Store the reward model's score of every candidate; the next `curate` selects with them
    (scorer 'reward-model.v1': uncertain = reward margin near zero)."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        result = workflows.score(ws, model)
    console.print(
        f"Scored {result.candidates} candidates with {result.model}: " + fmt_counts(result.scores),
        highlight=False,
    )
