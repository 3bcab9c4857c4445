"""The closed loop on the real Argilla server, real MiniLM and the bundled TruthfulQA: two
rounds, the second selected by the reward model; killed as randomly chosen steps begin, it
continues and ends with the same dataset as an uninterrupted run."""

from __future__ import annotations

import csv
import itertools
import json
import random
import re
from pathlib import Path

import pytest

from tests.helpers.cli import CliProcess, data_files, run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge.annotators.server import free_port
from traitforge.schemas import LoopRound
from traitforge.schemas.loop import STEPS

pytestmark = pytest.mark.integration

QUESTIONS = 60
KILLS = 3
LOOP_ARGS = ("--rounds", "2", "--budget-per-round", "12", "--simulate", "3")


PORT = free_port()  # one port for both workspaces (never at once): their configs are equal


def _setup(root: Path) -> tuple[Path, Path]:
    """A workspace with 60 TruthfulQA questions (true and false answers, gold-labelled) and
    a config that keeps the reward model small."""
    with TRUTHFULQA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:QUESTIONS]
    source = root / "candidates.jsonl"
    with source.open("w", encoding="utf-8") as out:
        for row in rows:
            answers = [(a, 1) for a in row["Correct Answers"].split(";")[:2]]
            answers += [(a, 0) for a in row["Incorrect Answers"].split(";")[:2]]
            for answer, true in answers:
                record = {"prompt": row["Question"], "response": answer.strip(), "true": true}
                out.write(json.dumps(record) + "\n")
    config = root / "project.yaml"
    config.write_text(
        "ingest:\n  mapping:\n    gold: {honesty: 'true'}\n"
        f"annotation:\n  argilla:\n    port: {PORT}\n"
        "reward:\n  epochs: 2\n  max_length: 64\n  batch_size: 8\n  bootstrap_samples: 100\n"
        "  min_steps: 0\n  min_pairs: 4\n  warm_start: true\n",
        encoding="utf-8",
    )
    ws = root / "ws"
    run_cli("ingest", "-f", "jsonl", str(source), "-w", str(ws), "-c", str(config))
    return ws, config


def _loop(ws: Path, config: Path, *args: str) -> CliProcess:
    return CliProcess("loop", "-w", str(ws), "-c", str(config), *(args or LOOP_ARGS))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, str]:
    ws, config = _setup(tmp_path_factory.mktemp("straight"))
    try:
        with _loop(ws, config) as process:
            assert process.finish() == 0, process.stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    return ws, process.stdout


def test_two_rounds_the_second_selected_by_the_reward_model(uninterrupted):
    ws, stdout = uninterrupted
    first, second = (
        LoopRound.model_validate_json((ws / "rounds" / str(n) / "round.json").read_text())
        for n in (1, 2)
    )
    assert (
        first.completed
        == second.completed
        == [
            "select",
            "push",
            "annotate",
            "pull",
            "export",
            "train",
            "use-model",
            "report",
        ]
    )
    assert "reward-model.v1" not in first.selected_with
    assert "reward-model.v1" in second.selected_with  # the feedback arrow
    assert first.tasks == second.tasks == 12
    assert second.judgements_total == 48  # 24 tasks x min_submitted 2
    assert second.evaluation is not None and 0.0 <= second.evaluation.accuracy <= 1.0
    # gold-labelled data: 'auto' evaluates on the held-out gold pairs, and says so
    assert list(second.evaluated_on) == ["gold"] and second.evaluation_note is None
    assert second.evaluated_on["gold"] == second.evaluation.pairs + sum(
        second.evaluation.skipped.values()
    )
    assert Path(second.model).is_dir()
    # fine-tuned (the default method), round 2 continuing round 1's model (reward.warm_start)
    assert first.training["honesty"].method == "fine-tune"
    assert first.training["honesty"].started_from is None
    earlier = ws / "rounds" / "1" / "model" / "honesty"
    assert second.training["honesty"].started_from == str(earlier)
    assert (ws / "report.html").is_file() and (ws / "rounds" / "2" / "report.html").is_file()
    assert "Reward model:" in stdout and "Report:" in stdout


def test_killed_as_steps_begin_the_loop_ends_with_the_same_dataset(uninterrupted, tmp_path):
    straight, _ = uninterrupted
    ws, config = _setup(tmp_path)
    # Kill points are the loop's own "round N: step" lines, printed as a step begins: each
    # run is killed inside a step, and the next one resumes that step. One point is drawn in
    # each third of the run; the last step is left out, as a run killed there may be done.
    starts = [f"round {n}: {step}" for n in (1, 2) for step in STEPS][:-1]
    rng, third = random.Random(7), len(starts) // KILLS
    kill_points = [starts[rng.randrange(i * third, (i + 1) * third)] for i in range(KILLS)]
    try:
        killed = []
        for point in kill_points:
            with _loop(ws, config) as process:
                process.wait_for(point + "\n")
                process.kill()
                killed.append(point)
        with _loop(ws, config) as process:
            assert process.finish() == 0, process.stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    assert killed == kill_points
    out, reference = ws / "exports" / "latest", straight / "exports" / "latest"
    assert data_files(out) == data_files(reference)


def test_without_simulate_a_round_waits_for_people_then_goes_on(tmp_path):
    """The loop polls Argilla until the round's records are answered; here the 'people' are
    simulated accounts answering through the same API while the loop waits."""
    ws, config = _setup(tmp_path)
    with config.open("a", encoding="utf-8") as f:
        f.write("loop:\n  poll_seconds: 1\n")
    record = ws / "rounds" / "1" / "round.json"
    try:
        with _loop(ws, config, "--rounds", "1", "--budget-per-round", "6") as process:
            # the loop says it is waiting once it has polled Argilla and found nothing answered
            process.wait_for("round 1: 0 of 6 records complete (6 needed)\n")
            assert LoopRound.model_validate_json(record.read_text()).completed[-1] == "push"
            assert process.process.poll() is None  # waiting for answers, not finished
            run_cli("simulate", "-w", str(ws), "--annotators", "3")
            assert process.finish(timeout=600) == 0, process.stderr[-3000:]
        stdout = process.stdout
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    done = LoopRound.model_validate_json(record.read_text())
    assert done.completed[-1] == "report" and done.judgements_total == 12
    # Not a terminal: one line per change of the round's counts, none while nothing changed.
    waited = [line for line in stdout.splitlines() if " records complete (" in line]
    assert waited[0] == "round 1: 0 of 6 records complete (6 needed)", waited
    assert re.fullmatch(
        r"round 1: 6 of 6 records complete \(6 needed\); submitted: sim-1 \d+ of 4, .*", waited[-1]
    ), waited
    assert all(a != b for a, b in itertools.pairwise(waited)), waited
