"""The command line: parse, call one library function, print a summary."""

from __future__ import annotations

import gzip
import io
import json
import sys
import time
import traceback
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from traitforge import __version__, workflows
from traitforge.curation.generation import GenerationReport
from traitforge.curation.ingest import IngestReport
from traitforge.curation.sources import FORMATS
from traitforge.errors import TraitforgeError
from traitforge.exports import ExportReport
from traitforge.reward.report import fmt_ci, fmt_pct
from traitforge.schemas import ExportConfig
from traitforge.schemas.annotation_config import PORTS
from traitforge.schemas.config import EXPORT_FORMATS, parse_strategy
from traitforge.workspace import DEFAULT_WORKSPACE, Workspace
from traitforge.workspace.config_file import default_config_text

if TYPE_CHECKING:
    from traitforge.annotators.agreement import AgreementReport
    from traitforge.annotators.argilla_backend import PullReport, PushReport
    from traitforge.annotators.simulated import SimulationReport
    from traitforge.curation.pipeline import CurationReport
    from traitforge.curation.scorers import TrainResult
    from traitforge.loop import LoopResult

# Help text comes from config descriptions and names like `[/trait]`: printed as written,
# never parsed as rich markup (typer's rich help would crash on it).
app = typer.Typer(
    help="traitforge: build trustworthy reward datasets for behavioral traits.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# Everything printed holds user text (file names, CSV headers, responses, error messages that
# quote them): with markup, `[/x]` crashes and `root:x:0` becomes an emoji. Styles are set
# explicitly with rich.text.Text instead.
console = Console(markup=False, emoji=False, highlight=False)
errors = Console(stderr=True, markup=False, emoji=False, highlight=False)

WorkspaceOpt = Annotated[
    Path, typer.Option("--workspace", "-w", help="Workspace folder (created on first use).")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Project config YAML; saved as the workspace's config. "
        "Default: the workspace's saved config, else the built-in defaults.",
    ),
]


def main() -> None:
    app()


# Reading a file's bytes as gzip or text failed; these errors do not say which file.
_DECODE_ERRORS = (EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error)


@contextmanager
def _friendly_errors() -> Iterator[None]:
    """The last line of defence: what the user can fix becomes one `error:` line (rc 1), and
    Ctrl-C a hint (rc 130). Anything else is a bug and keeps its traceback."""
    try:
        yield
    except TraitforgeError as e:
        _error(str(e))
        raise typer.Exit(1) from e
    except BrokenPipeError:
        raise  # stdout closed by `| head`: click exits quietly
    except (OSError, *_DECODE_ERRORS) as e:
        # A file that cannot be read: missing, a folder, no permission, a truncated or corrupt
        # gzip, not UTF-8. Unhandled, click turns EOFError into a bare "Aborted.".
        cause = (e.strerror if isinstance(e, OSError) else None) or str(e) or type(e).__name__
        path = _file_of(e)
        _error(f"{path}: {cause}" if path else cause)
        raise typer.Exit(1) from e
    except KeyboardInterrupt as e:
        errors.print("interrupted; run the same command again to continue")
        raise typer.Exit(130) from e


def _file_of(error: BaseException) -> str | None:
    """The file an I/O error is about. OSError usually names it; decoding errors do not, so
    take the innermost open file among the frames the error passed through."""
    if isinstance(error, OSError) and error.filename is not None:
        return str(error.filename)
    if not isinstance(error, _DECODE_ERRORS):
        return None  # e.g. a refused connection: no file to blame
    for frame, _ in reversed(list(traceback.walk_tb(error.__traceback__))):
        for value in frame.f_locals.values():
            if isinstance(value, io.IOBase) and isinstance(getattr(value, "name", None), str):
                return value.name
    return None


def _error(message: str) -> None:
    errors.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def _bold(value: object) -> tuple[str, str]:
    """A path or URL to stand out, as a Text.assemble part (never parsed as markup)."""
    return str(value), "bold"


class _Bars:
    """One rich display (rich allows one live display at a time) serving both progress
    protocols: per-file ingest callbacks and per-stage (label, done, total) updates."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.stages: dict[str, TaskID] = {}

    def file(self, label: str, total: int | None) -> workflows.ProgressCallback:
        task = self.bar.add_task(label, total=total)

        def update(done: int, finished: bool = False) -> None:
            # Line counts only estimate rows (headers, multi-line CSV fields).
            self.bar.update(task, completed=done, total=done if finished else total)

        return update

    def stage(self, label: str, done: int, total: int) -> None:
        if label not in self.stages:
            self.stages[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.stages[label], completed=done, total=total)

    def waiting(self, complete: int, needed: int, annotators: dict[str, tuple[int, int]]) -> None:
        """The loop waiting for people: records complete, and each annotator's submitted
        answers against their share of what is needed."""
        self.stage("records complete (needed)", complete, needed)
        for user, (submitted, share) in annotators.items():
            self.stage(f"  {user}: submitted", submitted, share)


@contextmanager
def _progress() -> Iterator[_Bars]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # descriptions are file names
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        yield _Bars(bar)


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
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            reports = workflows.ingest(ws, fmt, paths, skip_invalid, bars.file)
    _print_ingest(reports)


@app.command()
def curate(
    budget: Annotated[
        int,
        typer.Option(min=1, help="Tasks wanted in this round (tasks already in the round count)."),
    ],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    round_: Annotated[int, typer.Option("--round", min=0, help="Annotation round.")] = 0,
    config: ConfigOpt = None,
) -> None:
    """Embed, flag, dedup, score and select the comparisons annotators should see."""
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            report = workflows.curate(ws, budget, round_, bars.stage)
    _print_curation(report)


def _print_curation(report: CurationReport) -> None:
    _print_training(report.trained)
    table = Table(title="Curation")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    table.add_row("candidates", str(report.candidates))
    table.add_row("flagged", _counts(report.flagged))
    table.add_row(
        "duplicates",
        _counts(report.duplicates) + "  (prompt: never paired; "
        "corpus: same response to other prompts, reported only)",
    )
    table.add_row("scores", _counts(report.scored))
    table.add_row("new tasks", _counts(report.new_tasks))
    table.add_row(
        f"tasks in round {report.round}", f"{report.tasks_in_round} of {report.budget} wanted"
    )
    console.print(table)


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
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            training = workflows.train_classifiers(ws, origin.value, bars.stage)
    _print_training(training.trained)
    for warning in training.warnings:
        console.print(f"warning: {warning}", highlight=False, soft_wrap=True)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "none"


def _print_training(results: list[TrainResult]) -> None:
    if not results:
        return
    table = Table(title="Trait classifiers (cross-validated by prompt)")
    for column in ("scorer", "trait", "examples", "positives", "AUROC", "accuracy", "Brier"):
        table.add_column(column, justify="left" if column in ("scorer", "trait") else "right")
    for r in results:
        m = r.metrics
        table.add_row(
            r.path.parent.name,
            r.trait,
            str(r.examples),
            str(r.positives),
            f"{m['auroc']:.3f}",
            f"{m['accuracy']:.3f}",
            f"{m['brier']:.3f}",
        )
    console.print(table)


# --copy choices, from the config's own list of formats.
CopyFormat = StrEnum("CopyFormat", {name: name for name in EXPORT_FORMATS})
OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Also replace an --out folder holding traitforge's other kind of output (a "
        "dataset export instead of reward models, or the reverse). A folder traitforge did "
        "not write, a workspace, and the files a workspace keeps are never replaced.",
    ),
]


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
        list[CopyFormat] | None,
        typer.Option("--copy", help="Also write 'parquet' and/or 'jsonl' copies of each split."),
    ] = None,
    overwrite: OverwriteOpt = False,
    config: ConfigOpt = None,
) -> None:
    """Turn the workspace's preferences into a Hugging Face dataset of pairs, with its card."""
    formats = [c.value for c in copies] if copies else None
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        report = workflows.export(ws, out, strategy, formats, overwrite)
    _print_export(report)


BackboneOpt = Annotated[
    str | None,
    typer.Option(help="Backbone model; default reward.backbone of the config (all-MiniLM-L6-v2)."),
]
RewardConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project config YAML whose `reward` section applies."),
]


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
    the test split, and write models, card and report to OUT. Multi-GPU:
    `accelerate launch -m traitforge.cli train ...`."""
    with _friendly_errors():
        settings = workflows.reward_config(config, backbone)
        run = workflows.train_reward(
            data, out, settings, lambda m: console.print(m, highlight=False), overwrite
        )
    for fit in run.fits:
        console.print(
            f"{fit.name}: {fit.pairs} pairs in {fit.seconds:.1f} s "
            f"({fit.pairs_per_second:.1f} pairs/s, {fit.device}, {fit.precision}), "
            f"final loss {fit.train_loss:.4f}",
            highlight=False,
        )
    if run.evaluation:
        _print_evaluation(run.evaluation)
    console.print(Text.assemble("Models: ", _bold(run.out), "\nReport: ", _bold(run.report)))


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
    with _friendly_errors():
        if pairs is None:
            raise TraitforgeError("give --pairs (a JSONL file or a dataset folder)")
        settings = workflows.reward_config(config, backbone)
        log = (lambda m: errors.print(m, highlight=False)) if as_json else console.print
        if matrix:
            result = workflows.reward_matrix(
                pairs, settings, model, data, out, split, log, overwrite
            )
        elif model is None:
            raise TraitforgeError("give --model (a folder written by `traitforge train`)")
        else:
            result = workflows.evaluate_reward(model, pairs, settings, split)
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    elif matrix:
        _print_matrix(result)
    else:
        _print_evaluation(result)


def _pct(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "n/a"
    return fmt_pct(value) + (f" {fmt_ci(ci)}" if ci else "")


def _print_evaluation(result: dict) -> None:
    table = Table(title=f"Reward model on {result['pairs']} pairs")
    for column in ("trait", "pairs", "accuracy (CI)", "always-longer"):
        table.add_column(column, justify="left" if column == "trait" else "right")
    shortcuts = result["shortcuts"]
    for trait, row in result["per_trait"].items():
        table.add_row(
            trait,
            str(row["pairs"]),
            _pct(row["accuracy"], row["accuracy_ci"]),
            _pct(row["length_baseline"]),
        )
    table.add_row(
        "all",
        str(result["pairs"]),
        _pct(result["accuracy"], result["accuracy_ci"]),
        _pct(shortcuts["length_baseline_accuracy"]),
    )
    console.print(table)
    fmt = shortcuts["format"]
    console.print(
        f"Chosen is the shorter answer: {_pct(shortcuts['accuracy_chosen_shorter'])} accuracy "
        f"on {shortcuts['chosen_shorter_pairs']} pairs; Spearman(reward, length) "
        f"{shortcuts['length_reward_spearman']:.3f}\n"
        + "\n".join(
            f"Adding {name}: reward shift {v['mean_shift']:+.3f} sd, flips {v['flip_rate']:.1%}"
            for name, v in fmt.items()
        )
        + f"\nCalibration: ECE {result['calibration']['ece']:.3f}, "
        f"Brier {result['calibration']['brier']:.3f}",
        highlight=False,
    )
    if result.get("skipped"):
        console.print("Skipped, not scored: " + _counts(result["skipped"]), highlight=False)
    if "report" in result:
        console.print(Text.assemble("Report: ", _bold(result["report"])))


def _print_matrix(result: dict) -> None:
    table = Table(title="Cross-trait generalization (rows: model, columns: test pairs)")
    table.add_column("model")
    for trait in result["traits"]:
        table.add_column(trait, justify="right")
    for name in result["models"]:
        cells = result["cells"][name]
        table.add_row(name, *(_pct(cells[t]["accuracy"]) for t in result["traits"]))
    console.print(table)
    console.print(Text.assemble("Report: ", _bold(result["report"])))


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="Folder written by `traitforge train`.")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
) -> None:
    """Store the reward model's score of every candidate; the next `curate` selects with them
    (scorer 'reward-model.v1': uncertain = reward margin near zero)."""
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        result = workflows.score(ws, model)
    console.print(
        f"Scored {result.candidates} candidates with {result.model}: {_counts(result.scores)}",
        highlight=False,
    )


@app.command()
def demo(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
) -> None:
    """Run the main job on the bundled real data: ingest, serve Argilla, then two rounds of
    the loop with simulated annotators (select, push, annotate, pull, export, train a reward
    model, score). The server stays up to look at."""
    from traitforge import loop

    started = time.perf_counter()
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            result = loop.demo(ws, bars.file, bars.stage, _log(bars))
    _print_ingest(result.ingests)
    _print_loop(result.loop)
    elapsed = time.perf_counter() - started
    console.print(Text.assemble("Workspace: ", _bold(ws.root), f"  ({elapsed:.1f} s)"))
    console.print(
        Text.assemble(
            "Annotation UI: ",
            _bold(result.url),
            f" (still running; stop it with `traitforge serve --stop -w {ws.root}`)",
        ),
        soft_wrap=True,
    )
    console.print(
        f"Owner login: user 'owner', password in {result.credentials} (mode 0600); "
        f"simulated annotators' logins in {result.annotators}",
        highlight=False,
        soft_wrap=True,
    )
    _print_loop_paths(result.loop)


@app.command("loop")
def loop_(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    rounds: Annotated[
        int | None, typer.Option(min=1, max=100, help="Rounds to reach (default loop.rounds).")
    ] = None,
    budget_per_round: Annotated[
        int | None,
        typer.Option(min=1, help="Tasks selected per round (default loop.budget_per_round)."),
    ] = None,
    simulate: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="This many simulated annotators answer (demos, tests); without it the loop "
            "waits for people, polling Argilla.",
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Rounds of select -> push -> annotate -> pull -> export -> train -> score, each later
    round selecting by the reward model's uncertainty. Stop it at any point (Ctrl-C) and run
    it again to continue."""
    from traitforge import loop

    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        settings = ws.config.loop
        with _progress() as bars:
            result = loop.run(
                ws,
                settings.rounds if rounds is None else rounds,
                settings.budget_per_round if budget_per_round is None else budget_per_round,
                simulate,
                _log(bars),
                bars.stage,
                bars.waiting,
            )
    _print_loop(result)
    _print_loop_paths(result)


def _log(bars: _Bars) -> Callable[[str], None]:
    return lambda message: bars.bar.console.print(message, highlight=False)


def _print_loop(result: LoopResult) -> None:
    table = Table(title="Rounds")
    columns = ("round", "selected with", "tasks", "labels", "pairs", "RM accuracy", "longer wins")
    for column in columns:
        table.add_column(column, justify="left" if column == "selected with" else "right")
    for r in result.rounds:
        evaluation = r.evaluation or {}
        shortcuts = evaluation.get("shortcuts", {})
        table.add_row(
            str(r.round),
            ", ".join(r.selected_with) or "-",
            str(r.tasks),
            str(r.labels),
            str(sum(r.pairs.values())),
            _pct(evaluation.get("accuracy"), evaluation.get("accuracy_ci")),
            _pct(shortcuts.get("length_baseline_accuracy")),
        )
    console.print(table)


def _print_loop_paths(result: LoopResult) -> None:
    console.print(Text.assemble("Dataset: ", _bold(result.dataset)), soft_wrap=True)
    console.print(Text.assemble("Reward model: ", _bold(result.model or "none yet")))
    console.print(Text.assemble("Report: ", _bold(result.report)), soft_wrap=True)


@app.command()
def status(workspace: WorkspaceOpt = DEFAULT_WORKSPACE) -> None:
    """Show what the workspace holds."""
    with _friendly_errors():
        ws = Workspace.open(workspace, create=False)
        with ws.store() as store:
            counts = store.counts()
    table = Table(title=f"Workspace {ws.root}")
    table.add_column("records")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    console.print(table)
    with _friendly_errors():
        _print_annotation_progress(ws)
        if counts["judgements"]:
            _print_agreement(workflows.agreement(ws))


def _alpha(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _print_agreement(report: AgreementReport | None) -> None:
    """Krippendorff's alpha per trait, and each annotator's agreement and gold accuracy."""
    if report is None:
        return
    table = Table(title="Annotator agreement (Krippendorff's alpha)")
    for column in ("trait", "preference (nominal)", "units", "ratings (ordinal)", "units"):
        table.add_column(column, justify="left" if column == "trait" else "right")
    for t in report.traits.values():
        table.add_row(
            t.trait,
            _alpha(t.preference_alpha),
            str(t.preference_units),
            _alpha(t.rating_alpha),
            str(t.rating_units),
        )
    table.add_row("overall", _alpha(report.preference_alpha), "", _alpha(report.rating_alpha), "")
    console.print(table)
    people = Table(title="Annotators")
    for column in ("annotator", "answers", "agreement with consensus", "gold accuracy", "flag"):
        people.add_column(column, justify="left" if column in ("annotator", "flag") else "right")
    for a in report.annotators.values():
        agreement = "n/a" if a.agreement is None else f"{a.agreement:.2f} of {a.compared}"
        gold = "n/a" if a.gold_accuracy is None else f"{a.gold_accuracy:.2f} of {a.gold_tasks}"
        people.add_row(
            a.annotator_id,
            str(a.answers),
            agreement,
            gold,
            "; ".join(a.reasons) if a.flagged else "",
        )
    console.print(people)


@app.command("config-template")
def config_template() -> None:
    """Print the default project config (traits, rubrics, mappings) to start your own."""
    sys.stdout.write(default_config_text())


@app.command()
def version() -> None:
    """Print the traitforge version."""
    console.print(__version__)


# -- the embedded Argilla server: `serve` and `annotators add` ----------------------------
# (imported lazily: the other commands never need httpx or the server machinery)


def _check_port(port: int | None) -> int | None:
    """--port is checked before the workspace is opened, against annotation.argilla.port's
    bounds; typer's own range check would not name the value given."""
    if port is not None and port not in PORTS:
        raise typer.BadParameter(
            f"{port} is not a port the embedded server can use; expected {PORTS.start}.."
            f"{PORTS.stop - 1} (ports below {PORTS.start} need root)"
        )
    return port


@app.command()
def serve(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Port on 127.0.0.1 ({PORTS.start}..{PORTS.stop - 1}); default "
            "annotation.argilla.port (6900).",
            callback=_check_port,
        ),
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the running server.")] = False,
    show_status: Annotated[
        bool, typer.Option("--status", help="Report whether the server is running.")
    ] = False,
) -> None:
    """Run the annotators' web UI (an embedded Argilla server) in the background."""
    from traitforge.annotators import server

    with _friendly_errors():
        ws = Workspace.open(workspace)
        if stop:
            stopped = server.stop_server(ws)
            console.print("Stopped the embedded Argilla server." if stopped else "Not running.")
            return
        if show_status:
            status = server.server_status(ws)
            console.print(f"Embedded Argilla server: {status.detail}", highlight=False)
            if not status.running:
                raise typer.Exit(1)
            return
        info = server.ensure_server(ws, port, notify=console.print)
        paths = server.ServerPaths.of(ws)
    if info.reused:
        console.print(Text.assemble("Already running at ", _bold(info.url), f" (pid {info.pid})."))
    else:
        console.print(
            Text.assemble(
                "Argilla is running at ",
                _bold(info.url),
                f" (pid {info.pid}); started in {info.startup_s:.1f} s. "
                f"Redis: {info.redis}. Log: {info.log}",
            ),
            soft_wrap=True,
        )
    console.print(
        f"Owner login: user 'owner', password in {paths.credentials} (readable only by you). "
        f"Stop it with: traitforge serve --stop -w {ws.root}",
        highlight=False,
        soft_wrap=True,
    )


annotators_app = typer.Typer(
    help="Annotator accounts and annotation backends.", rich_markup_mode=None
)
app.add_typer(annotators_app, name="annotators")


@annotators_app.command("add")
def annotators_add(
    names: Annotated[list[str], typer.Argument(help="Usernames (lower case, digits, - and _).")],
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
) -> None:
    """Create annotator accounts with generated passwords (re-running keeps them)."""
    from traitforge.annotators import server

    with _friendly_errors():
        ws = Workspace.open(workspace)
        accounts = server.add_annotators(ws, names, notify=console.print)
        connection = server.owner_connection(ws, start=False)
    console.print(
        f"{len(accounts)} annotator account(s) in Argilla workspace "
        f"'{ws.config.annotation.argilla.workspace}': " + ", ".join(a.username for a in accounts),
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Annotators log in at {connection.api_url} with their username; their passwords are "
        f"in {server.annotators_file(ws)} (readable only by you): give each person theirs "
        "privately.",
        highlight=False,
        soft_wrap=True,
    )


# -- annotation in Argilla: `push`, `pull`, `simulate` ----------------------------------------


@app.command()
def push(workspace: WorkspaceOpt = DEFAULT_WORKSPACE, config: ConfigOpt = None) -> None:
    """Send the comparison tasks to Argilla (one dataset per trait and k). Re-running, also
    after a crash, sends only what the server lacks."""
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            report = workflows.push(ws, bars.stage)
    _print_push(report, ws.root)


def _print_push(report: PushReport, root: Path) -> None:
    if not report.datasets and not report.skipped:
        console.print(
            f"Nothing to push: {root} holds no comparison tasks; select some with "
            f"`traitforge curate --budget N -w {root}`",
            soft_wrap=True,
        )
        return
    table = Table(title=f"Push to {report.url}")
    for column in ("dataset", "tasks", "already there", "sent", "without vector"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for d in report.datasets:
        table.add_row(d.dataset, str(d.tasks), str(d.present), str(d.sent), str(d.without_vector))
    console.print(table)
    if report.skipped:
        console.print("Not pushed: " + _counts(dict(report.skipped)), highlight=False)


@app.command()
def pull(workspace: WorkspaceOpt = DEFAULT_WORKSPACE, config: ConfigOpt = None) -> None:
    """Store the annotators' submitted answers as judgements (only new or edited ones)."""
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            report = workflows.pull(ws, bars.stage)
    _print_pull(report)


def _print_pull(report: PullReport) -> None:
    table = Table(title=f"Pull from {report.url}")
    table.add_column("judgements")
    table.add_column("count", justify="right")
    for label, n in (
        ("new", report.new),
        ("edited since the last pull", report.changed),
        ("unchanged (pulled before)", report.unchanged),
    ):
        table.add_row(label, str(n))
    for status, n in sorted(report.ignored.items()):
        table.add_row(f"ignored: {status}", str(n))
    for reason, n in sorted(report.dropped.items()):
        table.add_row(f"dropped: {reason}", str(n))
    console.print(table)
    if report.missing_datasets:
        console.print(
            "Not on the server (run `traitforge push`): " + ", ".join(report.missing_datasets),
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def simulate(
    annotators: Annotated[
        int, typer.Option(min=1, max=50, help="Simulated annotators (accounts sim-1, sim-2, ...).")
    ] = 3,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
) -> None:
    """Simulated annotators answer the pending records through Argilla's API, from gold
    labels with noise and biases (annotation.simulation). Their judgements are marked
    simulated. For demos and tests only."""
    with _friendly_errors():
        ws = Workspace.open(workspace, config)
        with _progress() as bars:
            report = workflows.simulate(ws, annotators, bars.stage)
    _print_simulation(report)


def _print_simulation(report: SimulationReport) -> None:
    table = Table(title=f"Simulated annotators at {report.url}")
    table.add_column("annotator")
    table.add_column("answers", justify="right")
    for name, n in sorted(report.answered.items()):
        table.add_row(name, str(n))
    console.print(table)
    console.print(
        "Behaviour: " + _counts(dict(report.behaviour)) + ". Run `traitforge pull` to store "
        "the answers.",
        highlight=False,
        soft_wrap=True,
    )
    if report.skipped:
        console.print("Not answered: " + _counts(dict(report.skipped)), highlight=False)


def _print_annotation_progress(ws: Workspace) -> None:
    progress = workflows.annotation_progress(ws)
    if isinstance(progress, str):
        console.print(f"Argilla progress unavailable: {progress}", highlight=False, soft_wrap=True)
        return
    for d in progress:
        table = Table(
            title=f"Argilla {d.dataset}: {d.completed} of {d.records} records completed, "
            f"{d.pending} pending"
        )
        for column in ("annotator", "submitted", "draft", "discarded"):
            table.add_column(column, justify="left" if column == "annotator" else "right")
        for name, counts in sorted(d.annotators.items()):
            table.add_row(
                name, str(counts["submitted"]), str(counts["draft"]), str(counts["discarded"])
            )
        console.print(table)


def _print_ingest(reports: list[IngestReport]) -> None:
    table = Table(title="Ingest", caption="rows: input rows; new / present: candidates")
    table.add_column("file", overflow="fold")
    table.add_column("format")
    for column in ("rows", "new", "present", "rejected", "skipped"):
        table.add_column(column, justify="right")
    for r in reports:
        table.add_row(
            r.path.name,
            r.format,
            str(r.rows_read),
            str(r.new),
            str(r.present),
            str(r.rows_rejected),
            str(r.rows_skipped),
        )
    console.print(table)
    for r in reports:
        for warning in r.warnings:
            console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
        if isinstance(r, GenerationReport):
            console.print(
                f"{r.path.name}: {r.model} ({r.backend}) wrote {r.samples_generated} of "
                f"{r.samples_requested} samples; {r.samples_done_before} were done before, "
                f"{r.empty} were empty",
                highlight=False,
                soft_wrap=True,
            )
        if r.quarantine:
            reasons = ", ".join(f"{k} ({n})" for k, n in sorted(r.reasons.items()))
            console.print(
                f"{r.path.name}: set aside: {reasons}. Details: {r.quarantine}",
                highlight=False,
                soft_wrap=True,
            )


def _print_export(report: ExportReport) -> None:
    table = Table(title="Export")
    for column in ("trait", "origin", "train", "test"):
        table.add_column(column, justify="right" if column in ("train", "test") else "left")
    for trait, counts in report.counts.items():
        table.add_row(
            trait,
            report.origins.get(trait, "none"),
            str(counts.get("train", 0)),
            str(counts.get("test", 0)),
        )
    console.print(table)
    if report.drops:
        console.print(
            "Dropped: " + ", ".join(f"{k} ({n})" for k, n in sorted(report.drops.items())),
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        Text.assemble(
            "Dataset: ",
            _bold(report.out),
            f" ({report.total} pairs; load with datasets.load_from_disk)",
        ),
        soft_wrap=True,
    )


if __name__ == "__main__":  # `python -m traitforge.cli` and `accelerate launch -m traitforge.cli`
    main()
