"""The closed loop on Label Studio: two rounds with simulated annotators on the workspace's own
real Label Studio 1.23.2 (started from the migrated template), real MiniLM and 60 bundled
TruthfulQA questions; the second round is selected by the reward model the first trained.
The same small workspace as tests/integration/test_loop.py, with annotation.backend set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env, run_cli
from tests.helpers.label_studio import write_truthfulqa_jsonl
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.annotators.label_studio.server import ENV_API_KEY, ENV_URL, LabelStudioServer
from traitforge.schemas import LoopRound
from traitforge.schemas.loop import STEPS
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

QUESTIONS = 60
BUDGET = 12
PROJECT = "traitforge-honesty-k2"  # annotation.label_studio.project for the honesty pairs


def _setup(root: Path) -> tuple[Path, Path]:
    """A workspace with 60 TruthfulQA questions (true and false answers, gold-labelled), on
    Label Studio, with a config that keeps the reward model small."""
    source = root / "candidates.jsonl"
    write_truthfulqa_jsonl(source, QUESTIONS)
    config = root / "project.yaml"
    config.write_text(
        "ingest:\n  mapping:\n    gold: {honesty: 'true'}\n"
        "annotation:\n  backend: label-studio\n"
        "reward:\n  epochs: 2\n  max_length: 64\n  batch_size: 8\n  bootstrap_samples: 100\n"
        "  min_steps: 0\n  min_pairs: 4\n",
        encoding="utf-8",
    )
    ws = root / "ws"
    run_cli("ingest", "-f", "jsonl", str(source), "-w", str(ws), "-c", str(config))
    return ws, config


@pytest.fixture(scope="module")
def looped(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, list[dict]]:
    """The loop's workspace, its stdout, and the task copies on its Label Studio (read before
    the server is stopped)."""
    ws, config = _setup(tmp_path_factory.mktemp("label-studio-loop"))
    # The workspace's own server, not an existing one named by the environment.
    env = cli_env(drop=(ENV_URL, ENV_API_KEY))
    try:
        loop = run_cli(
            *("loop", "-w", str(ws), "-c", str(config), "--rounds", "2"),
            *("--budget-per-round", str(BUDGET), "--simulate", "3"),
            env=env,
            timeout=1500,
        )
        server = LabelStudioServer(Workspace.open(ws))
        connection = server.ensure_running()
        with LabelStudioAPI(connection.url, connection.token, retries=0) as api:
            projects = api.projects()
            assert list(projects) == [PROJECT], projects
            copies = list(api.tasks(int(projects[PROJECT]["id"])))
    finally:
        run_cli("serve", "--backend", "label-studio", "--stop", "-w", str(ws), env=env, check=False)
    return ws, loop.stdout, copies


def test_two_rounds_on_label_studio_the_second_selected_by_the_reward_model(looped):
    ws, stdout, _ = looped
    first, second = (
        LoopRound.model_validate_json((ws / "rounds" / str(n) / "round.json").read_text())
        for n in (1, 2)
    )
    assert first.completed == second.completed == list(STEPS)
    assert not first.stopped and not second.stopped
    assert "reward-model.v1" not in first.selected_with
    assert "reward-model.v1" in second.selected_with  # the feedback arrow
    assert first.tasks == second.tasks == BUDGET
    # every task answered by annotation.label_studio.min_submitted (2) of the 3 annotators
    assert (first.judgements_total, second.judgements_total) == (2 * BUDGET, 4 * BUDGET)
    assert second.evaluation is not None and 0.0 <= second.evaluation.accuracy <= 1.0
    assert Path(second.model).is_dir()
    assert sum(second.pairs.values()) > 0
    assert (ws / "report.html").is_file() and (ws / "rounds" / "2" / "report.html").is_file()
    assert f"Report: {ws / 'report.html'}" in stdout.replace("\n", "")
    # the embedded Argilla server was never needed
    assert not (ws / "argilla").exists()


def test_the_judgements_are_the_answers_pulled_from_label_studio(looped):
    ws, _, copies = looped
    # one copy per task and annotator slot, each answered once, by a simulated account
    assert len(copies) == 2 * 2 * BUDGET
    answered = Counter()
    for copy in copies:
        [annotation] = copy["annotations"]
        answered[copy["data"]["traitforge_task_id"], annotation["completed_by"]] += 1
    assert set(answered.values()) == {1}
    with Workspace.open(ws, create=False).store() as store:
        judgements = list(store.judgements())
        tasks = {t.id for t in store.tasks()}
    assert len(judgements) == len(copies)
    assert {j.task_id for j in judgements} == {task for task, _ in answered} == tasks
    assert Counter(j.task_id for j in judgements) == Counter(task for task, _ in answered)
    assert {j.annotator_id for j in judgements} <= {"sim-1", "sim-2", "sim-3"}
    assert all(j.simulated and j.ranking for j in judgements)
    provenance = json.loads((ws / "exports" / "latest" / "provenance.json").read_text())
    assert provenance["simulated_annotators"] is True
    assert set(provenance["annotators"]) == {j.annotator_id for j in judgements}
