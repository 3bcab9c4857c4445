"""The closed loop and the demo."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from traitforge.cli._app import (
    AnswersOpt,
    BackendChoice,
    ConfigOpt,
    EngineOpt,
    WorkspaceOpt,
    app,
    bar_logger,
    bold,
    console,
    friendly_errors,
    progress_bars,
)
from traitforge.cli.render import print_ingest, print_loop, print_loop_paths
from traitforge.workspace import DEFAULT_WORKSPACE, Workspace

if TYPE_CHECKING:
    from traitforge.app.loop import DemoResult


@app.command()
def demo(
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    backend: Annotated[
        BackendChoice | None,
        typer.Option(
            help="Annotation backend to run the job on, saved as the workspace's "
            "annotation.backend. Default: the one the config names (argilla unless set)."
        ),
    ] = None,
    fine_tune: Annotated[
        bool,
        typer.Option(
            "--fine-tune",
            help="Fine-tune the reward models (reward.method: fine-tune; about 20 minutes on "
            "2 CPU cores) instead of fitting linear ones on frozen embedding vectors.",
        ),
    ] = False,
) -> None:
    """Run the main job on the bundled real data: ingest, serve the annotation UI (Argilla, or
    Label Studio with --backend label-studio), then two rounds of the loop with simulated
    annotators (select, push, annotate, pull, export, train a reward model, score). The server
    stays up to look at."""
    from traitforge.app import loop

    started = time.perf_counter()
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        with progress_bars() as bars:
            result = loop.demo(
                ws,
                bars.file,
                bars.stage,
                bar_logger(bars),
                backend=backend.value if backend else None,
                fine_tune=fine_tune,
            )
    print_ingest(result.ingests)
    print_loop(result.loop)
    elapsed = time.perf_counter() - started
    console.print(Text.assemble("Workspace: ", bold(ws.root), f"  ({elapsed:.1f} s)"))
    label_studio = result.workspace.config.annotation.backend == BackendChoice.label_studio
    stop = "serve --backend label-studio --stop" if label_studio else "serve --stop"
    console.print(
        Text.assemble(
            "Annotation UI: ",
            bold(result.url),
            f" (still running; stop it with `traitforge {stop} -w {ws.root}`)",
        ),
        soft_wrap=True,
    )
    console.print(demo_logins(result, label_studio), highlight=False, soft_wrap=True)
    print_loop_paths(result.loop)


def demo_logins(result: DemoResult, label_studio: bool) -> str:
    """Where the demo's logins are: traitforge's own server's files, or the existing one's."""
    if result.credentials is None:
        owner = "Owner login: the existing server's own account (its token came from "
        owner += "LABEL_STUDIO_API_KEY)" if label_studio else "ARGILLA_API_KEY)"
    elif label_studio:
        owner = f"Owner login: email, password and API token in {result.credentials} (mode 0600)"
    else:
        owner = f"Owner login: user 'owner', password in {result.credentials} (mode 0600)"
    if label_studio:
        # The open-source edition gives the simulated accounts no login of their own.
        return (
            f"{owner}; the simulated annotators have no login (their answers are posted "
            "with the owner's token)"
        )
    return f"{owner}; simulated annotators' logins in {result.annotators}"


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
            "waits for people, polling Argilla, with live progress (one line per change when "
            "the output is not a terminal).",
        ),
    ] = None,
    config: ConfigOpt = None,
    answers: AnswersOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Rounds of select -> push -> annotate -> pull -> export -> train -> use-model, each later
    round selecting with an ensemble fitted to the answers so far (decisive.v1, the default).
    A round that can select nothing stops the loop with the reason. Stop it at any point
    (Ctrl-C) and run it again to continue."""
    from traitforge.app import loop, workflows

    if answers is not None and simulate is None:
        raise typer.BadParameter(
            "--answers is what simulated annotators answer: add --simulate N (people answer "
            "for themselves)",
            param_hint="--answers",
        )
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        workflows.use_engine(ws, engine.value if engine else None)
        settings = ws.config.loop
        key = workflows.answer_key(ws, answers) if answers else None
        with progress_bars() as bars:
            result = loop.run(
                ws,
                settings.rounds if rounds is None else rounds,
                settings.budget_per_round if budget_per_round is None else budget_per_round,
                simulate,
                bar_logger(bars),
                bars.stage,
                bars.waiting,
                key,
            )
    print_loop(result)
    print_loop_paths(result)
