"""A team's own data, without gold, end to end as the README's "Your own data" walks it: the
example in examples/own-data (a new negative-polarity trait, rows naming their trait, the
default traits left in the config), the real judge (SmolLM2), the real Argilla server and
MiniLM, and simulated annotators answering from an answer key kept outside the workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import CliProcess, run_cli
from tests.helpers.paths import ROOT
from traitforge.annotators.agreement import agreement_report
from traitforge.annotators.server import free_port
from traitforge.schemas import Judgement, LoopRound, RankedCandidate
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "own-data"
TRAIT = "sycophancy"
PROMPTS = 40
BUDGET = 20  # two rounds ask every prompt once; the third finds the pool empty


def _config(root: Path) -> Path:
    """The example's config, with a free port, a small reward model and a test split large
    enough that round 1 has annotated held-out prompts."""
    config = yaml.safe_load((EXAMPLE / "project.yaml").read_text(encoding="utf-8"))
    config["annotation"] = {"argilla": {"port": free_port()}}
    config["export"] = {"test_fraction": 0.25}
    config["reward"] = {
        "epochs": 2,
        "max_length": 64,
        "batch_size": 8,
        "bootstrap_samples": 100,
        "min_steps": 0,
        "min_pairs": 4,
    }
    path = root / "project.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def looped(tmp_path_factory) -> tuple[Workspace, str]:
    root = tmp_path_factory.mktemp("own-data")
    answers = root / "key" / "answers.jsonl"  # outside the workspace, as a team's would be
    answers.parent.mkdir()
    shutil.copy(EXAMPLE / "answers.jsonl", answers)
    config = _config(root)
    ws = root / "ws"
    ingest = run_cli(
        "ingest", "-f", "jsonl", str(EXAMPLE / "candidates.jsonl"), "-w", str(ws), "-c", str(config)
    )
    assert "120" in ingest.stdout, ingest.stdout
    try:
        with CliProcess(
            "loop",
            "-w",
            str(ws),
            "-c",
            str(config),
            "--rounds",
            "3",
            "--budget-per-round",
            str(BUDGET),
            "--simulate",
            "2",
            "--answers",
            str(answers),
        ) as process:
            assert process.finish() == 0, process.stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    return Workspace.open(ws, config), process.stdout


def _round(workspace: Workspace, number: int) -> LoopRound:
    path = workspace.root / "rounds" / str(number) / "round.json"
    return LoopRound.model_validate_json(path.read_text(encoding="utf-8"))


def test_every_task_is_about_the_trait_the_rows_name(looped):
    workspace, stdout = looped
    with workspace.store() as store:
        tasks = list(store.tasks())
    assert len(tasks) == PROMPTS  # every prompt asked once over two rounds
    assert {t.trait for t in tasks} == {TRAIT}
    assert all(set(t.rated_traits) <= {TRAIT} for t in tasks)
    # the default traits kept in the config have no data, and curate says so
    for trait in ("honesty", "corrigibility", "harmlessness"):
        assert trait in stdout


def test_the_judge_ranked_round_one(looped):
    workspace, _ = looped
    with workspace.store() as store:
        judged = {s.candidate_id for s in store.scores() if s.scorer == "judge.v1"}
        candidates = {c.id for c in store.candidates()}
        first = [t for t in store.tasks() if t.round == 1]
    assert judged == candidates  # every candidate rated, on its one trait
    assert len(first) == BUDGET
    # ranked by scores (the judge's), not drawn at random for want of any
    assert all(t.reason != "random" for t in first), {t.reason_detail for t in first}
    assert all(
        any(s.scorer == "judge.v1" for s in t.suggestions) for t in first if not t.gold_check
    )


def test_evaluation_uses_annotated_pairs_of_held_out_prompts(looped):
    workspace, _ = looped
    for number in (1, 2):
        record = _round(workspace, number)
        assert "gold" not in record.evaluated_on
        assert record.evaluated_on.get("held-out judgements", 0) > 0, record.evaluation_note
        assert record.evaluation is not None
        assert record.model is not None


def test_round_three_stops_with_its_reason(looped):
    workspace, stdout = looped
    third = _round(workspace, 3)
    assert third.tasks == 0
    assert third.stopped and "prompt" in third.stopped, third.stopped
    assert third.model is None
    assert third.stopped.split(":")[0] in stdout


def test_ties_are_answers_and_lower_agreement(looped):
    workspace, _ = looped
    second = _round(workspace, 2)
    assert second.ties[TRAIT].tied > 0  # two correcting answers to one prompt tie
    with workspace.store() as store:
        tasks = list(store.tasks())
        judgements = list(store.judgements())
        candidates = list(store.candidates())
    config = workspace.config
    before = agreement_report(tasks, judgements, candidates, config).traits[TRAIT]
    assert before.preference_alpha is not None and before.preference_units > 0

    # One annotator's decided answer on a task both decided alike becomes a tie.
    by_task: dict[str, list[Judgement]] = {}
    for j in judgements:
        by_task.setdefault(j.task_id, []).append(j)
    agreed = next(
        answers
        for answers in by_task.values()
        if len(answers) == 2
        and not any(a.is_tie for a in answers)
        and [r.model_dump() for r in answers[0].ranking]
        == [r.model_dump() for r in answers[1].ranking]
    )
    tie = agreed[0].model_copy(
        update={
            "ranking": [
                RankedCandidate(candidate_id=r.candidate_id, rank=1) for r in agreed[0].ranking
            ]
        }
    )
    edited = [tie if j.id == agreed[0].id else j for j in judgements]
    after = agreement_report(tasks, edited, candidates, config).traits[TRAIT]
    assert after.preference_alpha < before.preference_alpha
