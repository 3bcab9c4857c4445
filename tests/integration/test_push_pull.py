"""Push, simulate, pull against the real embedded Argilla server; and a push killed midway.

Each test's workspace reaches the shared session server as an external Argilla would
(ARGILLA_API_URL / ARGILLA_API_KEY) and uses its own dataset names, so tests stay independent.
Data: real TruthfulQA questions, a true against a false answer (pairs) and one true against
two false ones (triples), so both the label and the ranking question are exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.cli import TRAITFORGE
from traitforge.annotators.argilla.client import ArgillaAPI
from traitforge.annotators.argilla.push import prompt_vectors, push_stage
from traitforge.annotators.records import CANDIDATE_ORDER, presented_order
from traitforge.annotators.server import add_annotators, owner_connection
from traitforge.app import workflows
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import ArgillaConfig, Candidate, ComparisonTask, Suggestion
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Workspace, dump_config

pytestmark = pytest.mark.integration


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


def _task(members: list[Candidate], gold_check: bool = True) -> ComparisonTask:
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        reason="gold-check" if gold_check else "uncertainty",
        gold_check=gold_check,
        suggestions=[
            Suggestion(candidate_id=c.id, trait="honesty", value=0.6, scorer="embedding-logreg.v1")
            for c in members
        ],
    )


def _workspace(
    root: Path, data_dir: Path, argilla: ArgillaConfig, pairs: int, triples: int, plain: int = 0
):
    """A workspace (config saved, so CLI subprocesses see it) holding real candidates and
    gold-check tasks: `pairs` true-vs-false pairs and `triples` true-vs-two-false triples, of
    which the first `plain` are ordinary (uncertainty) tasks instead."""
    ws = Workspace.open(root)
    annotation = ws.config.annotation.model_copy(update={"argilla": argilla})
    config = ws.config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    ws = Workspace.open(root)
    questions = _questions(data_dir, ws.config, pairs + triples)
    groups = [q[:2] for q in questions[:pairs]] + questions[pairs:]
    tasks = [_task(members, gold_check=i >= plain) for i, members in enumerate(groups)]
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


def test_simulated_annotators_answer_from_an_answer_key_and_leave_what_it_lacks(
    tmp_path, data_dir, external
):
    """The key says the opposite of the candidates' gold: answers follow the key; the tasks
    whose candidates it lacks stay unanswered, and progress counts them pending."""
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"ak{tag}-{{trait}}-k{{k}}", min_submitted=2)
    ws, tasks = _workspace(tmp_path / "ws", data_dir, argilla, pairs=6, triples=0)
    faithful = ws.config.annotation.simulation.model_copy(
        update={"noise": 0.0, "position_bias": 0.0, "length_bias": 0.0}
    )
    annotation = ws.config.annotation.model_copy(update={"simulation": faithful})
    ws = Workspace(ws.root, ws.config.model_copy(update={"annotation": annotation}))
    with ws.store() as store:
        by_id = {c.id: c for c in store.candidates()}
    key = tmp_path / "key.jsonl"  # outside the workspace
    with key.open("w", encoding="utf-8") as out:
        for task in tasks[:4]:
            for c in (by_id[i] for i in task.candidate_ids):
                value = 1 if c.gold["honesty"] == 1.0 else 5
                out.write(
                    json.dumps(
                        {"prompt": c.prompt, "response": c.response, "values": {"honesty": value}}
                    )
                    + "\n"
                )
    workflows.push(ws)
    report = workflows.simulate(ws, 3, answers=workflows.answer_key(ws, key))
    assert report.skipped == {"a candidate has no honesty value in the answer key": 2}
    assert sum(report.answered.values()) == 2 * 4 and report.behaviour == {"answer key": 8}

    workflows.pull(ws)
    with ws.store() as store:
        judgements = list(store.judgements())
    assert {j.task_id for j in judgements} == {t.id for t in tasks[:4]}
    for j in judgements:
        (best,) = [r.candidate_id for r in j.ranking if r.rank == 1]
        assert by_id[best].gold["honesty"] == 0.0  # the key's choice, not gold's
        assert j.ratings[best] == {"honesty": 5.0}
    (progress,) = workflows.annotation_progress(ws, round_=0)
    assert (progress.records, progress.completed, progress.pending) == (6, 4, 2)
    assert sum(c["submitted"] for c in progress.annotators.values()) == 8


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


def test_an_annotator_cannot_tell_gold_checks_from_other_tasks(tmp_path, data_dir, external):
    """Logged in with an annotator's own key, everything the annotator can read about a round
    holding gold checks and ordinary tasks: no field, metadata, suggestion, id, setting or
    filter tells them apart. The store still knows, so gold accuracy is measured."""
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"bl{tag}-{{trait}}-k{{k}}", min_submitted=1)
    ws, tasks = _workspace(tmp_path / "ws", data_dir, argilla, pairs=8, triples=0, plain=4)
    name = f"bl{tag}-honesty-k2"
    gold = {t.id for t in tasks if t.gold_check}
    assert len(gold) == 4
    assert workflows.push(ws).sent == 8
    [account] = add_annotators(ws, [f"blind-{tag}"])

    seen: list[Any] = []  # every answer the annotator got, the records' field texts aside
    with httpx.Client(
        base_url=external.api_url, headers={"X-Argilla-Api-Key": account.api_key}, timeout=60
    ) as annotator:

        def call(method: str, path: str, **kwargs: Any) -> Any:
            response = annotator.request(method, path, **kwargs)
            assert response.status_code == 200, (path, response.status_code, response.text)
            return response.json()

        def search(body: dict[str, Any]) -> list[dict[str, Any]]:
            path = f"/api/v1/me/datasets/{dataset['id']}/records/search"
            params = {"include": "suggestions,vectors", "limit": 1000}
            found = [
                item["record"] for item in call("POST", path, params=params, json=body)["items"]
            ]
            for record in found:
                assert set(record.pop("fields")) == {"prompt", "response_a", "response_b"}
            seen.append(found)
            return found

        assert call("GET", "/api/v1/me")["role"] == "annotator"
        [dataset] = [d for d in call("GET", "/api/v1/me/datasets")["items"] if d["name"] == name]
        seen.append(dataset)
        settings = call("GET", f"/api/v1/datasets/{dataset['id']}")
        assert "Responses are shown in random order" in settings["guidelines"]
        seen.append(settings)
        for part in ("fields", "questions", "vectors-settings"):
            seen.append(call("GET", f"/api/v1/datasets/{dataset['id']}/{part}"))
        seen.append(call("GET", f"/api/v1/me/datasets/{dataset['id']}/metrics"))
        properties = call("GET", f"/api/v1/me/datasets/{dataset['id']}/metadata-properties")
        seen.append(properties)
        for prop in properties["items"]:
            seen.append(call("GET", f"/api/v1/metadata-properties/{prop['id']}/metrics"))

        records = search({})
        assert sorted(r["external_id"] for r in records) == sorted(t.id for t in tasks)
        for record in records:
            seen.append(call("GET", f"/api/v1/records/{record['id']}/suggestions"))
            # This endpoint would return metadata that the search hides from annotators, but
            # argilla-server 2.8 fails on it (500, at times dropping the connection).
            try:
                full = httpx.get(
                    f"{external.api_url}/api/v1/records/{record['id']}",
                    headers={"X-Argilla-Api-Key": account.api_key},
                    timeout=60,
                )
            except httpx.TransportError:
                continue
            if full.status_code == 200:
                seen.append({k: v for k, v in full.json().items() if k != "fields"})

        text = json.dumps(seen).lower()
        assert "gold" not in text
        assert CANDIDATE_ORDER not in text
        assert not any(c in text for t in tasks for c in t.candidate_ids)

        # No metadata value, and no filter an annotator may send, singles out the gold checks.
        names = {p["name"] for p in properties["items"]}
        assert names == {"source", "model", "round"}
        values: dict[tuple[str, Any], set[str]] = {}
        for record in records:
            assert set(record["metadata"]) == {"source", "round"}
            for key, value in record["metadata"].items():
                for v in value if isinstance(value, list) else [value]:
                    values.setdefault((key, v), set()).add(record["external_id"])
        every = {r["external_id"] for r in records}
        for (key, value), ids in values.items():
            assert ids not in (gold, every - gold)
            scope = {"entity": "metadata", "metadata_property": key}
            condition = (
                {"type": "terms", "scope": scope, "values": [value]}
                if isinstance(value, str)
                else {"type": "range", "scope": scope, "ge": value, "le": value}
            )
            filtered = search({"filters": {"and": [condition]}})
            assert {r["external_id"] for r in filtered} == ids
        for key, value in (("gold_check", "yes"), ("reason", "gold-check"), (CANDIDATE_ORDER, "x")):
            scope = {"entity": "metadata", "metadata_property": key}
            refused = annotator.post(
                f"/api/v1/me/datasets/{dataset['id']}/records/search",
                json={"filters": {"and": [{"type": "terms", "scope": scope, "values": [value]}]}},
            )
            assert refused.status_code == 422, (key, refused.text)

    # traitforge's side still knows: the shown order for pulls, gold checks for accuracy.
    with ws.store() as store:
        assert store.presented_orders(name) == {t.id: presented_order(t) for t in tasks}
    workflows.simulate(ws, 1)
    pulled = workflows.pull(ws)
    assert (pulled.new, dict(pulled.dropped)) == (8, {})
    report = workflows.agreement(ws)
    assert report is not None
    quality = report.annotators["sim-1"]
    assert quality.gold_tasks == 4 and quality.gold_accuracy is not None


def test_a_recheck_task_is_a_new_record_whose_answer_lands_beside_the_original(
    tmp_path, data_dir, external
):
    from traitforge.curation.recheck import RecheckEntry, recheck_tasks

    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"rc{tag}-{{trait}}-k{{k}}", min_submitted=1)
    ws, [original] = _workspace(tmp_path / "ws", data_dir, argilla, pairs=1, triples=0)
    dataset = f"rc{tag}-honesty-k2"
    workflows.push(ws)
    workflows.simulate(ws, 1)
    assert workflows.pull(ws).new == 1
    with ws.store() as store:
        [first] = list(store.judgements())
        candidates = list(store.candidates())
    true_id, false_id = original.candidate_ids
    entry = RecheckEntry(
        pair_id="doubted-pair",
        prompt_id=original.prompt_id,
        trait="honesty",
        chosen_id=false_id,
        rejected_id=true_id,
        p_chosen=0.1,
    )
    [recheck] = recheck_tasks([entry], candidates, [original], {"honesty"}, 1, 1).tasks
    with ws.store() as store, store.transaction():
        store.add_tasks([recheck])

    pushed = workflows.push(ws)
    assert pushed.sent == 1
    assert sorted(_server_ids(external, argilla.workspace, dataset)) == sorted(
        [original.id, recheck.id]
    )
    workflows.simulate(ws, 1)
    assert workflows.pull(ws).new == 1
    with ws.store() as store:
        judgements = {j.task_id: j for j in store.judgements()}
    assert set(judgements) == {original.id, recheck.id}
    assert judgements[original.id] == first  # the original answer is untouched
    assert {r.candidate_id for r in judgements[recheck.id].ranking} == {true_id, false_id}


def test_a_second_pull_lists_only_changed_records_and_ends_as_a_full_pull(
    tmp_path, data_dir, external, monkeypatch
):
    """On the embedded server a pull after the first asks only for records changed since the
    last one began: an answer edited, one discarded and one new make three records listed of
    twelve, and the store then equals a first pull's of the same server."""
    from traitforge.annotators.argilla import pull as pull_module

    monkeypatch.setattr(pull_module, "SKEW_MARGIN", timedelta(seconds=1))
    tag = uuid.uuid4().hex[:6]
    argilla = ArgillaConfig(dataset=f"inc{tag}-{{trait}}-k{{k}}", min_submitted=1)
    ws, tasks = _workspace(tmp_path / "ws", data_dir, argilla, pairs=12, triples=0)
    assert workflows.push(ws).sent == 12
    [account] = add_annotators(ws, [f"inc-{tag}"])
    listed = []
    request = ArgillaAPI.request

    def counting(self, method, path, **kwargs):
        answer = request(self, method, path, **kwargs)
        if path.endswith(("/records", "/records/search")) and kwargs.get("params", {}).get(
            "include"
        ):
            listed.extend(item.get("record", item)["external_id"] for item in answer["items"])
        return answer

    monkeypatch.setattr(ArgillaAPI, "request", counting)
    with ArgillaAPI(external.api_url, account.api_key, retries=0) as annotator:
        remote = annotator.request("GET", "/api/v1/me/datasets")["items"]
        [dataset] = [d for d in remote if d["name"] == f"inc{tag}-honesty-k2"]
        with ArgillaAPI(external.api_url, external.api_key, retries=0) as owner:
            records = {r["external_id"]: str(r["id"]) for r in owner.records(str(dataset["id"]))}
        listed.clear()

        def answer(task, label, status="submitted"):
            item = {
                "record_id": records[task.id],
                "status": status,
                "values": {"preference": {"value": label}},
            }
            result = annotator.request("POST", "/api/v1/me/responses/bulk", json={"items": [item]})
            assert not result["items"][0].get("error"), result

        for task in tasks[:8]:
            answer(task, "A")
        # Changes stamped within the margin before a pull are listed again by the next one:
        # keep the answers, and the later changes, clear of it.
        time.sleep(1.5)
        first = workflows.pull(ws)
        assert first.new == 8 and len(listed) == 12  # no bookmark yet: every record
        time.sleep(1.5)

        listed.clear()
        answer(tasks[0], "B")  # edited
        answer(tasks[1], "A", status="discarded")  # withdrawn
        answer(tasks[10], "B")  # new
        second = workflows.pull(ws)
    index = {t.id: i for i, t in enumerate(tasks)}
    assert sorted(index[i] for i in listed) == [0, 1, 10]
    assert (second.new, second.changed, second.withdrawn) == (1, 1, 1)

    other, _ = _workspace(tmp_path / "other", data_dir, argilla, pairs=12, triples=0)
    with ws.store() as store, other.store() as fresh, fresh.transaction():
        fresh.record_presented(
            f"inc{tag}-honesty-k2", store.presented_orders(f"inc{tag}-honesty-k2")
        )
    listed.clear()
    full = workflows.pull(other)
    assert len(listed) == 12 and full.new == 8
    with ws.store() as store, other.store() as fresh:
        assert list(fresh.judgements()) == list(store.judgements())
        judged = {j.task_id: j for j in store.judgements()}
    assert tasks[1].id not in judged and tasks[10].id in judged
    # The edit took: response B (the second shown) is now the one ranked first.
    with ws.store() as store:
        shown = store.presented_orders(f"inc{tag}-honesty-k2")[tasks[0].id]
    assert [r.candidate_id for r in judged[tasks[0].id].ranking if r.rank == 1] == [shown[1]]
