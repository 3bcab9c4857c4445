"""The command line's printing and its last line of defence, driven through the real typer app.

User text (file names, CSV headers, responses quoted in errors) is printed as written, never as
rich markup or emoji codes; every `--help` prints; an unreadable file is one `error:` line that
names it, Ctrl-C a short hint; a genuine bug keeps its traceback.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from traitforge.cli import app
from traitforge.cli._app import bar_logger, friendly_errors, progress_bars
from traitforge.workspace import Workspace

runner = CliRunner()

# `[/x]` is a closing tag to rich markup (a crash), `:x:` an emoji code (a cross mark).
MARKUP = "a [/x] b"
EMOJI = "root:x:0"


def _assert_error_line(result: Result, *expected: str) -> None:
    """rc 1, no traceback, one `error:` line holding each expected text as written."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert result.stderr.startswith("error: "), result.stderr
    message = " ".join(result.stderr.split())  # soft-wrapped or not, compare the words
    for text in expected:
        assert " ".join(text.split()) in message, (text, result.stderr)


def test_ingest_prints_file_names_and_stores_text_as_written(tmp_path: Path) -> None:
    source = tmp_path / f"{EMOJI} [bold]in.csv"
    source.write_text(f"prompt,response,{MARKUP}\nWho wrote /etc/passwd?,{EMOJI} {MARKUP},1\n")
    result = runner.invoke(app, ["ingest", "-f", "csv", "-w", str(tmp_path / "ws"), str(source)])
    assert result.exit_code == 0, result.output
    assert source.name in result.stdout  # not "root❌0 in.csv"
    with Workspace.open(tmp_path / "ws").store() as store:
        (candidate,) = store.candidates()
    assert candidate.response == f"{EMOJI} {MARKUP}"
    assert candidate.metadata == {MARKUP: "1"}


def test_error_quoting_a_csv_header_prints_it_as_written(tmp_path: Path) -> None:
    source = tmp_path / "answers.csv"
    source.write_text(f"prompt,{MARKUP}\nWho wrote /etc/passwd?,{EMOJI}\n")
    result = runner.invoke(app, ["ingest", "-f", "csv", "-w", str(tmp_path / "ws"), str(source)])
    _assert_error_line(result, "field 'response'", f"columns ['{MARKUP}', 'prompt']")


@pytest.mark.parametrize("text", [MARKUP, EMOJI], ids=["closing-tag", "emoji-code"])
def test_error_quoting_a_value_prints_it_as_written(tmp_path: Path, text: str) -> None:
    source = tmp_path / "answers.jsonl"
    source.write_text(json.dumps({"prompt": {"user": text}, "response": "fine"}) + "\n")
    result = runner.invoke(app, ["ingest", "-f", "jsonl", "-w", str(tmp_path / "ws"), str(source)])
    _assert_error_line(result, "line 1, field 'prompt'", repr({"user": text}))


@pytest.mark.parametrize(
    "parts", [("a[", "x].jsonl"), (f"{EMOJI}.jsonl",)], ids=["closing-tag", "emoji-code"]
)
def test_error_naming_a_path_prints_it_as_written(tmp_path: Path, parts: tuple[str, ...]) -> None:
    missing = tmp_path.joinpath(*parts)  # "a[" / "x].jsonl" reads ".../a[/x].jsonl"
    result = runner.invoke(app, ["ingest", "-f", "jsonl", "-w", str(tmp_path / "ws"), str(missing)])
    _assert_error_line(result, str(missing))


def test_progress_descriptions_and_loop_messages_print_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress_bars() as bars:
        bars.stage(f"{MARKUP} {EMOJI}", 1, 2)  # a stage named after a file or an annotator
        bar_logger(bars)(f"round 1: {MARKUP} {EMOJI}")
    out = capsys.readouterr().out
    assert f"{MARKUP} {EMOJI} " in out and f"round 1: {MARKUP} {EMOJI}\n" in out


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command, as the words that run it."""
    paths = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        paths += _command_paths(sub, (*path, name))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def test_the_walk_finds_the_nested_commands() -> None:
    assert {("eval",), ("classifiers", "train"), ("annotators", "add")} <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "traitforge")
def test_every_help_prints(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.exception is None and "Traceback" not in result.output
    assert "Usage:" in result.stdout and " ".join(path) in result.stdout, result.stdout


def test_eval_help_shows_its_bracketed_text() -> None:
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code == 0, result.output
    assert "prompt/chosen/rejected[/trait]" in " ".join(result.stdout.split())


def test_a_folder_given_as_config_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    source = tmp_path / "answers.jsonl"
    source.write_text(json.dumps({"prompt": "p", "response": "r"}) + "\n")
    result = runner.invoke(
        app,
        ["ingest", "-f", "jsonl", "-w", str(tmp_path / "ws"), "-c", str(folder), str(source)],
    )
    _assert_error_line(result, str(folder))


def test_a_truncated_gzip_is_named_not_aborted(tmp_path: Path) -> None:
    rows = "".join(json.dumps({"prompt": f"p{i}", "response": "r"}) + "\n" for i in range(500))
    source = tmp_path / "answers.jsonl.gz"
    source.write_bytes(gzip.compress(rows.encode())[:80])
    result = runner.invoke(app, ["ingest", "-f", "jsonl", "-w", str(tmp_path / "ws"), str(source)])
    assert "Aborted" not in result.output
    _assert_error_line(result, str(source))


# The wrapper itself, around real reads that fail the way a user's files do.
probe = typer.Typer(pretty_exceptions_enable=False)


@probe.command()
def read(path: Path, how: str) -> None:
    with friendly_errors():
        if how == "gzip":
            with gzip.open(path, "rt", encoding="utf-8") as f:
                f.read()
        elif how == "text":
            path.read_text(encoding="utf-8")
        elif how == "ctrl-c":
            raise KeyboardInterrupt
        else:
            {}[how]  # a bug: no user did anything wrong


ROWS = b'{"prompt": "p", "response": "r"}\n' * 500


def _truncated_gzip(path: Path) -> None:
    path.write_bytes(gzip.compress(ROWS)[:80])


def _corrupt_gzip(path: Path) -> None:
    data = bytearray(gzip.compress(ROWS))
    data[20:30] = b"\xff" * 10
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("make", "how", "cause"),
    [
        (_truncated_gzip, "gzip", "Compressed file ended before the end-of-stream marker"),
        (_corrupt_gzip, "gzip", "Error -3 while decompressing data"),
        (lambda p: p.write_text("plain text\n"), "gzip", "Not a gzipped file"),
        (
            lambda p: p.write_bytes("café\n".encode("latin-1")),
            "text",
            "'utf-8' codec can't decode byte 0xe9",
        ),
        (lambda p: p.mkdir(), "text", "Is a directory"),
        (lambda p: None, "text", "No such file or directory"),
    ],
    ids=[
        "EOFError",
        "zlib.error",
        "BadGzipFile",
        "UnicodeDecodeError",
        "IsADirectoryError",
        "FileNotFound",
    ],
)
def test_an_unreadable_file_is_one_error_line_naming_it(
    tmp_path: Path, make: Callable[[Path], object], how: str, cause: str
) -> None:
    path = tmp_path / "a[" / f"x] {EMOJI}.jsonl.gz"  # ".../a[/x] root:x:0.jsonl.gz"
    path.parent.mkdir()
    make(path)
    result = runner.invoke(probe, [str(path), how])
    _assert_error_line(result, f"{path}: {cause}")


def test_ctrl_c_says_how_to_continue() -> None:
    result = runner.invoke(probe, ["-", "ctrl-c"])
    assert result.exit_code == 130
    assert result.stderr == "interrupted; run the same command again to continue\n"


def test_a_bug_keeps_its_traceback() -> None:
    # Guard: the wrapper must not grow a blanket `except Exception` that hides bugs.
    result = runner.invoke(probe, ["-", "bug"])
    assert isinstance(result.exception, KeyError)


def test_origin_is_a_choice_that_lists_its_values(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["classifiers", "train", "-w", str(tmp_path / "ws"), "--origin", "bogus"]
    )
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--origin'" in result.stderr
    assert "'auto', 'gold', 'judgements'" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_status_of_a_missing_workspace_is_an_error_line_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere"
    result = runner.invoke(app, ["status", "-w", str(missing)])
    _assert_error_line(result, f"no workspace store in {missing}; run `traitforge ingest` first")
    assert not missing.exists()


@pytest.mark.parametrize("command", [["status"], ["ingest", "-f", "jsonl", "rows.jsonl"]])
def test_a_workspace_that_is_a_file_is_named_as_one(tmp_path: Path, command: list[str]) -> None:
    taken = tmp_path / "taken.txt"
    taken.write_text("mine\n")
    result = runner.invoke(app, [*command, "-w", str(taken)])
    _assert_error_line(result, f"workspace {taken} is a file, not a workspace folder")
    assert taken.read_text() == "mine\n"


def test_a_workspace_below_a_file_is_an_error_line(tmp_path: Path) -> None:
    (tmp_path / "taken.txt").write_text("mine\n")
    below = tmp_path / "taken.txt" / "ws"
    result = runner.invoke(app, ["curate", "--budget", "5", "-w", str(below)])
    _assert_error_line(result, f"cannot create the workspace folder {below}: Not a directory")


@pytest.mark.parametrize("port", ["99999", "0", "1023"])
def test_a_port_out_of_range_is_refused_naming_it(tmp_path: Path, port: str) -> None:
    result = runner.invoke(app, ["serve", "--port", port, "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '--port': {port} is not a port" in result.stderr
    assert "1024..65535" in result.stderr
    assert not (tmp_path / "ws").exists()  # refused while parsing, before anything starts


@pytest.mark.parametrize("option", ["--rounds", "--budget-per-round", "--simulate"])
def test_loop_refuses_zero_instead_of_taking_the_default(tmp_path: Path, option: str) -> None:
    result = runner.invoke(app, ["loop", option, "0", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.stderr
    assert not (tmp_path / "ws").exists()


def test_push_with_no_tasks_says_how_to_get_some(workspace: Workspace) -> None:
    # An external server nobody listens on: with nothing to send, no request is made.
    env = {"ARGILLA_API_URL": "http://127.0.0.1:9", "ARGILLA_API_KEY": "not-a-key"}
    result = runner.invoke(app, ["push", "-w", str(workspace.root)], env=env)
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert f"Nothing to push: {workspace.root} holds no comparison tasks" in said
    assert "`traitforge curate --budget N" in said


def test_ingest_says_which_columns_became_metadata_and_which_traits_were_restated(
    tmp_path: Path,
) -> None:
    config = tmp_path / "project.yaml"
    config.write_text("ingest:\n  mapping:\n    trait: trait\n", encoding="utf-8")
    source = tmp_path / "rows.jsonl"
    rows = [
        {"prompt": "Can pigs fly?", "response": "No.", "trait": "honesty", "topic": MARKUP},
        {"prompt": "Can pigs fly?", "response": "Yes.", "trait": "honesty", "reviewer": "ann"},
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ws = str(tmp_path / "ws")

    first = runner.invoke(app, ["ingest", "-f", "jsonl", "-w", ws, "-c", str(config), str(source)])
    assert first.exit_code == 0, first.output
    said = " ".join(first.stdout.split())
    assert "rows.jsonl: columns kept as metadata: topic, reviewer" in said
    assert "restated" not in said and "other traits" not in said

    rows[1]["trait"] = ["honesty", "harmlessness"]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    again = runner.invoke(app, ["ingest", "-f", "jsonl", "-w", ws, str(source)])
    assert again.exit_code == 0, again.output
    said = " ".join(again.stdout.split())
    assert (
        "rows.jsonl: 1 stored candidate states other traits now; its traits were updated "
        "(ids, scores and tasks kept)"
    ) in said


def test_loop_answers_need_simulated_annotators(tmp_path: Path) -> None:
    key = tmp_path / "key.jsonl"
    key.write_text('{"prompt": "p", "response": "r", "values": {"honesty": 4}}\n')
    result = runner.invoke(app, ["loop", "--answers", str(key), "-w", str(tmp_path / "ws")])
    assert result.exit_code == 2, result.output
    assert "--answers is what simulated annotators answer: add --simulate N" in " ".join(
        result.stderr.split()
    )
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("command", [["simulate"], ["loop", "--simulate", "2"]])
def test_a_bad_answer_key_is_one_error_line_before_any_work(
    tmp_path: Path, command: list[str]
) -> None:
    key = tmp_path / f"{EMOJI} key.jsonl"
    good = {"prompt": MARKUP, "response": "r", "values": {"honesty": 4}}
    key.write_text(json.dumps(good) + "\n" + json.dumps({**good, "values": {"honesty": 9}}) + "\n")
    ws = tmp_path / "ws"
    # An external server nobody listens on: a request would fail with another error.
    env = {"ARGILLA_API_URL": "http://127.0.0.1:9", "ARGILLA_API_KEY": "not-a-key"}
    result = runner.invoke(app, [*command, "--answers", str(key), "-w", str(ws)], env=env)
    _assert_error_line(
        result,
        f"{key}, line 2, field 'values.honesty': expected a rating on honesty's scale (1..5)",
        "got 9",
    )
    assert not (ws / "rounds").exists()
