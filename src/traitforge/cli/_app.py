"""The typer app, its shared options, the friendly-error wrapper and the progress display."""

from __future__ import annotations

import gzip
import io
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
from rich.text import Text

from traitforge.curation.progress import FileProgress
from traitforge.errors import TraitforgeError
from traitforge.schemas.curation_config import ENGINES, CurationConfig

if TYPE_CHECKING:
    from traitforge.app.loop import WaitState

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
stderr = Console(stderr=True, markup=False, emoji=False, highlight=False)


# curation.engine's values, as a command-line choice: click lists them when one is wrong.
EngineChoice = StrEnum("EngineChoice", {name: name for name in ENGINES})
EngineOpt = Annotated[
    EngineChoice | None,
    typer.Option(
        "--engine",
        help=CurationConfig.model_fields["engine"].description
        + " Default: curation.engine of the config (local).",
    ),
]


class BackendChoice(StrEnum):
    """annotation.backend's values, as a command-line choice."""

    argilla = "argilla"
    label_studio = "label-studio"


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
def friendly_errors() -> Iterator[None]:
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
        stderr.print("interrupted; run the same command again to continue")
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
    stderr.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)


def bold(value: object) -> tuple[str, str]:
    """A path or URL to stand out, as a Text.assemble part (never parsed as markup)."""
    return str(value), "bold"


class _Bars:
    """One rich display (rich allows one live display at a time) serving both progress
    protocols: per-file ingest callbacks and per-stage (label, done, total) updates."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.stages: dict[str, TaskID] = {}
        self.waited: str | None = None  # the last waiting line printed

    def file(self, label: str, total: int | None) -> FileProgress:
        task = self.bar.add_task(label, total=total)

        def update(done: int, finished: bool = False) -> None:
            # Line counts only estimate rows (headers, multi-line CSV fields).
            self.bar.update(task, completed=done, total=done if finished else total)

        return update

    def stage(self, label: str, done: int, total: int) -> None:
        if label not in self.stages:
            self.stages[label] = self.bar.add_task(label, total=total)
        self.bar.update(self.stages[label], completed=done, total=total)

    def waiting(self, state: WaitState) -> None:
        """The loop waiting for people. On a terminal, live bars: the round's records
        complete, and each annotator's submitted answers against their share. Elsewhere (a
        log, a pipe), where bars show only once they end, one line each time it changes."""
        if not self.bar.console.is_terminal:
            line = state.line()
            if line != self.waited:
                self.bar.console.print(line, highlight=False, soft_wrap=True)
                self.waited = line
            return
        self.stage(
            f"round {state.round}: records complete ({state.needed} needed)",
            state.complete,
            state.records,
        )
        for user, (submitted, share) in state.annotators.items():
            self.stage(f"round {state.round}:   {user}: submitted", submitted, share)


@contextmanager
def progress_bars() -> Iterator[_Bars]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),  # descriptions are file names
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        yield _Bars(bar)


OverwriteOpt = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Also replace an --out folder holding traitforge's other kind of output (a "
        "dataset export instead of reward models, or the reverse). A folder traitforge did "
        "not write, a workspace, and the files a workspace keeps are never replaced.",
    ),
]


BackboneOpt = Annotated[
    str | None,
    typer.Option(help="Backbone model; default reward.backbone of the config (all-MiniLM-L6-v2)."),
]
RewardConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Project config YAML whose `reward` section applies."),
]


AnswersOpt = Annotated[
    Path | None,
    typer.Option(
        "--answers",
        help="Answer from this answer key instead of gold labels, so a workspace without gold "
        "can be simulated: a JSONL file kept outside the workspace, one candidate a line, "
        '{"prompt": ..., "response": ..., "values": {"sycophancy": 1, "honesty": 4}}, matched '
        "by prompt (text or chat messages) and response text. Values are ratings on each "
        "trait's scale in the trait's own direction, like gold labels (for a negative-polarity "
        "trait such as sycophancy on a 1..5 scale, 5 is the most sycophantic); its polarity "
        "turns them into preferences. A task with a candidate the key has no value for is left "
        "unanswered and counted.",
    ),
]


def bar_logger(bars: _Bars) -> Callable[[str], None]:
    return lambda message: bars.bar.console.print(message, highlight=False)
