"""Data commands: ingest, curate, classifiers, export, audit, status, candidates,
config-template."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from traitforge import __version__
from traitforge.app import workflows
from traitforge.cli._app import (
    ConfigOpt,
    EngineOpt,
    OverwriteOpt,
    WorkspaceOpt,
    app,
    console,
    friendly_errors,
    progress_bars,
)
from traitforge.cli.render import (
    print_agreement,
    print_annotation_progress,
    print_audit,
    print_candidates,
    print_curation,
    print_export,
    print_ingest,
    print_rechecks_recorded,
    print_training,
)
from traitforge.curation.recheck import RECHECK_FILE
from traitforge.curation.sources import FORMATS
from traitforge.exports.audit import FOLDS, MIN_SOURCE_PAIRS, doubtful_sources, verdict_line
from traitforge.schemas import ExportConfig
from traitforge.schemas.config import COPY_FORMATS, parse_strategy
from traitforge.workspace import DEFAULT_WORKSPACE, Workspace
from traitforge.workspace.config_template import config_template as config_template_text


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Input files (or dataset folders).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="Input format: "
            + "; ".join(f"{name}: {f.help}" for name, f in FORMATS.items())
            + "; generate: a prompts file (.jsonl or .csv, prompt column per ingest.mapping): "
            "sample curation.generation.n responses per prompt from a local model or an "
            "OpenAI-compatible endpoint (TRAITFORGE_OPENAI_BASE_URL / _API_KEY)",
        ),
    ],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Store the good rows and quarantine the bad ones with their "
            "reasons, instead of stopping at the first bad row.",
        ),
    ] = False,
) -> None:
    """Read candidate responses into the workspace. Re-running is safe: nothing is duplicated."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        with progress_bars() as bars:
            reports = workflows.ingest(ws, fmt, paths, skip_invalid, bars.file)
    print_ingest(reports)


@app.command()
def curate(
    budget: Annotated[
        int,
        typer.Option(min=1, help="Tasks wanted in this round (tasks already in the round count)."),
    ],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    round_: Annotated[int, typer.Option("--round", min=0, help="Annotation round.")] = 0,
    config: ConfigOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Embed, flag, dedup, score and select the comparisons annotators should see."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        workflows.use_engine(ws, engine.value if engine else None)
        with progress_bars() as bars:
            report = workflows.curate(ws, budget, round_, bars.stage)
    print_curation(report)


classifiers = typer.Typer(
    help="Trait classifiers used to pre-rank candidates.", rich_markup_mode=None
)
app.add_typer(classifiers, name="classifiers")


class LabelOrigin(StrEnum):
    """Where classifier labels come from; as a choice, click lists the values when one is wrong."""

    auto = "auto"
    gold = "gold"
    judgements = "judgements"


@classifiers.command("train")
def classifiers_train(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    origin: Annotated[
        LabelOrigin,
        typer.Option(
            help="Labels: 'gold' (from the data), 'judgements' (annotators), or 'auto' "
            "(judgements when there are any, else gold)."
        ),
    ] = LabelOrigin.auto,
    config: ConfigOpt = None,
) -> None:
    """Train (or retrain) every classifier scorer in curation.scorers, per trait."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        with progress_bars() as bars:
            training = workflows.train_classifiers(ws, origin.value, bars.stage)
    print_training(training.trained)
    for warning in training.warnings:
        console.print(f"warning: {warning}", highlight=False, soft_wrap=True)


# --copy choices, from the config's own list of copy formats.
CopyChoice = StrEnum("CopyChoice", {name: name for name in COPY_FORMATS})


def _check_strategy(strategy: str | None) -> str | None:
    """--strategy is checked before the workspace is opened; the error lists the choices."""
    if strategy is not None:
        try:
            parse_strategy(strategy)
        except ValueError as e:
            raise typer.BadParameter(str(e)) from e
    return strategy


@app.command()
def export(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (new, empty, or an earlier export, which is replaced); "
            "default WORKSPACE/exports/latest.",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help=ExportConfig.model_fields["strategy"].description, callback=_check_strategy
        ),
    ] = None,
    copies: Annotated[
        list[CopyChoice] | None,
        typer.Option("--copy", help="Also write 'parquet' and/or 'jsonl' copies of each split."),
    ] = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Turn the workspace's preferences into a Hugging Face dataset of pairs, with its card."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        report = workflows.export(
            ws, out, strategy, [c.value for c in copies] if copies else None, overwrite
        )
    print_export(report)


@app.command()
def audit(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    folds: Annotated[
        int,
        typer.Option(
            min=2,
            help="Committee members: folds of the prompts, each scored by "
            "a model fitted on the others.",
        ),
    ] = FOLDS,
    min_source_pairs: Annotated[
        int,
        typer.Option(
            min=1,
            help="Pairs a source, and its trait's other sources, need before the source is judged.",
        ),
    ] = MIN_SOURCE_PAIRS,
    limit: Annotated[int, typer.Option(min=0, help="Flagged pairs shown per trait; 0: all.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the audit as JSON (what audit.json holds).")
    ] = False,
    recheck: Annotated[
        bool,
        typer.Option(
            "--recheck",
            help="Also write the flagged pairs to WORKSPACE/recheck.json (replacing it): the "
            "next `curate` sends each one back to annotators once, as a new task first within "
            "its budget; the answers become more votes beside the earlier ones.",
        ),
    ] = False,
) -> None:
    """Audit the latest export's labels: flag pairs a cross-fitted committee confidently
    disagrees with, and say which sources' labels may be inverted or noisy. Writes
    WORKSPACE/audit.json; reads the embeddings `curate` cached."""
    with friendly_errors():
        ws = Workspace.open(workspace, create=False)
        result = workflows.audit(ws, folds, min_source_pairs, recheck)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_audit(result, ws.root / workflows.AUDIT_FILE, limit or None)
        if recheck:
            flagged = sum(len(t.flagged) for t in result.traits.values())
            print_rechecks_recorded(flagged, ws.root / RECHECK_FILE)


@app.command()
def status(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Show what the workspace holds."""
    with friendly_errors():
        ws = Workspace.open(workspace, create=False)
        with ws.store() as store:
            counts = store.counts()
    table = Table(title=f"Workspace {ws.root}")
    table.add_column("records")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    console.print(table)
    with friendly_errors():
        print_annotation_progress(ws)
        if counts["judgements"]:
            print_agreement(workflows.agreement(ws))
    with friendly_errors():
        _print_audit_status(workflows.audit_status(ws))


def _print_audit_status(state: workflows.AuditStatus) -> None:
    """The latest label audit's doubtful sources; source names and paths as plain Text."""
    if state.audit is None:
        console.print(Text("No label audit yet: run `traitforge audit`."), soft_wrap=True)
        return
    doubtful = doubtful_sources(state.audit)
    line = f"Label audit ({state.path}): "
    line += f"{len(doubtful)} source(s) with doubtful labels" if doubtful else "no doubtful source"
    line += f", {sum(len(t.flagged) for t in state.audit.traits.values())} flagged pair(s)"
    if state.stale:
        line += (
            "; STALE: it scored an earlier export, not the latest one; run `traitforge audit` again"
        )
    console.print(Text(line + "."), soft_wrap=True)
    for trait, verdict in doubtful:
        console.print(Text(f"  {verdict_line(trait, verdict)}"), soft_wrap=True)


@app.command("candidates")
def candidates(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="Only this prompt's candidates, in full: its id (the first column of the "
            "listing) or the start of it."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many; 0: all.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per candidate, one per line.")
    ] = False,
) -> None:
    """Show the candidates ingested or generated: prompt, source, model, traits, gold values
    and response, each prompt's together."""
    with friendly_errors():
        ws = Workspace.open(workspace, create=False)
        listing = workflows.candidates(ws, prompt, limit or None)
    if as_json:
        sys.stdout.writelines(c.model_dump_json() + "\n" for c in listing.candidates)
    else:
        print_candidates(listing, ws.root)


@app.command("config-template")
def config_template() -> None:
    """Print the whole default project config, every setting under its description, to start
    your own."""
    sys.stdout.write(config_template_text())


@app.command()
def version() -> None:
    """Print the traitforge version."""
    console.print(__version__)
