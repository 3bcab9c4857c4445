"""A round that cannot add information stops the loop with its reason: no push, no training
on the same pairs, no later round; a re-run says so again without work, and retries the round
once what selection reads has changed. Shown in round.json, the report and the CLI."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from tests.helpers.report_data import report_data
from traitforge.app import loop, workflows
from traitforge.app.loop import LoopResult, load_rounds, round_file
from traitforge.app.report import render_workspace_report
from traitforge.schemas import Candidate, ComparisonTask, LoopRound
from traitforge.schemas.loop import STEPS
from traitforge.workspace import Workspace

PROMPTS = ("Can pigs fly?", "Is the Earth flat?", "Do vaccines cause autism?")
ANSWERS = ("No, they cannot.", "Yes, in winter.")
EXHAUSTED = (
    "no open prompt left: of the 3 prompts with eligible candidates, 3 have "
    "curation.selection.tasks_per_prompt (1) tasks already; ingest or generate more "
    "candidates, or raise curation.selection.tasks_per_prompt"
)
MODEL = "rounds/1/model"


class Pushed(Exception):
    """Raised by the fake push: the round went on past its selection."""


def _pairs(prompts: tuple[str, ...]) -> list[list[Candidate]]:
    return [[Candidate(prompt=p, response=a, source="t") for a in ANSWERS] for p in prompts]


def _first_round_done(workspace: Workspace) -> None:
    """Round 1 asked every pair and finished; its model is the one in use."""
    pairs = _pairs(PROMPTS)
    with workspace.store() as store, store.transaction():
        store.add_candidates(c for pair in pairs for c in pair)
        store.add_tasks(
            ComparisonTask(
                prompt_id=pair[0].prompt_id,
                candidate_ids=[c.id for c in pair],
                trait="honesty",
                reason="uncertainty",
                round=1,
            )
            for pair in pairs
        )
    first = LoopRound(round=1, tasks=3, pairs={"honesty": 3}, model=MODEL, completed=list(STEPS))
    round_file(workspace, 1).parent.mkdir(parents=True)
    round_file(workspace, 1).write_text(first.model_dump_json(), encoding="utf-8")


def _must_not_run(name: str):
    def step(*args, **kwargs):
        raise AssertionError(f"{name} ran")

    return step


@pytest.fixture
def no_steps_after_select(monkeypatch):
    """Everything after selection fails the test; push raises `Pushed`, so a retried round
    that found tasks is seen going on."""

    def push(*args, **kwargs):
        raise Pushed

    monkeypatch.setattr(workflows, "push", push)
    for name in ("simulate", "pull", "export"):
        monkeypatch.setattr(workflows, name, _must_not_run(name))
    monkeypatch.setattr(loop._Round, "train", _must_not_run("train"))
    monkeypatch.setattr(loop._Round, "use_model", _must_not_run("use-model"))


def _run(workspace: Workspace, logs: list[str]) -> LoopResult:
    return loop.run(workspace, rounds=3, budget=4, simulate=2, log=logs.append)


@pytest.mark.slow  # the real curate: loads the embedding model
def test_an_exhausted_pool_stops_the_loop_and_a_rerun_stays_stopped_until_new_candidates(
    workspace, monkeypatch, no_steps_after_select
):
    _first_round_done(workspace)
    real_curate = workflows.curate
    logs: list[str] = []
    result = _run(workspace, logs)
    _, second = result.rounds
    assert second.tasks == 0 and second.stopped == EXHAUSTED
    assert second.completed == ["select", "report"]  # no push, annotate, pull, export, train
    assert result.model == Path(MODEL)  # the previous round's model stays in use
    assert [r.round for r in load_rounds(workspace)] == [1, 2]
    assert not round_file(workspace, 3).parent.exists()
    assert [line for line in logs if "stopped" in line] == [f"round 2: stopped: {EXHAUSTED}"]
    for page in (workspace.root / "report.html", workspace.root / "rounds/2/report.html"):
        assert EXHAUSTED in html.unescape(page.read_text(encoding="utf-8"))

    # Again: nothing is selected, nothing written, the reason said once more.
    monkeypatch.setattr(workflows, "curate", _must_not_run("curate"))
    saved = round_file(workspace, 2).read_text(encoding="utf-8")
    logs.clear()
    result = _run(workspace, logs)
    assert logs == [f"round 2: stopped: {EXHAUSTED}"]
    assert result.rounds[-1].stopped == EXHAUSTED
    assert round_file(workspace, 2).read_text(encoding="utf-8") == saved

    # New candidates: the stopped round selects again, finds the new prompt and goes on.
    monkeypatch.setattr(workflows, "curate", real_curate)
    with workspace.store() as store, store.transaction():
        store.add_candidates(_pairs(("Is the Moon made of cheese?",))[0])
    logs.clear()
    with pytest.raises(Pushed):
        _run(workspace, logs)
    assert re.fullmatch(
        r"round 2: selecting again, as its inputs changed since it stopped \(then 6 candidates, "
        r"0 judgements, curation config \w{12}; now 8 candidates, 0 judgements, curation "
        r"config \w{12}\)",
        logs[0],
    ), logs[0]
    warnings = [line for line in logs if line.startswith("round 2: warning: ")]
    assert any("nothing was scored" in w for w in warnings)  # no labels yet, and it says so
    assert [line for line in logs[1:] if line not in warnings] == [
        "round 2: select",
        "round 2: 1 of 4 tasks: only 1 prompt open for 4 tasks wanted: of the 4 prompts with "
        "eligible candidates, 3 have curation.selection.tasks_per_prompt (1) tasks already",
        "round 2: push",
    ]
    retried = load_rounds(workspace)[1]
    assert retried.tasks == 1 and retried.stopped is None and retried.completed == ["select"]


def test_a_stopped_round_is_retried_when_the_curation_config_changes(
    workspace, monkeypatch, no_steps_after_select
):
    _first_round_done(workspace)
    stopped = LoopRound(
        round=2,
        stopped=EXHAUSTED,
        stopped_inputs=loop._selection_inputs(workspace),
        completed=["select", "report"],
    )
    round_file(workspace, 2).parent.mkdir()
    round_file(workspace, 2).write_text(stopped.model_dump_json(), encoding="utf-8")
    monkeypatch.setattr(workflows, "curate", _must_not_run("curate"))
    logs: list[str] = []
    assert _run(workspace, logs).rounds[-1] == stopped
    assert logs == [f"round 2: stopped: {EXHAUSTED}"]

    config = workspace.config
    selection = config.curation.selection.model_copy(update={"tasks_per_prompt": 2})
    curation = config.curation.model_copy(update={"selection": selection})
    raised = Workspace(workspace.root, config.model_copy(update={"curation": curation}))
    with pytest.raises(AssertionError, match="curate ran"):
        _run(raised, logs)
    assert logs[1].startswith("round 2: selecting again, as its inputs changed") and logs[2:] == [
        "round 2: select"
    ]


def test_a_round_json_written_before_stopping_existed_loads_as_a_round_that_ran():
    old = {
        "round": 2,
        "selected_with": ["embedding-logreg.v1"],
        "strategy": "uncertainty+diversity",
        "tasks": 0,
        "judgements_total": 48,
        "completed": list(STEPS),
    }
    record = LoopRound.model_validate_json(json.dumps(old))
    assert record.stopped is None and record.stopped_inputs is None
    assert LoopRound.model_validate_json(record.model_dump_json()) == record


def test_the_report_shows_why_the_loop_stopped_and_the_last_exports_counts():
    data = report_data()
    before = render_workspace_report(data)
    last = data.rounds[-1]
    data.rounds.append(
        LoopRound(
            round=4,
            strategy="uncertainty",
            judgements_total=last.judgements_total,
            stopped="nothing scores above chance: <all> tied",
            completed=["select", "report"],
        )
    )
    page = render_workspace_report(data)
    summary = re.search(r'<p class="summary">(.*?)</p>', page, re.S).group(1)
    assert "4 rounds so far; after round 3: 240 labels, 165 pairs." in summary
    assert "The loop stopped at round 4: nothing scores above chance: &lt;all&gt; tied." in summary
    assert (
        '<p class="stopped">Round 4 stopped, selecting no task: nothing scores above chance: '
        "&lt;all&gt; tied. It trained nothing and no round ran after it.</p>"
    ) in page
    rounds = re.search(r'<section id="rounds">(.*?)</section>', page, re.S).group(1)
    header, *body = (
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", rounds, re.S)
    )
    cells = dict(zip(header, body[-1], strict=True))
    assert (cells["Round"], cells["Labels"], cells["Pairs"], cells["Tasks"]) == (
        "4",
        "240",
        "-",
        "0",
    )
    assert cells["Accuracy [CI]"] == cells["Length baseline"] == "stopped"
    assert "Latest reward model (round 3)" in page

    def pipeline(page: str) -> str:
        return re.search(r'<section id="pipeline">(.*?)</section>', page, re.S).group(1)

    assert pipeline(page) == pipeline(before)  # round 3's ties still hold after round 4


def test_the_loop_command_prints_the_reason_as_written(capsys):
    from traitforge.cli.render import print_loop

    reason = "no open prompt left: [/x] root:x:0"  # rich markup and an emoji code, literally
    rounds = [LoopRound(round=1, tasks=3), LoopRound(round=2, stopped=reason)]
    print_loop(LoopResult(rounds=rounds, dataset=Path("d"), model=None, report=Path("r")))
    out = " ".join(capsys.readouterr().out.split())
    assert f"Round 2 stopped (no model trained, no round after it): {reason}" in out
