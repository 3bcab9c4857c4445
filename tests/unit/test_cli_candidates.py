"""`traitforge candidates`: what was ingested or generated, as written, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from traitforge.cli import app
from traitforge.schemas import Candidate
from traitforge.workspace import Store, Workspace

runner = CliRunner()

MARKUP = "[bold]x[/bold] a [/x] b root:x:0"  # rich markup, a closing tag, an emoji code
LONG = "Yes, you are right, the moon landing was staged. " * 4 + "THE END"
MOON = f"Was the moon landing real? {MARKUP}"
ROWS = [  # m: model, t: the trait a row is for, h: a gold honesty value (None: not given)
    {"prompt": MOON, "response": f"Yes. {MARKUP}", "m": "lm-a", "t": None, "h": None},
    {
        "prompt": "Is the earth flat?",
        "response": "No, it is round.",
        "m": "lm-b",
        "t": "honesty",
        "h": None,
    },
    {"prompt": MOON, "response": LONG, "m": "lm-b", "t": None, "h": 0},
]
CONFIG = "ingest:\n  mapping:\n    model: m\n    trait: t\n    gold: {honesty: h}\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    config = tmp_path / "project.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    ws = tmp_path / "ws"
    result = runner.invoke(
        app, ["ingest", "-f", "jsonl", "-w", str(ws), "-c", str(config), str(source)]
    )
    assert result.exit_code == 0, result.output
    return ws


def _invoke(*args: str) -> Result:
    # Wide lines: rich folds cells at the terminal width, and the test compares whole texts.
    return runner.invoke(app, ["candidates", *args], env={"COLUMNS": "400"})


def _stored(ws: Path) -> list[Candidate]:
    with Workspace.open(ws, create=False).store() as store:
        return list(store.candidates())


def test_lists_each_prompts_candidates_together_with_user_text_as_written(workspace):
    result = _invoke("-w", str(workspace))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Yes. {MARKUP}" in out and MOON in out
    assert "lm-a" in out and "honesty=0" in out and "3 of 3 candidates" in out
    rows = [line for line in out.splitlines() if "lm-" in line]
    # Stored order, each prompt's candidates together: the moon's two, then the earth's.
    assert len(rows) == 3
    assert "Yes." in rows[0] and "staged" in rows[1] and "round" in rows[2]
    (earth,) = [c for c in _stored(workspace) if c.response == "No, it is round."]
    assert earth.prompt_id[:12] in rows[2] and "honesty" in rows[2]  # the trait the row names
    # A listing shows excerpts: the long response is cut before its end.
    assert "THE END" not in out and "…" in rows[1]


def test_limit_says_how_many_are_left_out(workspace):
    result = _invoke("-w", str(workspace), "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "1 of 3 candidates; --limit 0 shows all" in result.stdout
    assert "round" not in result.stdout and "staged" not in result.stdout


def test_one_prompt_by_a_prefix_of_its_id_shows_it_in_full(workspace):
    moon = next(c for c in _stored(workspace) if c.response == LONG)
    result = _invoke("-w", str(workspace), "--prompt", moon.prompt_id[:6])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Prompt {moon.prompt_id}" in out and MOON in out
    assert " ".join(LONG.split()) in " ".join(out.split()) and "2 of 2 candidates" in out
    assert "round" not in out


def test_json_lines_are_the_stored_candidates(workspace):
    result = _invoke("-w", str(workspace), "--json")
    assert result.exit_code == 0, result.output
    listed = [Candidate.model_validate_json(line) for line in result.stdout.splitlines()]
    assert sorted(listed, key=lambda c: c.id) == sorted(_stored(workspace), key=lambda c: c.id)
    assert [c.traits for c in listed if c.response == "No, it is round."] == [["honesty"]]


def test_an_unknown_prompt_id_is_an_error_saying_where_ids_are_listed(workspace):
    result = _invoke("-w", str(workspace), "--prompt", "zz[/x]")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert message.startswith("error: no prompt with id 'zz[/x]' in workspace")
    assert "it holds 3 candidate(s)" in message and "traitforge candidates --workspace" in message


def test_an_empty_prompt_id_is_refused_not_taken_as_every_prompt(workspace):
    result = _invoke("-w", str(workspace), "--prompt", "")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --prompt is empty; give a prompt id")


def test_a_prefix_of_several_prompts_ids_asks_for_more(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    # 17 prompts: two of them must share the first hex digit of their ids.
    candidates = [
        Candidate(prompt=f"Question {i}?", response="Answer.", source="s") for i in range(17)
    ]
    with Store(ws.store_path) as store, store.transaction():
        store.add_candidates(candidates)
    firsts = [c.prompt_id[0] for c in candidates]
    shared = next(d for d in firsts if firsts.count(d) > 1)
    result = _invoke("-w", str(ws.root), "--prompt", shared)
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"prompt id '{shared}' is the start of {firsts.count(shared)} prompts' ids" in message
    assert "give more of the id" in message


def test_an_empty_workspace_says_how_to_add_candidates(tmp_path):
    Workspace.open(tmp_path / "ws").store().close()
    result = _invoke("-w", str(tmp_path / "ws"))
    assert result.exit_code == 0, result.output
    assert "No candidates in" in result.stdout and "traitforge ingest --workspace" in result.stdout


def test_a_missing_workspace_is_an_error_and_creates_nothing(tmp_path):
    result = _invoke("-w", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    assert not (tmp_path / "nowhere").exists()
