"""Re-check tasks: the label audit's flagged pairs sent back to annotators by the next curate,
first within the budget, once; their answers are more votes on the pair."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.helpers.paths import TRUTHFULQA
from tests.unit.test_audit import _workspace
from traitforge.annotators.aggregation import DropCounter, answers_by_task, judgement_groups
from traitforge.app import workflows
from traitforge.cli import app
from traitforge.curation.pipeline import CurationState, SelectStage
from traitforge.curation.recheck import (
    INELIGIBLE,
    RECHECK_FILE,
    UNKNOWN_TRAIT,
    RecheckEntry,
    Rechecks,
    read_rechecks,
    recheck_tasks,
)
from traitforge.curation.scorers import CandidateFeatures
from traitforge.curation.sources import Parsed, source_format
from traitforge.errors import WorkspaceError
from traitforge.exports.strategies import pairs_from_group
from traitforge.schemas import ComparisonTask, Flag, Judgement, RankedCandidate

TRAITS = {"honesty"}


@pytest.fixture(scope="module")
def questions():
    """(true, false) candidates of 12 real TruthfulQA questions."""
    from traitforge.workspace import default_config

    out = []
    for parsed in source_format("truthfulqa").reader(TRUTHFULQA, default_config()):
        if isinstance(parsed, Parsed):
            true = [c for c in parsed.candidates if c.gold["honesty"] == 1.0]
            false = [c for c in parsed.candidates if c.gold["honesty"] == 0.0]
            out.append((true[0], false[0]))
        if len(out) == 12:
            break
    return out


def _entry(true, false, p=0.1):
    # The exported label says the false answer wins: the committee doubts it.
    return RecheckEntry(
        pair_id=f"pair-{false.id}",
        prompt_id=true.prompt_id,
        trait="honesty",
        chosen_id=false.id,
        rejected_id=true.id,
        p_chosen=p,
    )


def _original(true, false, reason="gold-check"):
    return ComparisonTask(
        prompt_id=true.prompt_id,
        candidate_ids=[true.id, false.id],
        trait="honesty",
        reason=reason,
        gold_check=reason == "gold-check",
    )


def test_entries_become_tasks_in_order_within_the_budget_with_ids_of_their_own(questions):
    entries = [_entry(t, f) for t, f in questions[:4]]
    original = _original(*questions[0])
    candidates = [c for q in questions for c in q]

    out = recheck_tasks(entries, candidates, [original], TRAITS, budget=3, round_=2)

    assert [t.prompt_id for t in out.tasks] == [t.prompt_id for t, _ in questions[:3]]
    assert out.waiting == 1 and out.skipped == {}
    first = out.tasks[0]
    assert first.id == entries[0].task_id != original.id  # a new record, never the old one
    assert set(first.candidate_ids) == set(original.candidate_ids)
    assert first.candidate_ids == sorted(first.candidate_ids)  # not chosen-first
    assert all(t.reason == "recheck" and not t.gold_check and t.round == 2 for t in out.tasks)
    assert len({t.id for t in out.tasks}) == 3
    assert entries[0].pair_id in first.reason_detail


def test_an_entry_sent_in_any_round_is_not_sent_again(questions):
    entries = [_entry(t, f) for t, f in questions[:3]]
    candidates = [c for q in questions for c in q]
    sent = recheck_tasks(entries, candidates, [], TRAITS, budget=2, round_=0).tasks

    later = recheck_tasks(entries, candidates, sent, TRAITS, budget=5, round_=1)

    assert [t.id for t in later.tasks] == [entries[2].task_id]
    assert later.waiting == 0


def test_entries_that_cannot_be_asked_are_skipped_and_counted(questions):
    (t0, f0), (t1, f1), (t2, f2) = questions[:3]
    other_trait = _entry(t2, f2).model_copy(update={"trait": "ghosts"})
    eligible = [t0, f0, t1, t2, f2]  # f1 flagged or gone

    out = recheck_tasks([_entry(t0, f0), _entry(t1, f1), other_trait], eligible, [], TRAITS, 5, 0)

    assert [t.prompt_id for t in out.tasks] == [t0.prompt_id]
    assert out.skipped == {INELIGIBLE: 1, UNKNOWN_TRAIT: 1}
    assert out.summary() == (
        f"re-check: 1 flagged pair sent back; 1 skipped: {INELIGIBLE}; 1 skipped: {UNKNOWN_TRAIT}."
    )


def _state(questions, flagged=()):
    candidates = [c for q in questions for c in q]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(candidates), 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    features = CandidateFeatures(
        candidates=candidates,
        prompt_vectors=vectors,
        response_vectors=vectors,
        embedding_model="test",
    )
    flags = [Flag(candidate_id=c, reason="language") for c in flagged]
    return CurationState(candidates=candidates, features=features, flags=flags, duplicates=[])


def test_the_select_stage_puts_rechecks_first_and_fills_the_rest_of_the_budget(config, questions):
    entries = [_entry(t, f) for t, f in questions[:2]]
    originals = [_original(*q) for q in questions[:2]]
    state = _state(questions)
    SelectStage(config, originals, budget=5, round_=1, rechecks=entries).process(state)

    tasks = state.tasks or []
    assert [t.reason for t in tasks[:2]] == ["recheck", "recheck"]
    assert len(tasks) == 5 and all(t.reason != "recheck" for t in tasks[2:])
    assert len({t.id for t in tasks} | {t.id for t in originals}) == 7
    assert state.rechecks is not None and len(state.rechecks.tasks) == 2

    # The next curate of that round: the budget is met, nothing is sent twice.
    again = _state(questions)
    SelectStage(config, [*originals, *tasks], budget=5, round_=1, rechecks=entries).process(again)
    assert again.tasks == [] and again.rechecks is not None and again.rechecks.tasks == []

    # A later round sends nothing already sent either.
    later = _state(questions)
    SelectStage(config, [*originals, *tasks], budget=3, round_=2, rechecks=entries).process(later)
    assert later.rechecks is not None and later.rechecks.tasks == []
    assert all(t.reason != "recheck" for t in later.tasks or [])


def test_rechecks_beyond_the_budget_wait(config, questions):
    entries = [_entry(t, f) for t, f in questions[:4]]
    state = _state(questions, flagged=[questions[0][1].id])
    SelectStage(config, [], budget=2, round_=0, rechecks=entries).process(state)

    assert [t.id for t in state.tasks or []] == [e.task_id for e in entries[1:3]]
    assert state.rechecks is not None
    assert (state.rechecks.waiting, state.rechecks.skipped) == (1, {INELIGIBLE: 1})


def test_recheck_answers_are_more_votes_on_the_original_task(config, questions):
    true, false = questions[0]
    original = _original(true, false, reason="uncertainty")
    [recheck] = recheck_tasks([_entry(true, false)], [true, false], [original], TRAITS, 1, 1).tasks

    def vote(task, who, first, second):
        return Judgement(
            task_id=task.id,
            annotator_id=who,
            ranking=[
                RankedCandidate(candidate_id=first.id, rank=1),
                RankedCandidate(candidate_id=second.id, rank=2),
            ],
        )

    judgements = [
        vote(original, "ann-1", false, true),
        vote(original, "ann-2", false, true),
        vote(recheck, "ann-2", true, false),  # ann-2 changes their mind on the re-check
        vote(recheck, "ann-3", true, false),
        vote(recheck, "ann-4", true, false),
    ]
    candidates = {true.id: true, false.id: false}
    drops = DropCounter()
    answers = answers_by_task([original, recheck], judgements, candidates, drops)
    assert list(answers) == [original.id]
    assert len(answers[original.id][1]) == 4
    assert drops == {"answer replaced by the same annotator's re-check": 1}
    [group] = judgement_groups(answers, candidates, config.trait("honesty"), drops)
    [pair] = pairs_from_group(group, "all-pairs", drops)
    assert (pair.chosen_id, pair.votes) == (true.id, 4)


def test_a_recheck_of_a_pair_no_task_asked_is_a_task_of_its_own(config, questions):
    true, false = questions[1]
    [recheck] = recheck_tasks([_entry(true, false)], [true, false], [], TRAITS, 1, 0).tasks
    judgement = Judgement(
        task_id=recheck.id,
        annotator_id="ann-1",
        ranking=[
            RankedCandidate(candidate_id=true.id, rank=1),
            RankedCandidate(candidate_id=false.id, rank=2),
        ],
    )
    answers = answers_by_task(
        [recheck], [judgement], {true.id: true, false.id: false}, DropCounter()
    )
    assert list(answers) == [recheck.id]


def test_audit_recheck_writes_the_flagged_pairs_and_a_rerun_writes_the_same(tmp_path):
    ws, _ = _workspace(
        tmp_path,
        {"a": (60, False), "b": (60, False)},
        flip={"b": range(0, 60, 10)},
    )
    result = workflows.audit(ws, recheck=True)
    path = ws.root / RECHECK_FILE
    first = path.read_bytes()
    rechecks = read_rechecks(path)
    assert rechecks is not None and rechecks.export == result.export
    flagged = {f.pair_id for t in result.traits.values() for f in t.flagged}
    assert flagged and {e.pair_id for e in rechecks.entries} == flagged
    assert [e.p_chosen for e in rechecks.entries] == sorted(e.p_chosen for e in rechecks.entries)
    with ws.store() as store:
        pairs = {p.id: p for p in store.pairs()}
    for e in rechecks.entries:
        assert (e.chosen_id, e.rejected_id) == (
            pairs[e.pair_id].chosen_id,
            pairs[e.pair_id].rejected_id,
        )

    workflows.audit(ws, recheck=True)
    assert path.read_bytes() == first

    out = CliRunner().invoke(app, ["audit", "--workspace", str(ws.root), "--recheck"])
    assert out.exit_code == 0, out.output
    flat = " ".join(out.output.split())
    assert f"re-check: {len(flagged)} flagged pairs recorded in" in flat
    assert path.read_bytes() == first


def test_audit_without_recheck_writes_no_list(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (60, False), "b": (60, False)})
    workflows.audit(ws)
    assert not (ws.root / RECHECK_FILE).exists()
    assert read_rechecks(ws.root / RECHECK_FILE) is None


def test_an_unreadable_recheck_list_is_an_error_naming_it(tmp_path):
    path = tmp_path / RECHECK_FILE
    path.write_text(json.dumps({"export": "x", "entries": [{"pair_id": 1}]}), encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"recheck\.json is not a re-check list.*--recheck"):
        read_rechecks(path)


def test_the_curation_output_names_the_rechecks_sent_back(questions, capsys):
    from traitforge.cli.render import print_curation
    from traitforge.curation.pipeline import CurationReport

    out = recheck_tasks(
        [_entry(t, f) for t, f in questions[:3]],
        [c for q in questions for c in q],
        [],
        TRAITS,
        2,
        0,
    )
    report = CurationReport(
        candidates=24,
        embedded={},
        flagged={},
        duplicates={},
        scored={},
        trained=[],
        new_tasks={"recheck": 2},
        tasks_in_round=2,
        budget=2,
        round=0,
        rechecks=out,
    )
    print_curation(report)
    printed = " ".join(capsys.readouterr().out.split())
    assert "re-check: 2 flagged pairs sent back; 1 waiting for a later round's budget." in printed
    print_curation(CurationReport(**{**report.__dict__, "rechecks": None}))
    assert "re-check" not in capsys.readouterr().out


def test_a_loop_round_logs_what_it_did_with_the_re_check_list(tmp_path, monkeypatch):
    from traitforge.app import loop, workflows
    from traitforge.curation.pipeline import CurationReport
    from traitforge.schemas import LoopRound
    from traitforge.workspace import Workspace

    workspace = Workspace.open(tmp_path / "w")
    report = CurationReport(
        candidates=0,
        embedded={},
        flagged={},
        duplicates={},
        scored={},
        trained=[],
        new_tasks={},
        tasks_in_round=0,
        budget=4,
        round=1,
        rechecks=Rechecks(waiting=2),
    )
    monkeypatch.setattr(workflows, "curate", lambda *args, **kwargs: report)
    logs: list[str] = []
    step = loop._Round(workspace, LoopRound(round=1), 4, 2, logs.append, None, None)
    step.select()
    assert (
        "round 1: re-check: 0 flagged pairs sent back; 2 waiting for a later round's "
        "budget." in logs
    )
