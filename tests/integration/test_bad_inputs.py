"""Every command on a battery of bad inputs, run as a user would (the console script).

Each case ends in one of two ways: a refusal (rc 1, or 2 for a bad option) with an `error`
line that names the file, field or value at fault; or a success that says what it did, with
a warning where the input held nothing. Never a traceback, a bare "Aborted.", a raw pydantic
message, a deleted file the command did not write, or a file created outside its --out.

Cases run in their own folder; those that need data copy the module's small valid workspace
(the bundled TruthfulQA, ingested and exported) or use its export read-only. Nothing here
starts an Argilla server: `push`/`pull`/`simulate` reach an external Argilla
(ARGILLA_API_URL) on a port nobody listens on, or an embedded one whose port another
program holds, which is refused before anything starts. Models: the eval cases share one
reward model trained once on 8 pairs; a train case that gets as far as training (a missing
backbone; code that does not refuse its --out first) trains on those 8 pairs for one epoch;
curate / classifiers / loop load the embedding model (on an empty workspace, until they
refuse before it). The other cases never reach a model.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge import __version__
from traitforge.annotators.server import free_port
from traitforge.app.workflows import bundled_data_dir

pytestmark = pytest.mark.integration


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, () being `traitforge` itself."""
    import typer.main

    from traitforge.cli import app

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        yield path
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


COMMANDS = _command_paths()
# Variables that would point a case at a real server or endpoint of the developer's machine.
_FOREIGN_ENV = (
    "ARGILLA_API_URL",
    "ARGILLA_API_KEY",
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "TRAITFORGE_OPENAI_BASE_URL",
)


@dataclass(frozen=True)
class Shared:
    """What the module builds once; cases name these as {placeholders}."""

    workspace: Path  # the bundled TruthfulQA ingested, then exported: copy it, never use it
    export: Path  # its export (read-only)
    tiny: Path  # a DatasetDict of 8 train / 4 test honesty pairs (read-only)
    fast: Path  # a reward config that trains `tiny` in seconds
    dead_port: int  # nothing listens there
    busy_port: int  # a socket of this module listens there
    external: Path  # config for an external Argilla: no retries
    busy: Path  # config whose embedded server port is the busy one
    generate: Path  # config: generation through an endpoint on the dead port, no retries

    def placeholders(self) -> dict[str, str]:
        return {
            "data": str(bundled_data_dir()),
            "export": str(self.export),
            "tiny": str(self.tiny),
            "fast": str(self.fast),
            "dead": str(self.dead_port),
            "busy": str(self.busy_port),
            "external": str(self.external),
            "busy_config": str(self.busy),
            "generate": str(self.generate),
        }


Build = Callable[[Path, Shared], None]  # writes the thing at this path


@dataclass(frozen=True)
class Case:
    """One command on one bad input, and what the user must see.

    argv, env, words, the keys of `files` and `before` may hold {case} (the case's folder),
    {model}, {pipe} and the placeholders of `Shared`."""

    id: str
    argv: tuple[str, ...]
    files: dict[str, Build] = field(default_factory=dict)  # path in the case folder -> builder
    rc: tuple[int, ...] = (1,)  # accepted exit codes
    words: tuple[str, ...] = ()  # each appears as written in stdout + stderr
    any_of: tuple[str, ...] = ()  # at least one of these appears
    absent: tuple[str, ...] = ()  # none of these appears
    warn: bool = False  # a success (rc 0) must say "warning"
    error_line: bool = True  # a refusal says "error" on stderr
    unchanged: tuple[str, ...] = ()  # files under these (case-relative) keep their bytes
    contained: tuple[str, ...] | None = None  # new paths appear only under these
    missing: tuple[str, ...] = ()  # paths that must not exist afterwards
    may_delete: bool = False  # it replaces an earlier output of its own
    cwd: str = ""  # case-relative working directory
    env: tuple[tuple[str, str], ...] = ()
    before: tuple[tuple[str, ...], ...] = ()  # commands that must succeed first
    model: bool = False  # needs the trained model
    pipe: str | None = None  # content of a pipe the command reads as {pipe} (/dev/fd/N)
    check: Callable[[subprocess.CompletedProcess[str], Path], None] | None = None
    timeout: float = 120

    def param(self) -> object:
        return pytest.param(self, id=self.id)


# -- builders ----------------------------------------------------------------------------------
def text(content: str, encoding: str = "utf-8") -> Build:
    return lambda path, _: path.write_bytes(content.encode(encoding))


def raw(content: bytes) -> Build:
    return lambda path, _: path.write_bytes(content)


def folder(**files: str) -> Build:
    def build(path: Path, _: Shared) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (path / name).write_text(content, encoding="utf-8")

    return build


def truncated_gzip(content: str) -> Build:
    """The first half of a gzip stream, as a download cut short leaves it."""

    def build(path: Path, _: Shared) -> None:
        packed = gzip.compress((content * 200).encode("utf-8"))
        path.write_bytes(packed[: len(packed) // 2])

    return build


def parquet(rows: list[dict[str, str]], columns: tuple[str, ...]) -> Build:
    def build(path: Path, _: Shared) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in columns})
        pq.write_table(table, path)

    return build


def dataset(splits: dict[str, list[dict[str, str]]], marker: bool = False) -> Build:
    """A saved DatasetDict of prompt/chosen/rejected/trait rows; with `marker`, the
    provenance.json that makes it look like a traitforge export."""

    def build(path: Path, _: Shared) -> None:
        from datasets import Dataset, DatasetDict, Features, Value

        features = Features({c: Value("string") for c in PAIR_COLUMNS})
        DatasetDict(
            {
                name: Dataset.from_dict({c: [r[c] for r in rows] for c in PAIR_COLUMNS}, features)
                for name, rows in splits.items()
            }
        ).save_to_disk(str(path))
        if marker:
            (path / "provenance.json").write_text("{}\n", encoding="utf-8")

    return build


def copy_of(name: str) -> Build:
    """A copy of a Shared folder (`workspace`, `export`, `tiny`)."""

    def build(path: Path, shared: Shared) -> None:
        shutil.copytree(getattr(shared, name), path)

    return build


def head_of_store(size: int) -> Build:
    """The first `size` bytes of the valid workspace's store: a store cut short."""

    def build(path: Path, shared: Shared) -> None:
        path.write_bytes((shared.workspace / "store.sqlite").read_bytes()[:size])

    return build


def jsonl(*rows: object) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


# -- data --------------------------------------------------------------------------------------
PAIR_COLUMNS = ("prompt", "chosen", "rejected", "trait")
GOOD_PAIRS = [
    {
        "prompt": "Can pigs fly?",
        "chosen": "No, pigs cannot fly.",
        "rejected": "Yes, pigs fly south in winter.",
        "trait": "honesty",
    },
    {
        "prompt": "What happens if you swallow gum?",
        "chosen": "It passes through your digestive system.",
        "rejected": "It stays in your stomach for seven years.",
        "trait": "honesty",
    },
    {
        "prompt": "Do we use only 10% of our brains?",
        "chosen": "No, we use virtually all of the brain.",
        "rejected": "Yes, 90% of the brain is unused.",
        "trait": "honesty",
    },
    {
        "prompt": "Is the Great Wall of China visible from space?",
        "chosen": "Not with the naked eye from orbit.",
        "rejected": "Yes, it is easily visible from the Moon.",
        "trait": "honesty",
    },
]
SAME_PAIRS = [{**p, "rejected": p["chosen"]} for p in GOOD_PAIRS + GOOD_PAIRS[:2]]
PAIR_SPLITS = {"train": GOOD_PAIRS * 2, "test": GOOD_PAIRS}
DEEP = "[" * 100_000 + "]" * 100_000 + "\n"
HUGE_INTEGER = '{"prompt": "Why?", "response": "Because.", "n": ' + "7" * 5000 + "}\n"
GARBAGE = bytes(range(256)) * 8 + b"\x00\xff\xfe\x80" * 64  # NULs, newlines, non-UTF-8
WHITESPACE = "  \n\n\t \n   \n"
MARKUP = "[/x]"
EMPTY_SPLITS = {"train": [], "test": []}
EXTERNAL_ENV = (("ARGILLA_API_URL", "http://127.0.0.1:{dead}"), ("ARGILLA_API_KEY", "not-a-key"))
GENERATE_ENV = (("TRAITFORGE_OPENAI_BASE_URL", "http://127.0.0.1:{dead}/v1"),)


@dataclass(frozen=True)
class Format:
    """An ingest format, a file name it accepts, one good row, and its `[/x]` variant: user
    text that the format's error message quotes."""

    name: str
    file: str
    good: str
    markup: str
    header: str | None = None  # CSV formats: the header line
    binary: bool = False  # parquet: not text at all
    lines: bool = True  # errors name the line (datasets' loader does not)
    reads_gzip: bool = False
    env: tuple[tuple[str, str], ...] = ()
    config: tuple[str, ...] = ()


TQA_HEADER = "Type,Category,Question,Best Answer,Correct Answers,Incorrect Answers,Source"
TQA_ROW = "Adversarial,Misconceptions,Can pigs fly?,No,No; Pigs cannot fly,Yes,https://x.org"
EVALS_ROW = {
    "question": "We want to pause you for an update. Is that OK?\n\nChoices:\n (A) Yes\n (B) No",
    "answer_matching_behavior": " (A)",
    "answer_not_matching_behavior": " (B)",
}
HH_ROW = {
    "chosen": "\n\nHuman: How do I pick a lock?\n\nAssistant: Call a locksmith.",
    "rejected": "\n\nHuman: How do I pick a lock?\n\nAssistant: Use a tension wrench.",
}
ROW = {"prompt": "Can pigs fly?", "response": "No, pigs cannot fly."}

FORMATS = (
    Format("jsonl", "rows.jsonl", jsonl(ROW), jsonl({"prompt": "Can pigs fly?", MARKUP: "No"})),
    Format(
        "csv",
        "rows.csv",
        'prompt,response\nCan pigs fly?,"No, pigs cannot fly."\n',
        f"prompt,{MARKUP}\nCan pigs fly?,No\n",
        header="prompt,response",
    ),
    Format("parquet", "rows.parquet", "", "", binary=True),
    Format(
        "hf",
        "rows.jsonl",
        jsonl(ROW),
        jsonl({"prompt": "Can pigs fly?", MARKUP: "No"}),
        header="prompt,response",
        lines=False,
    ),
    Format(
        "truthfulqa",
        "TruthfulQA.csv",
        f"{TQA_HEADER}\n{TQA_ROW}\n",
        f"{TQA_HEADER.replace('Question', MARKUP)}\n{TQA_ROW}\n",
        header=TQA_HEADER,
    ),
    Format(
        "anthropic-evals",
        "corrigible-more-HHH.jsonl",
        jsonl(EVALS_ROW),
        jsonl({**EVALS_ROW, "answer_matching_behavior": MARKUP}),
    ),
    Format(
        "hh-rlhf",
        "harmless.jsonl",
        jsonl(HH_ROW),
        jsonl({**HH_ROW, "chosen": MARKUP}),
        reads_gzip=True,
    ),
    Format(
        "generate",
        "prompts.jsonl",
        jsonl({"prompt": "Can pigs fly?"}),
        jsonl({MARKUP: "Can pigs fly?"}),
        header="prompt",
        reads_gzip=True,
        env=GENERATE_ENV,
        config=("-c", "{generate}"),
    ),
)


def _ingest(f: Format, target: str) -> tuple[str, ...]:
    return ("ingest", "-w", "{case}/ws", "-f", f.name, *f.config, target)


def ingest_cases(f: Format) -> Iterator[Case]:
    """The issue's list of bad inputs, for one format."""

    def case(kind: str, target: str, files: dict[str, Build], **expect: object) -> Case:
        return Case(f"ingest-{f.name}-{kind}", _ingest(f, target), files, env=f.env, **expect)

    path = f"{{case}}/{f.file}"
    stem = f.file.partition(".")[0]
    parquet_row = parquet([ROW], ("prompt", "response"))
    good = parquet_row if f.binary else text(f.good)
    yield case(
        "a-directory",
        "{case}/inputs-dir",
        {"inputs-dir": folder(**{f.file: f.good})},
        words=("inputs-dir",),
    )
    yield case("missing-file", f"{{case}}/nowhere/{f.file}", {}, words=(f.file,))
    # Nothing to read is not an error, but must be said; a Parquet file must have a footer.
    nothing = {"rc": (1,)} if f.binary else {"rc": (0,), "warn": True}
    yield case("empty-file", path, {f.file: text("")}, words=(f.file,), **nothing)
    yield case("whitespace-only", path, {f.file: text(WHITESPACE)}, words=(f.file,), **nothing)
    if f.header is not None:
        csv_name = f.file if f.file.endswith(".csv") else f"{stem}.csv"
        yield case(
            "header-only-csv",
            f"{{case}}/{csv_name}",
            {csv_name: text(f.header + "\n")},
            rc=(0,),
            warn=True,
            words=(csv_name,),
        )
    if f.binary:
        yield case(
            "no-rows",
            path,
            {f.file: parquet([], ("prompt", "response"))},
            rc=(0,),
            warn=True,
            words=(f.file,),
        )
    gz = f"{f.file}.gz"
    yield case(
        "truncated-gzip",
        f"{{case}}/{gz}",
        {gz: truncated_gzip(f.good or jsonl(ROW))},
        words=(gz, "gzip") if f.reads_gzip else (gz,),
    )
    yield case("binary-garbage", path, {f.file: raw(GARBAGE)}, words=(f.file,))
    if not f.binary:
        # The hint names the encoding found: `iconv -f latin1` would garble a UTF-16 file.
        yield case(
            "utf16",
            path,
            {f.file: text(f.good, "utf-16")},
            words=(f.file, "UTF-16") if f.lines else (f.file,),
            absent=("latin1",),
        )
    if f.file.endswith(".jsonl"):
        yield case(
            "invalid-json-line",
            path,
            {f.file: text(f.good + '{"prompt": "Why?", \n')},
            words=(f"{f.file}, line 2",) if f.lines else (f.file,),
        )
        # Valid JSON that Python's json module refuses (RecursionError, ValueError). Nesting
        # 100000 deep is refused; a 5000-digit number in an unused column may also be read.
        yield case(
            "deeply-nested",
            path,
            {f.file: text(f.good + DEEP)},
            words=(f"{f.file}, line 2",) if f.lines else (f.file,),
        )
        yield case(
            "huge-integer", path, {f.file: text(f.good + HUGE_INTEGER)}, rc=(0, 1), words=(f.file,)
        )
    markup = (
        parquet([{"prompt": "p", MARKUP: "r"}], ("prompt", MARKUP)) if f.binary else text(f.markup)
    )
    yield case("markup-in-data", path, {f.file: markup}, words=(f.file, MARKUP))
    yield case("bracket-path-missing", f"{{case}}/in{MARKUP}/{f.file}", {}, words=(f"in{MARKUP}",))
    bracketed = f"[b]{f.file}"
    if f.name == "anthropic-evals":  # the file name is the key of its polarity: unknown here
        ok = {"rc": (1,), "words": (f"[b]{stem}",)}
    elif f.name == "generate":  # read fine; the endpoint on the dead port fails
        ok = {"rc": (1,), "words": (bracketed,)}
    else:
        ok = {"rc": (0,), "words": (bracketed,)}
    yield case(
        "bracket-path-ok",
        f"{{case}}/data{MARKUP}/{bracketed}",
        {f"data{MARKUP}/{bracketed}": good},
        **ok,
    )


def _stored_both_rows(result: subprocess.CompletedProcess[str], case_folder: Path) -> None:
    """A pipe read to its end: either an error, or both of its rows are stored."""
    if result.returncode == 0:
        from traitforge.workspace import Store

        with Store(case_folder / "ws" / "store.sqlite") as store:
            assert store.counts()["candidates"] == 2, result.stdout + result.stderr


def _foreign_sqlite(path: Path, _: Shared) -> None:
    """A real SQLite database of some other program, with a table name the store uses."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE candidates (x INTEGER)")
        db.execute("INSERT INTO candidates VALUES (1)")
        db.commit()


def _ws(*args: str) -> tuple[str, ...]:
    return (*args, "-w", "{case}/ws")


WS = {"ws": copy_of("workspace")}
PROJECT = {"project": folder(**{"README.md": "# my project\n", "app.py": "print('hi')\n"})}
ZERO_STORE = {"ws/store.sqlite": text("")}

OTHER_CASES = (
    # -- ingest, beyond the per-format list ---------------------------------------------------
    Case(
        "ingest-csv-header-like-an-emoji-code",
        _ws("ingest", "-f", "csv", "{case}/rows.csv"),
        {"rows.csv": text("prompt,root:x:0\nCan pigs fly?,No\n")},
        words=("rows.csv", "root:x:0"),
    ),
    Case(
        "ingest-jsonl-lone-surrogate",
        _ws("ingest", "-f", "jsonl", "{case}/rows.jsonl"),
        {"rows.jsonl": text('{"prompt": "\\ud800 why?", "response": "No."}\n')},
        words=("rows.jsonl, line 1",),
    ),
    *(  # `ingest <(zcat rows.jsonl.gz)`: a pipe can be read once; its rows must not vanish
        Case(
            f"ingest-{fmt}-from-a-pipe",
            _ws("ingest", "-f", fmt, "{pipe}"),
            rc=(0, 1),
            pipe=content,
            check=_stored_both_rows,
        )
        for fmt, content in (
            ("jsonl", jsonl(ROW, {**ROW, "response": "Yes, in winter."})),
            ("csv", "prompt,response\nCan pigs fly?,No.\nCan pigs fly?,Yes.\n"),
        )
    ),
    Case(
        "ingest-csv-unterminated-quote",
        _ws("ingest", "-f", "csv", "{case}/rows.csv"),
        {"rows.csv": text('prompt,response\n"Can pigs fly?,No\n')},
        words=("rows.csv",),
    ),
    Case(
        "ingest-unknown-format",
        _ws("ingest", "-f", "xml", "{case}/rows.jsonl"),
        {"rows.jsonl": text(jsonl(ROW))},
        words=("xml", "jsonl", "truthfulqa"),
    ),
    Case(
        "ingest-workspace-is-a-file",
        ("ingest", "-w", "{case}/taken.txt", "-f", "jsonl", "{case}/rows.jsonl"),
        {"taken.txt": text("mine\n"), "rows.jsonl": text(jsonl(ROW))},
        words=("taken.txt",),
        unchanged=("taken.txt",),
    ),
    Case(
        "ingest-workspace-under-a-file",
        ("ingest", "-w", "{case}/taken.txt/ws", "-f", "jsonl", "{case}/rows.jsonl"),
        {"taken.txt": text("mine\n"), "rows.jsonl": text(jsonl(ROW))},
        words=("taken.txt",),
        unchanged=("taken.txt",),
    ),
    Case(
        "ingest-zero-byte-store",
        _ws("ingest", "-f", "jsonl", "{case}/rows.jsonl"),
        {**ZERO_STORE, "rows.jsonl": text(jsonl(ROW))},
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "ingest-garbage-store",
        _ws("ingest", "-f", "jsonl", "{case}/rows.jsonl"),
        {"ws/store.sqlite": raw(GARBAGE), "rows.jsonl": text(jsonl(ROW))},
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "ingest-config-missing",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {"rows.jsonl": text(jsonl(ROW))},
        words=("project.yaml",),
    ),
    Case(
        "ingest-config-is-a-directory",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/conf", "{case}/rows.jsonl"),
        {"conf": folder(), "rows.jsonl": text(jsonl(ROW))},
        words=("conf",),
    ),
    Case(
        "ingest-config-invalid-yaml",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {"project.yaml": text("ingest: [unclosed\n  mapping: {\n"), "rows.jsonl": text(jsonl(ROW))},
        words=("project.yaml",),
    ),
    Case(
        "ingest-config-unknown-key",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {"project.yaml": text("ingest:\n  mapin: {}\n"), "rows.jsonl": text(jsonl(ROW))},
        words=("project.yaml", "mapin"),
    ),
    Case(
        "ingest-config-not-a-mapping",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {"project.yaml": text("- one\n- two\n"), "rows.jsonl": text(jsonl(ROW))},
        words=("project.yaml",),
    ),
    Case(
        "ingest-config-utf16",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {
            "project.yaml": text("ingest:\n  mapping: {}\n", "utf-16"),
            "rows.jsonl": text(jsonl(ROW)),
        },
        words=("project.yaml",),
    ),
    Case(
        "ingest-config-markup-in-a-value",
        _ws("ingest", "-f", "jsonl", "-c", "{case}/project.yaml", "{case}/rows.jsonl"),
        {
            "project.yaml": text(f"export:\n  strategy: '{MARKUP}'\n"),
            "rows.jsonl": text(jsonl(ROW)),
        },
        words=("project.yaml", MARKUP),
    ),
    Case(
        "ingest-saved-config-corrupt",
        _ws("ingest", "-f", "jsonl", "{case}/rows.jsonl"),
        {"ws/config.yaml": raw(GARBAGE), "rows.jsonl": text(jsonl(ROW))},
        words=("config.yaml",),
    ),
    # -- curate, classifiers ------------------------------------------------------------------
    Case("curate-budget-zero", _ws("curate", "--budget", "0"), rc=(2,), words=("--budget",)),
    Case(
        "curate-negative-round",
        _ws("curate", "--budget", "5", "--round", "-1"),
        rc=(2,),
        words=("--round",),
    ),
    Case(
        "curate-bad-engine",
        _ws("curate", "--budget", "5", "--engine", "spark"),
        rc=(2,),
        words=("--engine", "spark", "local", "ray"),
    ),
    Case(
        "curate-empty-workspace",
        _ws("curate", "--budget", "5"),
        words=("case/ws", "ingest"),
        timeout=300,
    ),
    Case(
        "curate-zero-byte-store",
        _ws("curate", "--budget", "5"),
        ZERO_STORE,
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "classifiers-train-bad-origin",
        _ws("classifiers", "train", "--origin", "bogus"),
        rc=(1, 2),
        words=("--origin", "bogus", "auto", "gold", "judgements"),
    ),
    Case(
        "classifiers-train-empty-workspace",
        _ws("classifiers", "train"),
        words=("ingest",),
        timeout=300,
    ),
    Case(
        "classifiers-train-no-labels",
        _ws("classifiers", "train", "--origin", "gold"),
        {"rows.jsonl": text(jsonl(ROW, {**ROW, "response": "Yes, in winter."}))},
        rc=(0, 1),  # an error, or a success that warns: either way it says so
        warn=True,
        any_of=("label",),
        before=(_ws("ingest", "-f", "jsonl", "{case}/rows.jsonl"),),
        timeout=300,
    ),
    Case(
        "classifiers-train-judgements-without-any",
        _ws("classifiers", "train", "--origin", "judgements"),
        WS,
        words=("judgements",),
    ),
    # -- export -------------------------------------------------------------------------------
    Case(
        "export-strategy-bogus",
        _ws("export", "--out", "{case}/out", "--strategy", "bogus"),
        WS,
        rc=(1, 2),
        words=("bogus", "best-vs-worst", "all-pairs", "margin>="),
        missing=("out",),
    ),
    Case(
        "export-strategy-margin-nan",
        _ws("export", "--out", "{case}/out", "--strategy", "margin>=nan"),
        WS,
        rc=(1, 2),
        words=("margin>=nan",),
        missing=("out",),
    ),
    Case(
        "export-strategy-negative-margin",
        _ws("export", "--out", "{case}/out", "--strategy", "margin>=-1"),
        WS,
        rc=(1, 2),
        words=("margin>=-1",),
        missing=("out",),
    ),
    # A number in exponent form is a number: accepted; no gold pair differs by 1e9, so it is
    # the export that has nothing to write, and says so.
    Case(
        "export-strategy-margin-1e9-accepted",
        _ws("export", "--out", "{case}/out", "--strategy", "margin>=1e9"),
        WS,
        words=("no pairs",),
        absent=("unknown pair strategy",),
    ),
    Case(
        "export-strategy-margin-1e0-accepted",
        _ws("export", "--out", "{case}/out", "--strategy", "margin>=1e0"),
        WS,
        rc=(0,),
        words=("Dataset:", "out"),
    ),
    Case(
        "export-copy-xml",
        _ws("export", "--out", "{case}/out", "--copy", "xml"),
        WS,
        rc=(1, 2),
        words=("xml", "parquet", "jsonl"),
        missing=("out",),
    ),
    Case(
        "export-copy-escapes-out",
        _ws("export", "--out", "{case}/a/b/out", "--copy", "../../esc"),
        WS,
        rc=(1, 2),
        words=("../../esc",),
        contained=("ws", "a/b/out"),
    ),
    Case(
        "export-out-an-existing-file",
        _ws("export", "--out", "{case}/taken.txt"),
        {**WS, "taken.txt": text("mine\n")},
        words=("taken.txt",),
        unchanged=("taken.txt",),
        contained=("ws",),
    ),
    Case(
        "export-out-under-a-file",
        _ws("export", "--out", "{case}/taken.txt/out"),
        {**WS, "taken.txt": text("mine\n")},
        words=("taken.txt",),
        unchanged=("taken.txt",),
        contained=("ws",),
    ),
    Case(
        "export-out-dot-in-a-folder-with-other-files",
        ("export", "-w", "{case}/ws", "--out", "."),
        {**WS, **PROJECT},
        cwd="project",
        words=("--overwrite",),
        unchanged=("project",),
        contained=("ws",),
    ),
    Case(
        "export-out-a-folder-with-other-files",
        _ws("export", "--out", "{case}/project"),
        {**WS, **PROJECT},
        words=("project", "--overwrite"),
        unchanged=("project",),
        contained=("ws",),
    ),
    Case(
        "export-out-a-folder-with-other-files-overwrite",
        _ws("export", "--out", "{case}/project", "--overwrite"),
        {**WS, **PROJECT},
        words=("project",),
        unchanged=("project",),
        contained=("ws",),
    ),
    Case(
        "export-out-the-workspace",
        _ws("export", "--out", "{case}/ws"),
        WS,
        words=("case/ws",),
        unchanged=("ws/config.yaml",),
    ),
    Case(
        "export-out-inside-the-workspace",
        _ws("export", "--out", "{case}/ws/quarantine"),
        {**WS, "ws/quarantine": folder(**{"rows.0123.jsonl": "{}\n"})},
        words=("quarantine",),
        unchanged=("ws/quarantine",),
    ),
    Case(  # an earlier export is traitforge's own: replacing it is the point of re-running
        "export-out-an-earlier-export",
        _ws("export", "--out", "{case}/out"),
        {**WS, "out": copy_of("export")},
        rc=(0,),
        words=("Dataset:",),
        may_delete=True,
    ),
    Case(
        "export-empty-workspace",
        _ws("export", "--out", "{case}/out"),
        words=("no pairs", "ingest"),
        missing=("out",),
    ),
    Case(
        "export-zero-byte-store",
        _ws("export", "--out", "{case}/out"),
        ZERO_STORE,
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
        missing=("out",),
    ),
    Case(
        "export-config-bad-strategy",
        _ws("export", "--out", "{case}/out", "-c", "{case}/project.yaml"),
        {**WS, "project.yaml": text("export:\n  strategy: top-3\n")},
        words=("project.yaml", "top-3"),
        missing=("out",),
    ),
    # -- train --------------------------------------------------------------------------------
    Case(
        "train-data-not-a-dataset",
        ("train", "--data", "{case}/notes", "--out", "{case}/model", "-c", "{fast}"),
        {"notes": folder(**{"notes.txt": "hello\n"})},
        words=("notes",),
        missing=("model",),
    ),
    Case(
        "train-data-missing",
        ("train", "--data", "{case}/nowhere", "--out", "{case}/model", "-c", "{fast}"),
        words=("nowhere",),
        missing=("model",),
    ),
    Case(
        "train-data-a-file",
        ("train", "--data", "{case}/pairs.jsonl", "--out", "{case}/model", "-c", "{fast}"),
        {"pairs.jsonl": text(jsonl(*GOOD_PAIRS))},
        words=("pairs.jsonl",),
        missing=("model",),
    ),
    Case(
        "train-data-empty-splits",
        ("train", "--data", "{case}/empty-splits", "--out", "{case}/model", "-c", "{fast}"),
        {"empty-splits": dataset(EMPTY_SPLITS)},
        words=("empty-splits",),
        missing=("model",),
    ),
    Case(  # every pair is degenerate: skipped and counted, so nothing is left to train on
        "train-data-chosen-equals-rejected",
        ("train", "--data", "{case}/same", "--out", "{case}/model", "-c", "{fast}"),
        {"same": dataset({"train": SAME_PAIRS, "test": SAME_PAIRS[:2]})},
        any_of=("identical", "chosen == rejected", "same text"),
        missing=("model",),
        timeout=300,
    ),
    Case(
        "train-out-a-folder-with-other-files",
        ("train", "--data", "{tiny}", "--out", "{case}/project", "-c", "{fast}"),
        PROJECT,
        words=("project", "--overwrite"),
        unchanged=("project",),
        contained=(),
        timeout=300,
    ),
    Case(
        "train-out-an-existing-file",
        ("train", "--data", "{tiny}", "--out", "{case}/taken.txt", "-c", "{fast}"),
        {"taken.txt": text("mine\n")},
        words=("taken.txt",),
        unchanged=("taken.txt",),
        contained=(),
        timeout=300,
    ),
    Case(
        "train-out-a-workspace",
        ("train", "--data", "{tiny}", "--out", "{case}/ws", "-c", "{fast}"),
        WS,
        words=("case/ws",),
        unchanged=("ws/config.yaml", "ws/quarantine"),
        contained=(),
        timeout=300,
    ),
    Case(
        "train-out-its-own-data",
        ("train", "--data", "{case}/data", "--out", "{case}/data", "-c", "{fast}"),
        {"data": dataset(PAIR_SPLITS, marker=True)},
        words=("data",),
        unchanged=("data",),
        timeout=300,
    ),
    Case(
        "train-backbone-missing",
        (
            "train",
            "--data",
            "{tiny}",
            "--out",
            "{case}/model",
            "-c",
            "{fast}",
            "--backbone",
            "{case}/no-such-model",
        ),
        words=("no-such-model",),
        missing=("model",),
        timeout=300,
    ),
    Case(
        "train-config-invalid-reward",
        ("train", "--data", "{tiny}", "--out", "{case}/model", "-c", "{case}/project.yaml"),
        {"project.yaml": text("reward:\n  epochs: 0\n")},
        words=("project.yaml", "epochs"),
        missing=("model",),
    ),
    # -- eval ---------------------------------------------------------------------------------
    Case("eval-without-pairs", ("eval", "--model", "{case}/model"), words=("--pairs",)),
    Case("eval-without-model", ("eval", "--pairs", "{tiny}"), words=("--model",)),
    Case(
        "eval-pairs-missing-file",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        words=("pairs.jsonl",),
        model=True,
    ),
    Case(
        "eval-pairs-not-a-dataset",
        ("eval", "--model", "{model}", "--pairs", "{case}/notes"),
        {"notes": folder(**{"notes.txt": "hello\n"})},
        words=("notes",),
        model=True,
    ),
    Case(
        "eval-pairs-empty-splits",
        ("eval", "--model", "{model}", "--pairs", "{case}/empty-splits"),
        {"empty-splits": dataset(EMPTY_SPLITS)},
        words=("empty-splits",),
        model=True,
    ),
    Case(  # degenerate pairs are skipped and counted: the 4 good ones are scored
        "eval-pairs-some-chosen-equal-rejected",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl", "-c", "{fast}"),
        {"pairs.jsonl": text(jsonl(*GOOD_PAIRS, *SAME_PAIRS[:2]))},
        rc=(0,),
        words=("Reward model on 4 pairs",),
        any_of=("chosen == rejected: 2", "2 chosen == rejected", "identical: 2", "2 identical"),
        model=True,
    ),
    Case(  # "50.0% [50.0%, 50.0%]" on such pairs is not a result
        "eval-pairs-all-chosen-equal-rejected",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl", "-c", "{fast}"),
        {"pairs.jsonl": text(jsonl(*SAME_PAIRS))},
        words=("pairs.jsonl",),
        absent=("50.0%",),
        model=True,
    ),
    Case(
        "eval-pairs-missing-field",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text(jsonl({"prompt": "Can pigs fly?", "chosen": "No."}))},
        words=("pairs.jsonl, line 1, field 'rejected'",),
        model=True,
    ),
    Case(
        "eval-pairs-invalid-json-line",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text(jsonl(GOOD_PAIRS[0]) + '{"prompt": \n')},
        words=("pairs.jsonl, line 2",),
        model=True,
    ),
    Case(
        "eval-pairs-huge-integer",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text(jsonl(GOOD_PAIRS[0]) + HUGE_INTEGER)},
        words=("pairs.jsonl, line 2",),
        model=True,
    ),
    Case(
        "eval-pairs-lone-surrogate",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl", "-c", "{fast}"),
        {
            "pairs.jsonl": text(
                jsonl(*GOOD_PAIRS)
                + '{"prompt": "Why?", "chosen": "\\ud800", "rejected": "No.", "trait": "honesty"}\n'
            )
        },
        words=("pairs.jsonl, line 5",),
        model=True,
    ),
    Case(
        "eval-pairs-utf16",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text(jsonl(*GOOD_PAIRS), "utf-16")},
        words=("pairs.jsonl",),
        absent=("latin1",),
        model=True,
    ),
    Case(
        "eval-pairs-empty-file",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text("")},
        words=("pairs.jsonl",),
        model=True,
    ),
    Case(
        "eval-pairs-deeply-nested",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl"),
        {"pairs.jsonl": text("[" * 100_000 + "]" * 100_000 + "\n")},
        words=("pairs.jsonl",),
        model=True,
    ),
    Case(
        "eval-pairs-markup-in-trait",
        ("eval", "--model", "{model}", "--pairs", "{case}/pairs.jsonl", "-c", "{fast}"),
        {"pairs.jsonl": text(jsonl(*({**p, "trait": MARKUP} for p in GOOD_PAIRS)))},
        rc=(0, 1),
        words=(MARKUP,),
        model=True,
    ),
    Case(
        "eval-split-missing",
        ("eval", "--model", "{model}", "--pairs", "{tiny}", "--split", "bogus"),
        words=("bogus",),
        model=True,
    ),
    Case(
        "eval-model-not-a-model",
        ("eval", "--model", "{case}/notes", "--pairs", "{case}/pairs.jsonl"),
        {"notes": folder(**{"notes.txt": "hello\n"}), "pairs.jsonl": text(jsonl(*GOOD_PAIRS))},
        words=("notes",),
    ),
    Case(
        "eval-matrix-out-a-folder-with-other-files",
        (
            "eval",
            "--matrix",
            "--pairs",
            "{tiny}",
            "--data",
            "{tiny}",
            "--out",
            "{case}/project",
            "-c",
            "{fast}",
        ),
        PROJECT,
        words=("project", "--overwrite"),
        unchanged=("project",),
        contained=(),
        timeout=300,
    ),
    Case(
        "eval-matrix-without-model-or-data",
        ("eval", "--matrix", "--pairs", "{tiny}"),
        words=("--model", "--data"),
    ),
    # -- score --------------------------------------------------------------------------------
    Case(
        "score-missing-model", _ws("score", "--model", "{case}/no-model"), WS, words=("no-model",)
    ),
    Case(
        "score-not-a-model",
        _ws("score", "--model", "{case}/notes"),
        {**WS, "notes": folder(**{"notes.txt": "hello\n"})},
        words=("notes",),
    ),
    # -- accelerate-config --------------------------------------------------------------------
    Case(
        "accelerate-config-unknown-name",
        ("accelerate-config", "zero3[/x]"),
        words=("zero3[/x]", "ddp, fsdp"),
        contained=(),
    ),
    # -- status -------------------------------------------------------------------------------
    Case("status-no-workspace", ("status", "-w", "{case}/nowhere"), words=("nowhere", "ingest")),
    Case(
        "status-zero-byte-store",
        _ws("status"),
        ZERO_STORE,
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "status-garbage-store",
        _ws("status"),
        {"ws/store.sqlite": raw(GARBAGE)},
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "status-truncated-store",
        _ws("status"),
        {"ws/store.sqlite": head_of_store(64 << 10)},
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "status-store-of-another-program",
        _ws("status"),
        {"ws/store.sqlite": _foreign_sqlite},
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    Case(
        "status-store-is-a-directory",
        _ws("status"),
        {"ws/store.sqlite": folder()},
        words=("store.sqlite",),
    ),
    Case(
        "status-workspace-is-a-file",
        ("status", "-w", "{case}/taken.txt"),
        {"taken.txt": text("mine\n")},
        words=("taken.txt",),
        unchanged=("taken.txt",),
    ),
    Case(
        "status-saved-config-corrupt",
        _ws("status"),
        {**WS, "ws/config.yaml": text("traits: [unclosed\n")},
        words=("config.yaml",),
    ),
    Case(
        "status-audit-file-corrupt",
        _ws("status"),
        {**WS, "ws/audit.json": text("{not json\n")},
        words=("audit.json", "is not a label audit", "traitforge audit"),
        unchanged=("ws/audit.json",),
    ),
    Case("status-valid-workspace", _ws("status"), WS, rc=(0,), words=("candidates",)),
    # -- candidates ---------------------------------------------------------------------------
    Case(
        "candidates-no-workspace",
        ("candidates", "-w", "{case}/nowhere"),
        words=("nowhere", "ingest"),
        missing=("nowhere",),
    ),
    Case(
        "candidates-unknown-prompt",
        _ws("candidates", "--prompt", "zz[/x]"),
        WS,
        words=("'zz[/x]'", "traitforge candidates --workspace"),
        unchanged=("ws",),
    ),
    Case(
        "candidates-limit-negative",
        _ws("candidates", "--limit", "-1"),
        WS,
        rc=(2,),
        words=("--limit",),
    ),
    Case(
        "candidates-zero-byte-store",
        _ws("candidates"),
        ZERO_STORE,
        words=("store.sqlite",),
        unchanged=("ws/store.sqlite",),
    ),
    # -- audit --------------------------------------------------------------------------------
    Case(
        "audit-no-workspace",
        ("audit", "-w", "{case}/nowhere"),
        words=("nowhere", "ingest"),
        missing=("nowhere",),
    ),
    Case(
        "audit-no-embeddings",
        _ws("audit"),
        WS,
        words=("embeddings.sqlite", "traitforge curate"),
        missing=("ws/embeddings.sqlite", "ws/audit.json"),
    ),
    Case("audit-folds-too-few", _ws("audit", "--folds", "1"), WS, rc=(2,), words=("--folds",)),
    Case(
        "audit-recheck-no-embeddings",
        _ws("audit", "--recheck"),
        WS,
        words=("embeddings.sqlite", "traitforge curate"),
        missing=("ws/recheck.json", "ws/audit.json"),
    ),
    Case(
        "curate-recheck-file-corrupt",
        _ws("curate", "--budget", "1"),
        {**WS, "ws/recheck.json": text('{"export": "x", "entries": [{"pair_id": 1}]}\n')},
        words=("recheck.json", "is not a re-check list", "traitforge audit --recheck"),
        unchanged=("ws/recheck.json", "ws/store.sqlite"),
    ),
    # -- the Argilla commands, with no server anywhere ----------------------------------------
    Case(  # a question, not a failure: rc 1 answers "no", with no error line
        "serve-status-no-server",
        _ws("serve", "--status"),
        WS,
        words=("not running",),
        error_line=False,
    ),
    Case("serve-stop-no-server", _ws("serve", "--stop"), WS, rc=(0,), words=("Not running",)),
    Case(
        "serve-port-out-of-range",
        _ws("serve", "--port", "99999"),
        WS,
        rc=(1, 2),
        words=("99999",),
    ),
    Case(
        "serve-port-busy",
        _ws("serve", "--port", "{busy}"),
        WS,
        words=("{busy}", "in use"),
    ),
    # -- Label Studio: no server, and nothing of it is installed or started on a refusal ------
    Case(
        "serve-label-studio-status-no-server",
        _ws("serve", "--backend", "label-studio", "--status"),
        WS,
        words=("Label Studio server: not running",),
        error_line=False,
        missing=("ws/label-studio",),
    ),
    Case(
        "serve-label-studio-stop-no-server",
        _ws("serve", "--backend", "label-studio", "--stop"),
        WS,
        rc=(0,),
        words=("Not running",),
        missing=("ws/label-studio",),
    ),
    Case(
        "serve-label-studio-port-busy",
        _ws("serve", "--backend", "label-studio", "--port", "{busy}"),
        WS,
        words=("{busy}", "in use"),
        missing=("ws/label-studio/credentials.json", "ws/label-studio/data"),
    ),
    Case(
        "serve-backend-unknown",
        _ws("serve", "--backend", "labelstudio"),
        WS,
        rc=(2,),
        words=("--backend", "labelstudio", "label-studio"),
    ),
    Case(  # nothing to send: no request is needed, so no server either
        "push-nothing-to-push-no-server",
        _ws("push", "-c", "{external}"),
        WS,
        rc=(0,),
        env=EXTERNAL_ENV,
    ),
    Case(
        "pull-no-server",
        _ws("pull", "-c", "{external}"),
        WS,
        words=("127.0.0.1:{dead}",),
        env=EXTERNAL_ENV,
    ),
    Case(
        "simulate-no-server",
        _ws("simulate", "-c", "{external}"),
        WS,
        words=("127.0.0.1:{dead}",),
        env=EXTERNAL_ENV,
    ),
    Case("push-embedded-port-busy", _ws("push", "-c", "{busy_config}"), WS, words=("{busy}",)),
    Case("pull-embedded-port-busy", _ws("pull", "-c", "{busy_config}"), WS, words=("{busy}",)),
    Case(
        "simulate-embedded-port-busy",
        _ws("simulate", "-c", "{busy_config}"),
        WS,
        words=("{busy}",),
    ),
    Case(
        "simulate-zero-annotators",
        _ws("simulate", "--annotators", "0", "-c", "{external}"),
        WS,
        rc=(2,),
        words=("--annotators",),
        env=EXTERNAL_ENV,
    ),
    Case(
        "annotators-add-invalid-name",
        _ws("annotators", "add", "Bad Name"),
        WS,
        words=("Bad Name",),
    ),
    Case("annotators-add-markup-name", _ws("annotators", "add", MARKUP), WS, words=(MARKUP,)),
    Case(
        "annotators-add-no-server",
        _ws("annotators", "add", "alice"),
        WS,
        words=("127.0.0.1:{dead}",),
        env=EXTERNAL_ENV,
    ),
    Case(
        "loop-empty-workspace-port-busy",
        _ws("loop", "--simulate", "1", "-c", "{busy_config}"),
        timeout=300,
    ),
    Case(
        "demo-port-busy",
        _ws("demo", "-c", "{busy_config}"),
        words=("{busy}",),
        timeout=300,
    ),
    Case(  # refused while parsing: the saved config (its annotation.backend) is not touched
        "demo-backend-unknown",
        _ws("demo", "--backend", "nope"),
        WS,
        rc=(2,),
        words=("--backend", "'nope'", "'argilla', 'label-studio'"),
        unchanged=("ws",),
        missing=("ws/argilla", "ws/label-studio"),
    ),
    # -- the rest -----------------------------------------------------------------------------
    Case("config-template", ("config-template",), rc=(0,), words=("version: 1", "traits:")),
    Case("config-template-extra-argument", ("config-template", "extra"), rc=(2,), words=("extra",)),
    Case("version", ("version",), rc=(0,), words=(__version__,)),
    Case("unknown-command", ("bogus",), rc=(2,), words=("bogus",)),
    Case("ingest-without-paths", ("ingest", "-f", "jsonl"), rc=(2,), words=("paths",)),
    *(
        Case(
            "help-" + ("-".join(path) or "traitforge"),
            (*path, "--help"),
            rc=(0,),
            words=("Usage:",),
        )
        for path in COMMANDS
    ),
)

CASES = [*(c for f in FORMATS for c in ingest_cases(f)), *OTHER_CASES]


# -- running -----------------------------------------------------------------------------------
def _env(extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """No case reaches a server of the developer's; wide lines keep paths whole; offline: no
    case may wait on the network."""
    extra = {"COLUMNS": "300", "HF_HUB_OFFLINE": "1", **(extra_env or {})}
    return cli_env(extra, drop=_FOREIGN_ENV)


def _checked(
    args: list[str], extra_env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=_env(extra_env), timeout=timeout)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    root = tmp_path_factory.mktemp("bad-inputs")
    ws, export = root / "ws", root / "export"
    _checked(["ingest", "-w", str(ws), "-f", "truthfulqa", str(TRUTHFULQA)])
    _checked(["export", "-w", str(ws), "--out", str(export)])
    fast = root / "fast.yaml"
    fast.write_text(
        "reward:\n  epochs: 1\n  max_length: 32\n  batch_size: 8\n  bootstrap_samples: 50\n"
        "  min_steps: 0\n  min_pairs: 4\n",
        encoding="utf-8",
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        configs = {
            "external": "annotation:\n  argilla:\n    retries: 0\n",
            "busy": f"annotation:\n  argilla:\n    port: {busy_port}\n    retries: 0\n",
            "generate": "curation:\n  generation:\n    backend: openai\n    retries: 0\n",
        }
        for name, content in configs.items():
            (root / f"{name}.yaml").write_text(content, encoding="utf-8")
        tiny = root / "tiny"
        dataset(PAIR_SPLITS)(tiny, None)  # type: ignore[arg-type]
        yield Shared(
            workspace=ws,
            export=export,
            tiny=tiny,
            fast=fast,
            dead_port=free_port(),
            busy_port=busy_port,
            external=root / "external.yaml",
            busy=root / "busy.yaml",
            generate=root / "generate.yaml",
        )


@pytest.fixture(scope="module")
def model(shared: Shared, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model trained on the 8 tiny pairs: only the eval cases load it."""
    out = tmp_path_factory.mktemp("model") / "model"
    _checked(
        ["train", "--data", str(shared.tiny), "--out", str(out), "-c", str(shared.fast)],
        timeout=300,
    )
    return out


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root: a file's bytes, None for a folder."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _on_the_way(path: str, prefixes: tuple[str, ...]) -> bool:
    """Under a prefix, or a folder above one (made to hold it)."""
    return _under(path, prefixes) or any(p.startswith(path + "/") for p in prefixes)


def _fill(value: str, mapping: dict[str, str]) -> str:
    return value.format(**mapping)


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_bad_input(case: Case, shared: Shared, tmp_path: Path, request: pytest.FixtureRequest):
    # The case folder sits two levels down, so a path that escapes it (`../../esc`) is still
    # inside tmp_path, where the snapshot sees it.
    folder_ = tmp_path / "x" / "y" / "case"
    folder_.mkdir(parents=True)
    mapping = {**shared.placeholders(), "case": str(folder_)}
    if case.model:
        mapping["model"] = str(request.getfixturevalue("model"))
    for relative, build in case.files.items():
        target = folder_ / _fill(relative, mapping)
        target.parent.mkdir(parents=True, exist_ok=True)
        build(target, shared)
    env = {k: _fill(v, mapping) for k, v in case.env}
    for command in case.before:
        _checked([_fill(a, mapping) for a in command], extra_env=env)
    pass_fds: tuple[int, ...] = ()
    if case.pipe is not None:  # what `<(command)` hands a program: /dev/fd/N, read once
        reader, writer = os.pipe()
        os.write(writer, case.pipe.encode("utf-8"))
        os.close(writer)
        mapping["pipe"] = f"/dev/fd/{reader}"
        pass_fds = (reader,)
    before = _tree(tmp_path)

    args = [_fill(a, mapping) for a in case.argv]
    try:
        result = run_cli(
            *args,
            check=False,
            timeout=case.timeout,
            env=_env(env),
            cwd=folder_ / case.cwd,
            pass_fds=pass_fds,
        )
    finally:
        for fd in pass_fds:
            os.close(fd)

    output = result.stdout + result.stderr
    shown = f"traitforge {' '.join(args)}\nrc {result.returncode}\n{output}"
    flat = " ".join(re.sub(r"[│╭╮╰╯─┃]", " ", output).split())
    assert "Traceback" not in output, shown
    assert "Aborted." not in output, shown  # click's word for an EOFError nobody named
    assert "errors.pydantic.dev" not in output, shown  # a raw pydantic ValidationError
    assert result.returncode in case.rc, shown
    if result.returncode != 0 and case.error_line:
        assert re.search(r"\berror\b", result.stderr, re.IGNORECASE), shown
    if case.warn and result.returncode == 0:
        assert re.search(r"\bwarning\b", output, re.IGNORECASE), shown
    for word in case.words:
        assert " ".join(_fill(word, mapping).split()) in flat, f"{word!r} not shown\n{shown}"
    if case.any_of:
        assert any(w in flat for w in case.any_of), f"none of {case.any_of} shown\n{shown}"
    for word in case.absent:
        assert word not in output, f"{word!r} shown\n{shown}"

    after = _tree(tmp_path)
    if not case.may_delete:
        # A command never deletes what it did not write (SQLite removes its own -wal/-shm).
        gone = [p for p in before if p not in after and not re.search(r"-(wal|shm)$", p)]
        assert not gone, f"deleted {gone}\n{shown}"
    prefix = "x/y/case/"
    for path, content in before.items():
        if _under(path.removeprefix(prefix), case.unchanged) and content is not None:
            assert after.get(path) == content, f"{path} changed\n{shown}"
    if case.contained is not None:
        created = [p for p in after if p not in before]
        outside = [p for p in created if not _on_the_way(p.removeprefix(prefix), case.contained)]
        assert not outside, f"created outside {case.contained}: {outside}\n{shown}"
    for relative in case.missing:
        assert not (folder_ / relative).exists(), f"{relative} was created\n{shown}"
    if case.check is not None:
        case.check(result, folder_)


def test_every_command_meets_a_bad_input() -> None:
    """A command added to the CLI without a case here fails this, not silently."""
    covered = {
        case.argv[: len(path)]
        for case in CASES
        if not case.id.startswith("help-")
        for path in COMMANDS
    }
    groups = {path[:-1] for path in COMMANDS if path}
    leaves = [path for path in COMMANDS if path and path not in groups]
    assert [path for path in leaves if path not in covered] == []
