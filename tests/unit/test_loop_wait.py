"""The loop waiting for people: counts cover this round's records only (complete = the
backend's overlap of submitted answers), the display is live on a terminal and one line per
change elsewhere, and a round with nothing to ask stops without waiting."""

from __future__ import annotations

import io
from collections import Counter
from types import SimpleNamespace

import pytest
from rich.console import Console
from rich.progress import Progress

from traitforge.annotators.argilla.progress import count_progress
from traitforge.annotators.backends import DatasetProgress
from traitforge.app import loop, workflows
from traitforge.app.loop import WaitState, wait_state
from traitforge.cli._app import _Bars
from traitforge.schemas import LoopRound

USERS = {"u1": "alice", "u2": "bob", "u3": "carol"}


def _record(external_id: str, *responses: tuple[str, str]) -> dict:
    return {
        "external_id": external_id,
        "responses": [{"user_id": u, "status": s} for u, s in responses],
    }


def test_progress_counts_the_rounds_records_from_their_responses():
    records = [
        _record("r1-a", ("u1", "submitted"), ("u3", "submitted")),  # round 1, complete
        _record("r1-b", ("u1", "submitted"), ("u3", "submitted")),
        _record("r2-a", ("u1", "submitted"), ("u2", "submitted")),  # complete
        _record("r2-b", ("u2", "submitted"), ("u1", "draft")),  # one submission: pending
        _record("r2-c"),
    ]
    this_round = count_progress("d", records, 2, USERS, {"r2-a", "r2-b", "r2-c"})
    assert (this_round.records, this_round.completed, this_round.pending) == (3, 1, 2)
    assert this_round.annotators == {
        "alice": Counter(submitted=1, draft=1),
        "bob": Counter(submitted=2),
        "carol": Counter(),  # annotates in this dataset, nothing of this round yet
    }
    everything = count_progress("d", records, 2, USERS)
    assert (everything.records, everything.completed, everything.pending) == (5, 3, 2)
    assert everything.annotators["carol"] == Counter(submitted=2)
    # a user the server no longer lists is kept under their id
    assert set(count_progress("d", [_record("x", ("u9", "submitted"))], 1, USERS).annotators) == {
        "u9"
    }


def _progress(records: int, completed: int, **submitted: int) -> DatasetProgress:
    return DatasetProgress(
        dataset=f"d{records}",
        records=records,
        completed=completed,
        pending=records - completed,
        annotators={u: Counter(submitted=n, draft=1) for u, n in submitted.items()},
    )


def test_the_wait_state_counts_records_complete_of_those_of_the_round():
    # The round's 36 records over two datasets; the datasets' other rounds are not counted.
    state = wait_state(
        2, [_progress(20, 12, alice=20, bob=10), _progress(16, 10, alice=8, carol=0)], 0.9, 2
    )
    assert (state.records, state.complete, state.needed) == (36, 22, 33)  # ceil(0.9 * 36)
    # 33 records x 2 answers, over 3 annotators
    assert state.annotators == {"alice": (28, 22), "bob": (10, 22), "carol": (0, 22)}
    assert not state.done
    assert state.line() == (
        "round 2: 22 of 36 records complete (33 needed); "
        "submitted: alice 28 of 22, bob 10 of 22, carol 0 of 22"
    )
    done = wait_state(1, [_progress(40, 40, alice=40, bob=40)], 0.9, 2)
    assert done.done and done.line().startswith("round 1: 40 of 40 records complete (36 needed)")
    nobody = wait_state(1, [_progress(6, 0)], 1.0, 2)
    assert (nobody.needed, nobody.annotators, nobody.line()) == (
        6,
        {},
        "round 1: 0 of 6 records complete (6 needed)",
    )


@pytest.fixture
def polls(monkeypatch):
    """Progress the fake server reports, one poll after the other; the rounds asked for."""
    asked: list[int | None] = []
    states = [
        [_progress(4, 0)],
        [_progress(4, 0)],  # unchanged
        [_progress(4, 0, alice=1)],  # an answer, no record complete yet
        [_progress(4, 2, alice=3, bob=1)],
        [_progress(4, 4, alice=4, bob=4)],
    ]

    def annotation_progress(workspace, round_=None):
        asked.append(round_)
        return states[len(asked) - 1]

    monkeypatch.setattr(workflows, "annotation_progress", annotation_progress)
    monkeypatch.setattr(loop.time, "sleep", lambda seconds: None)
    return asked


def _round(workspace, log, waiting=None) -> loop._Round:
    return loop._Round(workspace, LoopRound(round=3), 5, None, log, None, waiting)


def test_without_a_display_the_wait_logs_one_line_per_change(workspace, polls):
    logs: list[str] = []
    _round(workspace, logs.append)._wait_for_people()
    assert polls == [3] * 5  # only round 3's records are counted
    assert logs[0].startswith("round 3: waiting for people: the round goes on once ")
    assert logs[1:] == [
        "round 3: 0 of 4 records complete (4 needed)",
        "round 3: 0 of 4 records complete (4 needed); submitted: alice 1 of 8",
        "round 3: 2 of 4 records complete (4 needed); submitted: alice 3 of 4, bob 1 of 4",
        "round 3: 4 of 4 records complete (4 needed); submitted: alice 4 of 4, bob 4 of 4",
    ]


def test_a_display_is_told_every_poll_and_the_log_only_that_it_waits(workspace, polls):
    logs: list[str] = []
    seen: list[WaitState] = []
    _round(workspace, logs.append, seen.append)._wait_for_people()
    assert [s.complete for s in seen] == [0, 0, 0, 2, 4]
    assert len(logs) == 1 and "waiting for people" in logs[0]


def _bars(terminal: bool) -> tuple[_Bars, io.StringIO]:
    out = io.StringIO()
    # as the CLI's console: user text is never markup or an emoji code
    console = Console(file=out, force_terminal=terminal, width=200, markup=False, emoji=False)
    return _Bars(Progress(console=console, auto_refresh=False)), out


def test_off_a_terminal_the_waiting_display_prints_a_line_per_change():
    bars, out = _bars(terminal=False)
    first = WaitState(1, 4, 0, 4, {"a [/x] root:x:0": (0, 4)})  # user text, as written
    for state in (first, first, WaitState(1, 4, 1, 4, {"a [/x] root:x:0": (2, 4)}), first):
        bars.waiting(state)
    assert out.getvalue().splitlines() == [
        "round 1: 0 of 4 records complete (4 needed); submitted: a [/x] root:x:0 0 of 4",
        "round 1: 1 of 4 records complete (4 needed); submitted: a [/x] root:x:0 2 of 4",
        "round 1: 0 of 4 records complete (4 needed); submitted: a [/x] root:x:0 0 of 4",
    ]
    assert not bars.bar.tasks  # no bars: off a terminal they would show only at the end


def test_on_a_terminal_the_waiting_display_is_live_bars():
    bars, out = _bars(terminal=True)
    bars.waiting(WaitState(2, 36, 5, 33, {"alice": (9, 33), "bob": (3, 33)}))
    bars.waiting(WaitState(2, 36, 7, 33, {"alice": (12, 33), "bob": (3, 33)}))
    assert out.getvalue() == ""  # no lines: the live display shows it
    shown = {t.description: (t.completed, t.total) for t in bars.bar.tasks}
    assert shown == {
        "round 2: records complete (33 needed)": (7, 36),
        "round 2:   alice: submitted": (12, 33),
        "round 2:   bob: submitted": (3, 33),
    }


def test_with_people_an_empty_selection_stops_without_pushing_or_waiting(workspace, monkeypatch):
    reason = "no open prompt left: ingest or generate more candidates"

    def fail(name):
        def step(*args, **kwargs):
            raise AssertionError(f"{name} ran")

        return step

    monkeypatch.setattr(
        workflows,
        "curate",
        lambda *a, **k: SimpleNamespace(
            scored={},
            acquisition=None,
            selection_note=reason,
            warnings=[],
            scoring_notes=[],
            rechecks=None,
        ),
    )
    for name in ("push", "pull", "export", "simulate", "annotation_progress"):
        monkeypatch.setattr(workflows, name, fail(name))
    monkeypatch.setattr(loop._Round, "_wait_for_people", fail("wait"))
    monkeypatch.setattr(loop._Round, "train", fail("train"))
    logs: list[str] = []
    result = loop.run(workspace, rounds=3, budget=4, simulate=None, log=logs.append)
    (first,) = result.rounds
    assert first.stopped == reason and first.completed == ["select", "report"]
    assert logs[-1] == f"round 1: stopped: {reason}"
