"""Push and pull stream through the store batch by batch, against a small fake of the Argilla
REST API (`ArgillaAPI`): what they send, in which order, what they hold, and what an
incremental pull asks for."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from traitforge.annotators.argilla import pull as pull_module
from traitforge.annotators.argilla import push as push_module
from traitforge.annotators.argilla.datasets import RemoteDataset
from traitforge.annotators.argilla.pull import lists_changes, pull, pull_stage
from traitforge.annotators.argilla.push import push, push_stage, queue_position
from traitforge.annotators.records import PREFERENCE, presented_order
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig
from traitforge.workspace import Store

DATASET = "tf-honesty-k2"
CONNECTION = type("Connection", (), {"api_url": "http://fake", "api_key": "k"})()


def _config(config: ProjectConfig, batch_size: int = 3, concurrency: int = 1) -> ProjectConfig:
    argilla = config.annotation.argilla.model_copy(
        update={"dataset": "tf-{trait}-k{k}", "batch_size": batch_size, "concurrency": concurrency}
    )
    return config.model_copy(
        update={"annotation": config.annotation.model_copy(update={"argilla": argilla})}
    )


def _fill(store: Store, n: int) -> list[ComparisonTask]:
    """n pairs on n prompts, rounds 1, 0, 1, 0, ... so queue order differs from id order."""
    candidates, tasks = [], []
    for i in range(n):
        pair = [
            Candidate(prompt=f"Question {i}?", response=f"answer {i}{s}", source="t") for s in "ab"
        ]
        candidates += pair
        tasks.append(
            ComparisonTask(
                prompt_id=pair[0].prompt_id,
                candidate_ids=[c.id for c in pair],
                trait="honesty",
                reason="uncertainty",
                round=(i + 1) % 2,
            )
        )
    with store.transaction():
        store.add_candidates(candidates)
        store.add_tasks(tasks)
    return tasks


class FakeArgilla:
    """The ArgillaAPI calls push and pull make, over records kept in a dict."""

    def __init__(self, store_path, on_server: set[str] = frozenset(), engine: str = "2") -> None:
        self.store_path = store_path
        self.sent: list[list[str]] = []
        self.presented_before_upsert: list[bool] = []
        self.records: dict[str, dict[str, Any]] = {}
        for external_id in on_server:
            self._add(external_id)
        self.engine = {"distribution": "traitforge-sql", "version": engine}
        self.listed = 0  # records returned by listings
        self.since: list[datetime] = []
        self.lock = threading.Lock()

    def __enter__(self) -> FakeArgilla:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _add(self, external_id: str) -> None:
        self.records[external_id] = {
            "id": str(uuid.uuid4()),
            "external_id": external_id,
            "responses": [],
            "updated_at": datetime.now(UTC),
        }

    # -- push --
    def workspace_id(self, name: str, create: bool = False) -> str:
        return "ws"

    def datasets(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        return {DATASET: {"id": "d1", "status": "ready"}} if self.records else {}

    def external_ids(self, dataset_id: str) -> set[str]:
        return set(self.records)

    def upsert(self, dataset_id: str, items: list[dict[str, Any]]) -> int:
        ids = [i["external_id"] for i in items]
        with Store(self.store_path) as own:  # this thread's own connection
            orders = own.presented_orders(DATASET, ids)
        with self.lock:
            self.presented_before_upsert.append(set(orders) == set(ids))
            self.sent.append(ids)
            for external_id in ids:
                self._add(external_id)
        return len(items)

    # -- pull --
    def usernames(self) -> dict[str, str]:
        return {"u1": "alice", "u2": "bob"}

    def search_engine(self) -> dict[str, Any]:
        return self.engine

    def record_count(self, dataset_id: str) -> int:
        return len(self.records)

    def _page(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.listed += len(records)
        return [{k: v for k, v in r.items() if k != "updated_at"} for r in records]

    def record_pages(self, dataset_id: str, include: str | None = None):
        everything = list(self.records.values())
        for start in range(0, len(everything), 4):
            yield self._page(everything[start : start + 4])

    def changed_record_pages(self, dataset_id: str, since: datetime, include: str | None = None):
        self.since.append(since)
        changed = [
            r
            for r in self.records.values()
            if max([r["updated_at"], *(_stamp(x) for x in r["responses"])]) >= since
        ]
        for start in range(0, len(changed), 4):
            yield self._page(changed[start : start + 4])

    def answer(self, external_id: str, user: str, label: str, status: str = "submitted") -> None:
        record = self.records[external_id]
        record["responses"] = [r for r in record["responses"] if r["user_id"] != user]
        record["responses"].append(
            {
                "id": f"{external_id}-{user}",
                "user_id": user,
                "status": status,
                "values": {PREFERENCE: {"value": label}},
                "updated_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
            }
        )


def _stamp(response: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(response["updated_at"]).replace(tzinfo=UTC)


@pytest.fixture
def fake(monkeypatch, workspace):
    holder: dict[str, FakeArgilla] = {}

    def connect(connection, retries=5):
        return holder["api"]

    monkeypatch.setattr(push_module.ArgillaAPI, "connect", staticmethod(connect))

    def ensure(api, connection, config, layout, dimensions):
        return RemoteDataset("d1", layout.name, {}, {"round", "source"}, dimensions)

    monkeypatch.setattr(push_module, "ensure_dataset", ensure)

    def make(**kwargs: Any) -> FakeArgilla:
        holder["api"] = FakeArgilla(workspace.store_path, **kwargs)
        return holder["api"]

    return make


def test_push_sends_in_queue_order_batch_by_batch_without_listing_every_candidate(
    fake, workspace, config, monkeypatch
):
    with workspace.store() as store:
        tasks = _fill(store, 8)
    api = fake()
    lookups: list[list[str]] = []

    def vectors(texts):
        lookups.append(list(texts))
        return {t: [0.1, 0.2] for t in texts}

    def every_candidate(self):
        raise AssertionError("push read every candidate")

    monkeypatch.setattr(Store, "candidates", every_candidate)
    monkeypatch.setattr(push_module, "READ_CHUNK", 5)  # batches span store chunks
    with workspace.store() as store:
        report = push(store, _config(config), CONNECTION, vectors)
        assert store.done_keys(push_stage(DATASET)) == {t.id for t in tasks}
        assert store.presented_orders(DATASET) == {t.id: presented_order(t) for t in tasks}
    expected = [t.id for t in sorted(tasks, key=queue_position)]
    assert [i for batch in api.sent for i in batch] == expected
    assert [len(b) for b in api.sent] == [3, 3, 2]
    assert all(api.presented_before_upsert)
    # The vectors are looked up per batch, for that batch's prompts only.
    assert [len(texts) for texts in lookups] == [3, 3, 2]
    (dataset,) = report.datasets
    assert (dataset.tasks, dataset.present, dataset.sent, dataset.without_vector) == (8, 0, 8, 0)


def test_a_rerun_sends_only_what_the_server_lacks_and_marks_the_rest_done(fake, workspace, config):
    with workspace.store() as store:
        tasks = _fill(store, 7)
    held = {t.id for t in tasks[:4]}
    api = fake(on_server=held)
    with workspace.store() as store:
        report = push(store, _config(config, concurrency=3), CONNECTION)
        assert store.done_keys(push_stage(DATASET)) == {t.id for t in tasks}
    assert sorted(i for batch in api.sent for i in batch) == sorted(t.id for t in tasks[4:])
    (dataset,) = report.datasets
    assert (dataset.present, dataset.sent) == (4, 3)
    with workspace.store() as store:
        assert push(store, _config(config), CONNECTION).sent == 0
    assert sum(len(b) for b in api.sent) == 3


def test_a_task_whose_candidate_is_gone_is_skipped_and_counted(fake, workspace, config):
    with workspace.store() as store:
        tasks = _fill(store, 4)
        gone = ComparisonTask(
            prompt_id=tasks[0].prompt_id,
            candidate_ids=[tasks[0].candidate_ids[0], "no-such-candidate"],
            trait="honesty",
            reason="uncertainty",
        )
        with store.transaction():
            store.add_tasks([gone])
    api = fake()
    with workspace.store() as store:
        report = push(store, _config(config), CONNECTION)
    assert report.skipped == {"a candidate is no longer in the workspace": 1}
    assert report.datasets[0].tasks == 4
    assert gone.id not in {i for batch in api.sent for i in batch}


def test_store_reads_by_ids_and_in_queue_order(workspace):
    with workspace.store() as store:
        tasks = _fill(store, 5)
        ids = [tasks[1].id, tasks[3].id, "missing"]
        assert set(store.tasks_by_ids(ids)) == {tasks[1].id, tasks[3].id}
        wanted = [*tasks[2].candidate_ids, "missing"]
        assert set(store.candidates_by_ids(wanted)) == set(tasks[2].candidate_ids)
        assert store.stored_candidate_ids(wanted) == set(tasks[2].candidate_ids)
        queued = [t.id for t in store.queued_tasks("honesty", 2)]
        assert queued == [t.id for t in sorted(tasks, key=queue_position)]
        assert list(store.queued_tasks("honesty", 3)) == []
        assert store.bookmark("x") is None
        with store.transaction():
            store.set_bookmark("x", "2026-01-01T00:00:00+00:00")
        assert store.bookmark("x") == "2026-01-01T00:00:00+00:00"


def _judged(workspace) -> dict[str, Any]:
    with workspace.store() as store:
        return {j.id: j for j in store.judgements()}


def test_a_second_pull_lists_only_the_changed_records_and_ends_as_a_full_pull(
    fake, workspace, config, monkeypatch, tmp_path
):
    monkeypatch.setattr(pull_module, "SKEW_MARGIN", timedelta(0))
    with workspace.store() as store:
        tasks = _fill(store, 10)
    api = fake()
    cfg = _config(config, batch_size=5)
    with workspace.store() as store:
        push(store, cfg, CONNECTION)
    for t in tasks[:6]:
        api.answer(t.id, "u1", "A")
    with workspace.store() as store:
        first = pull(store, cfg, CONNECTION)
    assert (first.new, api.listed, api.since) == (6, 10, [])  # no bookmark yet: full listing

    api.listed = 0
    api.answer(tasks[0].id, "u1", "B")  # edited
    api.answer(tasks[1].id, "u1", "A", status="discarded")  # withdrawn
    api.answer(tasks[7].id, "u2", "B")  # new
    with workspace.store() as store:
        second = pull(store, cfg, CONNECTION)
    assert api.listed == 3
    assert (second.new, second.changed, second.unchanged, second.withdrawn) == (1, 1, 0, 1)
    assert not second.ignored
    pairs = {(j.task_id, j.annotator_id) for j in _judged(workspace).values()}
    assert (tasks[1].id, "alice") not in pairs

    # The same server state pulled in full into a fresh store ends identical.
    fresh = Store(tmp_path / "fresh.sqlite")
    with workspace.store() as store, fresh:
        with fresh.transaction():
            fresh.add_tasks(store.tasks())
            fresh.record_presented(DATASET, store.presented_orders(DATASET))
        pull(fresh, cfg, CONNECTION)
        assert {j.id: j for j in fresh.judgements()} == _judged(workspace)
        # (the store keeps the keys of superseded edits too; a fresh pull never saw those)
        assert fresh.done_keys(pull_stage(DATASET)) <= store.done_keys(pull_stage(DATASET))

    # Nothing changed since: nothing is listed. Listed again (a margin reaching back past
    # every change), the withdrawn answer is only counted.
    api.listed = 0
    with workspace.store() as store:
        assert pull(store, cfg, CONNECTION).new == 0
        assert api.listed == 0
        monkeypatch.setattr(pull_module, "SKEW_MARGIN", timedelta(hours=1))
        third = pull(store, cfg, CONNECTION)
    assert api.listed == 10
    assert (third.new, third.changed, third.unchanged, third.withdrawn) == (0, 0, 6, 0)
    assert third.ignored == {"discarded": 1}


def test_the_pull_bookmark_is_the_start_of_the_last_pull_less_the_margin(fake, workspace, config):
    with workspace.store() as store:
        _fill(store, 2)
    api = fake()
    cfg = _config(config)
    with workspace.store() as store:
        push(store, cfg, CONNECTION)
        before = datetime.now(UTC)
        pull(store, cfg, CONNECTION)
        pull(store, cfg, CONNECTION)
        mark = datetime.fromisoformat(store.bookmark(pull_stage(DATASET)) or "")
    (since,) = api.since
    assert before - pull_module.SKEW_MARGIN <= since <= mark - pull_module.SKEW_MARGIN


@pytest.mark.parametrize(
    "engine",
    [
        {"distribution": "elasticsearch", "version": "8.17.0"},
        {"distribution": "traitforge-sql", "version": "1"},
        {"distribution": "traitforge-sql", "version": "x"},
        {},
    ],
)
def test_servers_whose_engine_cannot_list_changes_get_a_full_listing(
    engine, fake, workspace, config
):
    assert not lists_changes(engine)
    with workspace.store() as store:
        _fill(store, 3)
    api = fake()
    api.engine = engine
    cfg = _config(config)
    with workspace.store() as store:
        push(store, cfg, CONNECTION)
        pull(store, cfg, CONNECTION)
        api.listed = 0
        pull(store, cfg, CONNECTION)
    assert (api.listed, api.since) == (3, [])


def test_pull_reads_tasks_per_page_not_all_at_once(fake, workspace, config, monkeypatch):
    with workspace.store() as store:
        tasks = _fill(store, 9)
    api = fake()
    cfg = _config(config)
    with workspace.store() as store:
        push(store, cfg, CONNECTION)
    for t in tasks:
        api.answer(t.id, "u1", "A")
    asked: list[int] = []
    by_ids = Store.tasks_by_ids

    def spy(self, ids):
        ids = list(ids)
        asked.append(len(ids))
        return by_ids(self, ids)

    monkeypatch.setattr(Store, "tasks_by_ids", spy)
    monkeypatch.setattr(Store, "presented_orders", _paged_orders(Store.presented_orders))
    with workspace.store() as store:
        assert pull(store, cfg, CONNECTION).new == 9
    assert asked == [4, 4, 1]


def _paged_orders(original):
    def paged(self, dataset, task_ids=None):
        assert task_ids is not None, "pull read every shown order at once"
        return original(self, dataset, task_ids)

    return paged


def test_changed_records_are_paged_by_id_once_each_and_a_short_page_ends_the_listing():
    import json

    import httpx

    from traitforge.annotators.argilla.client import LIST_PAGE, ArgillaAPI

    ids = sorted(str(uuid.uuid4()) for _ in range(2 * LIST_PAGE + 500))
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        conditions = body["filters"]["and"]
        low = next((c["ge"] for c in conditions if c["scope"]["property"] == "id"), "")
        chosen = [i for i in ids if i >= low][: int(request.url.params["limit"])]
        items = [{"record": {"id": i, "external_id": f"t{i}"}} for i in chosen]
        return httpx.Response(200, json={"items": items, "total": len(chosen)})

    api = ArgillaAPI("http://fake", "k", retries=0, transport=httpx.MockTransport(handler))
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with api:
        pages = list(api.changed_record_pages("d1", since, include="responses"))
    assert [r["id"] for page in pages for r in page] == ids
    assert [len(p) for p in pages] == [LIST_PAGE, LIST_PAGE - 1, 501]
    assert len(bodies) == 3  # the third page is short: no fourth request
    first = bodies[0]["filters"]["and"]
    assert first == [
        {
            "type": "range",
            "scope": {"entity": "record", "property": "updated_at"},
            "ge": since.isoformat(),
        }
    ]
    assert bodies[0]["sort"] == [{"scope": {"entity": "record", "property": "id"}, "order": "asc"}]
