"""Push, re-push, simulate and pull through the Label Studio backend on the real Label Studio
1.23.2 (one server for the module, started from the migrated template).

Data: real TruthfulQA questions, a true against a false answer (pairs: Pairwise) and one true
against two false ones (triples: Ranker). The test workspace reaches the module's server as
an existing Label Studio would (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.label_studio import running_server, truthfulqa_triples, with_annotation
from traitforge.annotators.label_studio.backend import LabelStudioBackend
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.annotators.label_studio.projects import pull_stage, push_stage
from traitforge.annotators.records import presented_order
from traitforge.schemas import ComparisonTask, LabelStudioConfig, Suggestion
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

PAIRS, TRIPLES = "lsb-honesty-k2", "lsb-honesty-k3"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_server(tmp_path_factory.mktemp("label-studio-backend") / "server-ws") as server:
        yield server


@pytest.fixture(scope="module")
def workspace(
    server: tuple[str, str], tmp_path_factory: pytest.TempPathFactory, data_dir: Path
) -> Iterator[tuple[Workspace, list[ComparisonTask]]]:
    root = tmp_path_factory.mktemp("label-studio-backend") / "ws"
    settings = LabelStudioConfig(project="lsb-{trait}-k{k}", min_submitted=2, batch_size=3)
    ws = with_annotation(root, label_studio=settings)
    questions = truthfulqa_triples(data_dir, ws.config, 6)
    groups = [q[:2] for q in questions[:4]] + questions[4:]
    tasks = [
        ComparisonTask(
            prompt_id=members[0].prompt_id,
            candidate_ids=[c.id for c in members],
            trait="honesty",
            reason="uncertainty",
            suggestions=[
                Suggestion(candidate_id=c.id, trait="honesty", value=0.6, scorer="logreg.v1")
                for c in members
            ],
        )
        for members in groups
    ]
    with ws.store() as store, store.transaction():
        store.add_candidates(c for q in questions for c in q)
        store.add_tasks(tasks)
    url, token = server
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LABEL_STUDIO_URL", url)
        env.setenv("LABEL_STUDIO_API_KEY", token)
        yield ws, tasks


def _server_tasks(server: tuple[str, str], title: str) -> list[dict]:
    with LabelStudioAPI(*server, retries=0) as api:
        project = api.projects().get(title)
        return list(api.tasks(int(project["id"]))) if project else []


def test_an_existing_server_is_served_without_a_login_file_of_ours(server, workspace):
    ws, _ = workspace
    ui = LabelStudioBackend(ws).serve()
    assert ui.url == server[0]
    assert ui.owner_login is None and ui.annotator_logins is None
    assert not (ws.root / "label-studio").exists()  # nothing of a server of its own started


def test_push_sends_one_copy_per_annotator_and_a_re_push_sends_nothing(server, workspace):
    ws, tasks = workspace
    backend = LabelStudioBackend(ws)
    with ws.store() as store:
        first = backend.push(store)
        assert {d.dataset: (d.tasks, d.sent) for d in first.datasets} == {
            PAIRS: (4, 4),
            TRIPLES: (2, 2),
        }
        assert backend.pushed_datasets(store) == [PAIRS, TRIPLES]
        orders = store.presented_orders(PAIRS)
    on_server = _server_tasks(server, PAIRS)
    assert len(on_server) == 8
    assert Counter(t["data"]["traitforge_task_id"] for t in on_server) == {
        t.id: 2 for t in tasks[:4]
    }
    assert len({t["data"]["traitforge_id"] for t in on_server}) == 8
    assert all(t["predictions"][0]["model_version"] == "logreg.v1" for t in on_server)
    assert orders == {t.id: presented_order(t) for t in tasks[:4]}

    with ws.store() as store:
        again = backend.push(store)
        assert len(store.done_keys(push_stage(PAIRS))) == 8
    assert again.sent == 0
    assert {d.dataset: d.present for d in again.datasets} == {PAIRS: 4, TRIPLES: 2}
    assert len(_server_tasks(server, PAIRS)) == 8 and len(_server_tasks(server, TRIPLES)) == 4
    with LabelStudioAPI(*server, retries=0) as api:
        assert [p["title"] for p in api.projects().values()].count(PAIRS) == 1


def test_a_push_killed_after_the_import_sends_nothing_twice(server, workspace):
    """The store lost the record of a copy (as if a kill came between the server's import and
    the store's commit): the next push finds the copy on the server and sends nothing."""
    ws, _ = workspace
    with ws.store() as store:
        store._db.execute("DELETE FROM done WHERE stage = ?", (push_stage(TRIPLES),))
        again = LabelStudioBackend(ws).push(store)
        assert again.sent == 0
        assert len(store.done_keys(push_stage(TRIPLES))) == 4
    assert len(_server_tasks(server, TRIPLES)) == 4


def test_simulate_then_pull_gives_two_judgements_per_task(server, workspace):
    ws, tasks = workspace
    backend = LabelStudioBackend(ws)
    with ws.store() as store:
        simulated = backend.simulate(store, 2)
    assert simulated.answered == {"sim-1": 6, "sim-2": 6}
    assert not simulated.skipped
    with LabelStudioAPI(*server, retries=0) as api:
        users = {u["username"] for u in api.users()}
    assert {"sim-1", "sim-2"} <= users

    [pairs, triples] = backend.progress([PAIRS, TRIPLES, "absent"])
    assert (pairs.records, pairs.completed, pairs.pending) == (4, 4, 0)
    assert (triples.records, triples.completed) == (2, 2)
    assert pairs.annotators["sim-1"]["submitted"] == 4

    with ws.store() as store:
        pulled = backend.pull(store)
        judgements = list(store.judgements())
        assert len(store.done_keys(pull_stage(PAIRS))) == 8
    assert (pulled.new, pulled.changed, pulled.unchanged) == (12, 0, 0)
    assert not pulled.dropped and not pulled.ignored
    assert Counter(j.task_id for j in judgements) == {t.id: 2 for t in tasks}
    assert {j.annotator_id for j in judgements} == {"sim-1", "sim-2"}
    assert all(j.simulated and j.rationale and j.seconds is None for j in judgements)
    # Every task's pre-annotation is a tie with middling ratings; each answer changes it.
    assert all(j.kept_suggestion is False for j in judgements)
    by_id = {t.id: t for t in tasks}
    for j in judgements:
        task = by_id[j.task_id]
        assert {r.candidate_id for r in j.ranking} == set(task.candidate_ids)
        assert set(j.ratings) <= set(task.candidate_ids)
    # The true answer (each task's first candidate) wins most answers: the shown order and
    # the Pairwise sides map back to the right candidates.
    wins = sum(
        min(j.ranking, key=lambda r: r.rank).candidate_id == by_id[j.task_id].candidate_ids[0]
        for j in judgements
    )
    assert wins >= 9

    with ws.store() as store:
        again = backend.pull(store)
    assert (again.new, again.changed, again.unchanged) == (0, 0, 12)
    with ws.store() as store:
        assert backend.simulate(store, 2).answered == {}


def test_an_answer_that_does_not_fit_the_config_is_counted_not_stored(server, workspace):
    ws, _ = workspace
    copy = _server_tasks(server, PAIRS)[0]
    bad = {
        "result": [
            {
                "id": "x1",
                "from_name": "rating_honesty_a",
                "to_name": "response_a",
                "type": "rating",
                "value": {"rating": 99},
            }
        ]
    }
    answer = httpx.post(
        f"{server[0]}/api/tasks/{copy['id']}/annotations",
        headers={"Authorization": f"Token {server[1]}"},
        json=bad,
    )
    assert answer.status_code == 201, answer.text  # the server stores it as sent
    with ws.store() as store:
        before = sum(1 for _ in store.judgements())
        pulled = LabelStudioBackend(ws).pull(store)
        assert sum(1 for _ in store.judgements()) == before
    assert pulled.new == 0 and pulled.unchanged == 12
    assert sum(pulled.dropped.values()) == 1
    [reason] = pulled.dropped
    assert reason.startswith("invalid answer: ") and "rating_honesty_a" in reason
