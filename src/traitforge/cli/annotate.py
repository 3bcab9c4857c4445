"""Annotation commands: serve, annotators, push, pull, simulate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from traitforge.app import workflows
from traitforge.cli._app import (
    AnswersOpt,
    BackendChoice,
    ConfigOpt,
    WorkspaceOpt,
    app,
    bold,
    console,
    friendly_errors,
    progress_bars,
)
from traitforge.cli.render import print_pull, print_push, print_simulation
from traitforge.schemas.annotation_config import PORTS
from traitforge.workspace import DEFAULT_WORKSPACE, Workspace

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
    backend: Annotated[
        BackendChoice,
        typer.Option(
            help="Which annotation UI to run: the embedded Argilla server, or Label Studio "
            "1.23.2 (its own environment, ~1 GB, is created on first use)."
        ),
    ] = BackendChoice.argilla,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Port on 127.0.0.1 ({PORTS.start}..{PORTS.stop - 1}); default "
            "annotation.argilla.port (6900) for Argilla, a free one for Label Studio.",
            callback=_check_port,
        ),
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the running server.")] = False,
    show_status: Annotated[
        bool, typer.Option("--status", help="Report whether the server is running.")
    ] = False,
) -> None:
    """Run the annotators' web UI (embedded Argilla, or Label Studio) in the background."""
    if backend is BackendChoice.label_studio:
        _serve_label_studio(workspace, port, stop, show_status)
        return
    from traitforge.annotators import server

    with friendly_errors():
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
        console.print(Text.assemble("Already running at ", bold(info.url), f" (pid {info.pid})."))
    else:
        console.print(
            Text.assemble(
                "Argilla is running at ",
                bold(info.url),
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


def _serve_label_studio(workspace: Path, port: int | None, stop: bool, show_status: bool) -> None:
    from traitforge.annotators.label_studio import LabelStudioServer

    with friendly_errors():
        ws = Workspace.open(workspace)
        server = LabelStudioServer(ws)
        if stop:
            stopped = server.stop()
            console.print("Stopped the Label Studio server." if stopped else "Not running.")
            return
        if show_status:
            status = server.status()
            console.print(f"Label Studio server: {status.detail}", highlight=False)
            if not status.running:
                raise typer.Exit(1)
            return
        run = server.start(port, notify=console.print)
    if run.reused:
        console.print(Text.assemble("Already running at ", bold(run.url), f" (pid {run.pid})."))
    else:
        origin = " from the migrated template" if run.from_template else ""
        console.print(
            Text.assemble(
                "Label Studio is running at ",
                bold(run.url),
                f" (pid {run.pid}); started{origin} in {run.startup_s:.1f} s. Log: {run.log}",
            ),
            soft_wrap=True,
        )
    console.print(
        "Owner login: the email, password and API token are in "
        f"{server.paths.credentials} (readable only by you). Stop it with: "
        f"traitforge serve --backend label-studio --stop -w {ws.root}",
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

    with friendly_errors():
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
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        with progress_bars() as bars:
            report = workflows.push(ws, bars.stage)
    print_push(report, ws.root)


@app.command()
def pull(workspace: WorkspaceOpt = DEFAULT_WORKSPACE, config: ConfigOpt = None) -> None:
    """Store the annotators' submitted answers as judgements (only new or edited ones)."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        with progress_bars() as bars:
            report = workflows.pull(ws, bars.stage)
    print_pull(report)


@app.command()
def simulate(
    annotators: Annotated[
        int, typer.Option(min=1, max=50, help="Simulated annotators (accounts sim-1, sim-2, ...).")
    ] = 3,
    workspace: WorkspaceOpt = DEFAULT_WORKSPACE,
    config: ConfigOpt = None,
    answers: AnswersOpt = None,
) -> None:
    """Simulated annotators answer the pending records through Argilla's API, from gold
    labels (or an answer key, --answers) with noise and biases (annotation.simulation).
    Their judgements are marked simulated. For demos and tests only."""
    with friendly_errors():
        ws = Workspace.open(workspace, config)
        key = workflows.answer_key(ws, answers) if answers else None
        with progress_bars() as bars:
            report = workflows.simulate(ws, annotators, bars.stage, key)
    print_simulation(report)
