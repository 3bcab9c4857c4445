"""The closed loop on the real Argilla server, real MiniLM and the bundled TruthfulQA: two
rounds, the second selected by the reward model; killed at random points, it continues and
ends with the same dataset as an uninterrupted run."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.test_cli_demo import TRAITFORGE, _data_files, run_cli
from traitforge.annotators.server import free_port
from traitforge.app.workflows import bundled_data_dir
from traitforge.schemas import LoopRound

pytestmark = pytest.mark.integration

QUESTIONS = 60
KILLS = 3
LOOP_ARGS = ("--rounds", "2", "--budget-per-round", "12", "--simulate", "3")


PORT = free_port()  # one port for both workspaces (never at once): their configs are equal


def _setup(root: Path) -> tuple[Path, Path]:
    """A workspace with 60 TruthfulQA questions (true and false answers, gold-labelled) and
    a config that keeps the reward model small."""
    with (bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv").open(encoding="utf-8") as f:
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
        "  min_steps: 0\n  min_pairs: 4\n",
        encoding="utf-8",
    )
    ws = root / "ws"
    run_cli("ingest", "-f", "jsonl", str(source), "-w", str(ws), "-c", str(config))
    return ws, config


def _loop(ws: Path, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TRAITFORGE, "loop", "-w", str(ws), "-c", str(config), *LOOP_ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, float, str]:
    ws, config = _setup(tmp_path_factory.mktemp("straight"))
    started = time.monotonic()
    try:
        process = _loop(ws, config)
        stdout, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    return ws, time.monotonic() - started, stdout


def test_two_rounds_the_second_selected_by_the_reward_model(uninterrupted):
    ws, _, stdout = uninterrupted
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
            "score",
            "report",
        ]
    )
    assert "reward-model.v1" not in first.selected_with
    assert "reward-model.v1" in second.selected_with  # the feedback arrow
    assert first.tasks == second.tasks == 12
    assert second.labels == 48  # 24 tasks x min_submitted 2
    assert second.evaluation is not None and 0.0 <= second.evaluation["accuracy"] <= 1.0
    assert Path(second.model).is_dir()
    assert (ws / "report.html").is_file() and (ws / "rounds" / "2" / "report.html").is_file()
    assert "Reward model:" in stdout and "Report:" in stdout


def test_killed_at_random_points_the_loop_ends_with_the_same_dataset(uninterrupted, tmp_path):
    straight, seconds, _ = uninterrupted
    ws, config = _setup(tmp_path)
    rng = random.Random(7)
    kill_points = sorted(rng.uniform(3.0, seconds * 0.9) for _ in range(KILLS))
    try:
        killed = 0
        for delay in kill_points:
            process = _loop(ws, config)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                killed += 1
        process = _loop(ws, config)
        _, stderr = process.communicate(timeout=1200)
        assert process.returncode == 0, stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    assert killed >= 1, f"every run finished before its kill point {kill_points}"
    out, reference = ws / "exports" / "latest", straight / "exports" / "latest"
    assert _data_files(out) == _data_files(reference)


def test_without_simulate_a_round_waits_for_people_then_goes_on(tmp_path):
    """The loop polls Argilla until the round's records are answered; here the 'people' are
    simulated accounts answering through the same API while the loop waits."""
    ws, config = _setup(tmp_path)
    with config.open("a", encoding="utf-8") as f:
        f.write("loop:\n  poll_seconds: 1\n")
    try:
        process = subprocess.Popen(
            [
                TRAITFORGE,
                "loop",
                "-w",
                str(ws),
                "-c",
                str(config),
                "--rounds",
                "1",
                "--budget-per-round",
                "6",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        record = ws / "rounds" / "1" / "round.json"
        deadline = time.monotonic() + 600
        while not (
            record.is_file()
            and "push" in LoopRound.model_validate_json(record.read_text()).completed
        ):
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the loop never pushed its tasks"
            time.sleep(1)
        time.sleep(3)
        assert process.poll() is None  # waiting for answers, not finished
        run_cli("simulate", "-w", str(ws), "--annotators", "3")
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
    finally:
        run_cli("serve", "--workspace", str(ws), "--stop", check=False)
    done = LoopRound.model_validate_json(record.read_text())
    assert done.completed[-1] == "report" and done.labels == 12
    assert "records complete" in stdout + stderr  # the progress bar was shown
