"""Push, simulate, pull against the real embedded Argilla server; and a push killed midway.

Each test's workspace reaches the shared session server as an external Argilla would
(ARGILLA_API_URL / ARGILLA_API_KEY) and uses its own dataset names, so tests stay independent.
Data: real TruthfulQA questions, a true against a false answer (pairs) and one true against
two false ones (triples), so both the label and the ranking question are exercised.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from traitforge import workflows
from traitforge.annotators.argilla_backend import ArgillaAPI, prompt_vectors, push_stage
from traitforge.annotators.server import owner_connection
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import ArgillaConfig, Candidate, ComparisonTask, Suggestion
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Workspace, dump_config

pytestmark = pytest.mark.integration

TRAITFORGE = str(Path(sys.executable).parent / "traitforge")


def _questions(data_dir: Path, config, limit: int) -> list[list[Candidate]]:
    path = data_dir / "truthfulqa" / "TruthfulQA.csv"
    out = []
    for parsed in source_format("truthfulqa").reader(path, config):
        if isinstance(parsed, Parsed):
            true = [c for c in parsed.candidates if c.gold["honesty"] == 1.0]
            false = [c for c in parsed.candidates if c.gold["honesty"] == 0.0]
            if true and len(false) >= 2:
                out.append([true[0], false[0], false[1]])
        if len(out) == limit:
            break
    return out


def _task(members: list[Candidate]) -> ComparisonTask:
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        reason="gold-check",
        gold_check=True,
        suggestions=[
            Suggestion(candidate_id=c.id, trait="honesty", value=0.6, scorer="test-scorer.v1")
            for c in members
        ],
    )


def _workspace(root: Path, data_dir: Path, argilla: ArgillaConfig, pairs: int, triples: int):
    """A workspace (config saved, so CLI subprocesses see it) holding real candidates and
    gold-check tasks: `pairs` true-vs-false pairs and `triples` true-vs-two-false triples."""
    ws = Workspace.open(root)
    annotation = ws.config.annotation.model_copy(update={"argilla": argilla})
    config = ws.config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    ws = Workspace.open(root)
    questions = _questions(data_dir, ws.config, pairs + triples)
    tasks = [_task(q[:2]) for q in questions[:pairs]] + [_task(q) for q in questions[pairs:]]
    with ws.store() as store, store.transaction():
        store.add_candidates(c for q in questions for c in q)
        store.add_tasks(tasks)
    return ws, tasks


@pytest.fixture
def external(argilla_server, monkeypatch):
    server_ws, _ = argilla_server
    owner = owner_connection(server_ws)
    monkeypatch.setenv("ARGILLA_API_URL", owner.api_url)
    monkeypatch.setenv("ARGILLA_API_KEY", owner.api_key)
    return owner


def _server_ids(owner, workspace: str, dataset: str) -> list[str]:
    """External ids of the dataset's records as the server lists them (duplicates kept)."""
    with ArgillaAPI(owner.api_url, owner.api_key, retries=0) as api:
        remote = api.datasets(api.workspace_id(workspace) or "")
        if dataset not in remote:
            return []
        return [r["external_id"] for r in api.records(str(remote[dataset]["id"]))]


def test_push_simulate_pull_end_to_end(tmp_path, data_dir, external):
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"pp{tag}-{{trait}}-k{{k}}", min_submitted=2, batch_size=25)
    ws, tasks = _workspace(tmp_path / "ws", data_dir, argilla, pairs=40, triples=12)
    pairs, triples = f"pp{tag}-honesty-k2", f"pp{tag}-honesty-k3"

    first = workflows.push(ws)
    assert {d.dataset: d.sent for d in first.datasets} == {pairs: 40, triples: 12}
    assert sorted(_server_ids(external, argilla.workspace, pairs)) == sorted(
        t.id for t in tasks[:40]
    )
    assert len(_server_ids(external, argilla.workspace, triples)) == 12

    again = workflows.push(ws)
    assert again.sent == 0
    assert {d.dataset: d.present for d in again.datasets} == {pairs: 40, triples: 12}
    assert len(_server_ids(external, argilla.workspace, pairs)) == 40

    simulated = workflows.simulate(ws, 3)
    assert set(simulated.answered) == {"sim-1", "sim-2", "sim-3"}
    # every record gets exactly min_submitted answers: the server's task distribution stops
    # handing out a record once it is complete
    assert sum(simulated.answered.values()) == 2 * len(tasks)

    pulled = workflows.pull(ws)
    assert (pulled.new, pulled.changed, pulled.unchanged) == (2 * len(tasks), 0, 0)
    assert not pulled.dropped
    with ws.store() as store:
        judgements = list(store.judgements())
    assert len(judgements) == 2 * len(tasks)
    assert all(j.simulated for j in judgements)
    assert {j.annotator_id for j in judgements} == {"sim-1", "sim-2", "sim-3"}
    per_task: dict[str, int] = {}
    for j in judgements:
        per_task[j.task_id] = per_task.get(j.task_id, 0) + 1
    assert per_task == {t.id: 2 for t in tasks}
    # The true answer (first candidate of every task) should win most votes: the shuffled
    # letters and rankings map back to the right candidates.
    by_task = {t.id: t for t in tasks}
    wins = sum(
        any(
            r.candidate_id == by_task[j.task_id].candidate_ids[0] and r.rank == 1 for r in j.ranking
        )
        for j in judgements
    )
    assert wins / len(judgements) > 0.7
    assert all(j.submitted_at is not None and j.rationale for j in judgements)
    assert any(j.ratings for j in judgements)

    repeat = workflows.pull(ws)
    assert (repeat.new, repeat.changed, repeat.unchanged) == (0, 0, 2 * len(tasks))
    with ws.store() as store:
        assert store.counts()["judgements"] == 2 * len(tasks)

    progress = workflows.annotation_progress(ws)
    assert not isinstance(progress, str)
    counts = {d.dataset: d for d in progress}
    assert (counts[pairs].records, counts[pairs].completed, counts[pairs].pending) == (40, 40, 0)
    submitted = sum(c["submitted"] for d in progress for c in d.annotators.values())
    assert submitted == 2 * len(tasks)


def test_a_response_to_a_record_without_task_is_dropped_and_counted(tmp_path, data_dir, external):
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"dr{tag}-{{trait}}-k{{k}}", min_submitted=1)
    ws, _ = _workspace(tmp_path / "ws", data_dir, argilla, pairs=3, triples=0)
    workflows.push(ws)
    # The task disappears from the workspace (e.g. a store restored from an older backup)
    # after an annotator answered it.
    workflows.simulate(ws, 1)
    other, _ = _workspace(tmp_path / "other", data_dir, argilla, pairs=2, triples=0)
    report = workflows.pull(other)
    assert report.new == 2
    assert report.dropped == {"response to a record that maps to no task in the workspace": 1}


def test_a_push_killed_midway_resumes_without_duplicates(tmp_path, data_dir, external):
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"kill{tag}-{{trait}}-k{{k}}", batch_size=5, concurrency=1)
    ws, tasks = _workspace(tmp_path / "ws", data_dir, argilla, pairs=300, triples=0)
    dataset = f"kill{tag}-honesty-k2"
    # Embed the prompts here, so the killed process spends its time pushing, not loading a model.
    with ws.store() as store:
        candidates = {c.id: c for c in store.candidates()}
    prompt_vectors(ws.config, ws.embedding_cache_path)(
        sorted({prompt_text(candidates[t.candidate_ids[0]].prompt) for t in tasks})
    )
    command = [TRAITFORGE, "push", "-w", str(ws.root)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy()
    )
    deadline = time.monotonic() + 120
    landed: list[str] = []
    while time.monotonic() < deadline and process.poll() is None:
        landed = _server_ids(external, argilla.workspace, dataset)
        if landed:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    at_kill = len(_server_ids(external, argilla.workspace, dataset))
    assert 0 < at_kill < len(tasks), f"kill landed outside the push ({at_kill} records)"

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    ids = _server_ids(external, argilla.workspace, dataset)
    assert len(ids) == len(set(ids)) == len(tasks)
    assert set(ids) == {t.id for t in tasks}
    with ws.store() as store:
        assert store.done_keys(push_stage(dataset)) == {t.id for t in tasks}
