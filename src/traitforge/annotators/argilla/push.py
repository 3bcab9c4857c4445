"""Push: send a workspace's comparison tasks to Argilla as records.

Idempotent: a record's `external_id` is its task id and the server keeps it unique per
dataset, so re-sending a task updates it instead of duplicating it. A push first lists the ids
the server holds and sends only the rest; ids pushed are also marked done in the store
(`push_stage`), batch by batch, for status and reports.

Order: records are sent earlier rounds first, then by task id (`queue_position`). Where the
server serves every annotator one shared queue (the embedded server does when records need
more than one answer, see its search engine) it is this insertion order, so overlapping
annotators answer the same records first and agreement accrues from the start. With
concurrent batches a later batch may land first: the queue is still the same for everyone.

Speed: bulk upserts run concurrently from a thread pool through one shared `ArgillaAPI`, each
batch's payload built just before it is sent.

Memory: flat in the number of tasks. One pass over the store counts each dataset's tasks and
the traits it asks about; a second reads its tasks in queue order (`Store.queued_tasks`) a
chunk at a time, with only that chunk's candidates and the batch's prompt vectors. Only the
ids the server already holds (strings) are kept for a whole dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from traitforge.annotators.argilla.client import MAX_UPSERT, ArgillaAPI, ArgillaError, Connection
from traitforge.annotators.argilla.datasets import ensure_dataset, record_item
from traitforge.annotators.backends import DatasetPush, PushReport
from traitforge.annotators.records import DatasetLayout, RecordDraft, dataset_name, task_record
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, TraitSpec
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Store

if TYPE_CHECKING:
    from traitforge.curation.progress import StageProgress


def push_stage(dataset: str) -> str:
    """The store's done-stage holding the task ids pushed to `dataset`."""
    return f"push:{dataset}"


def queue_position(task: ComparisonTask) -> tuple[int, str]:
    """Where a task goes in the annotators' queue: earlier rounds first, then by task id (a
    hash: nothing about gold checks or selection shows in the order)."""
    return (task.round, task.id)


READ_CHUNK = 1000  # tasks read from the store at a time
MISSING_CANDIDATE = "a candidate is no longer in the workspace"
T = TypeVar("T")

VectorSource = Callable[[Sequence[str]], Mapping[str, Sequence[float]]]  # texts -> text: vector


def push(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    vectors: VectorSource | None = None,
    progress: StageProgress | None = None,
) -> PushReport:
    """Send every task of the store that its dataset lacks; see the module docstring."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    report = PushReport(url=connection.api_url)
    plans = _plans(store, argilla.dataset, report)
    with ArgillaAPI.connect(connection, argilla.retries) as api:
        for plan in plans:
            if plan.tasks:
                layout = DatasetLayout(
                    plan.name,
                    plan.trait,
                    plan.k,
                    (plan.trait, *sorted(plan.rated - {plan.trait})),
                    config.annotation.layout,
                )
                report.datasets.append(
                    _push_dataset(
                        api,
                        connection,
                        config,
                        traits,
                        layout,
                        plan.tasks,
                        vectors,
                        store,
                        progress,
                    )
                )
    return report


@dataclass
class _Plan:
    """What one dataset's push needs to know of its tasks before it sends the first: counted
    in one pass over the store, so no task is held."""

    name: str
    trait: str
    k: int
    kinds: set[tuple[str, int]] = field(default_factory=set)
    rated: set[str] = field(default_factory=set)  # of the usable tasks
    tasks: int = 0  # usable: every candidate still in the store


def _plans(store: Store, template: str, report: PushReport) -> list[_Plan]:
    """One plan per dataset, by name; tasks whose candidates are gone are counted skipped."""
    plans: dict[str, _Plan] = {}

    def count(chunk: list[ComparisonTask]) -> None:
        present = store.stored_candidate_ids(c for t in chunk for c in t.candidate_ids)
        for task in chunk:
            k = len(task.candidate_ids)
            name = dataset_name(template, task.trait, k)
            plan = plans.setdefault(name, _Plan(name, task.trait, k))
            plan.kinds.add((task.trait, k))
            if all(c in present for c in task.candidate_ids):
                plan.tasks += 1
                plan.rated.update(task.rated_traits)
            else:
                report.skipped[MISSING_CANDIDATE] += 1

    for chunk in _chunked(store.tasks(), READ_CHUNK):
        count(chunk)
    for plan in plans.values():
        if len(plan.kinds) > 1:
            raise ArgillaError(
                f"annotation.argilla.dataset {template!r} puts tasks of different traits or "
                f"sizes {sorted(plan.kinds)} into one dataset {plan.name!r}; the template must "
                "contain {trait} and {k}"
            )
    return [plans[name] for name in sorted(plans)]


def _chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class _Batch:
    """Tasks to send in one bulk upsert, with the candidates their records show."""

    tasks: list[ComparisonTask]
    candidates: dict[str, Candidate]


def _push_dataset(
    api: ArgillaAPI,
    connection: Connection,
    config: ProjectConfig,
    traits: Mapping[str, TraitSpec],
    layout: DatasetLayout,
    total: int,
    vectors: VectorSource | None,
    store: Store,
    progress: StageProgress | None,
) -> DatasetPush:
    argilla = config.annotation.argilla
    result = DatasetPush(dataset=layout.name, tasks=total)
    label = f"push {layout.name}"
    stage = push_stage(layout.name)
    workspace_id = api.workspace_id(argilla.workspace)
    existing = api.datasets(workspace_id).get(layout.name) if workspace_id else None
    on_server: set[str] = set()
    if existing is not None and existing.get("status") == "ready":
        on_server = api.external_ids(str(existing["id"]))
    size = min(argilla.batch_size, MAX_UPSERT)

    def batches() -> Iterator[_Batch]:
        """The tasks the server lacks in queue order, a batch at a time, each with only its
        own candidates. What the server holds counts as pushed (marked done chunk by chunk)
        even if a killed run never got to record it."""
        done_before = store.done_keys(stage)
        pending: list[ComparisonTask] = []
        shown: dict[str, Candidate] = {}
        for chunk in _chunked(store.queued_tasks(layout.trait, layout.k), READ_CHUNK):
            stored = store.stored_candidate_ids(c for t in chunk for c in t.candidate_ids)
            usable = [t for t in chunk if all(c in stored for c in t.candidate_ids)]
            known = [t.id for t in usable if t.id in on_server and t.id not in done_before]
            if known:
                with store.transaction():
                    store.mark_done(stage, known)
            todo = [t for t in usable if t.id not in on_server]
            result.present += len(usable) - len(todo)
            # Records are read only for the tasks to send: a re-run reads none for the rest.
            candidates = store.candidates_by_ids(c for t in todo for c in t.candidate_ids)
            for task in todo:
                pending.append(task)
                shown.update((c, candidates[c]) for c in task.candidate_ids)
                if len(pending) == size:
                    yield _Batch(pending, shown)
                    pending, shown = [], {}
            if progress:
                progress(label, result.present + result.sent, total)
        if pending:
            yield _Batch(pending, shown)

    queue = batches()
    first = next(queue, None)
    if first is None:
        return result

    def vectors_of(batch: _Batch) -> dict[str, Sequence[float]]:
        if vectors is None:
            return {}
        texts = {prompt_text(batch.candidates[t.candidate_ids[0]].prompt) for t in batch.tasks}
        return dict(vectors(sorted(texts)))

    first_vectors = vectors_of(first)
    dimensions = len(next(iter(first_vectors.values()))) if first_vectors else None
    dataset = ensure_dataset(api, connection, config, layout, dimensions)
    asked = dataset.layout or layout

    def drafts(batch: _Batch, vector_of: Mapping[str, Sequence[float]]) -> list[RecordDraft]:
        out = []
        for task in batch.tasks:
            text = prompt_text(batch.candidates[task.candidate_ids[0]].prompt)
            out.append(task_record(task, batch.candidates, traits, asked, vector_of.get(text)))
        return out

    with ThreadPoolExecutor(max_workers=argilla.concurrency) as pool:
        running: dict[Future[int], list[str]] = {}

        def submit(batch: _Batch | None, vector_of: Mapping[str, Sequence[float]]) -> None:
            if batch is None:
                return
            built = drafts(batch, vector_of)
            # The order is stored before the records exist, so a pull always finds it.
            with store.transaction():
                store.record_presented(layout.name, {d.external_id: d.order for d in built})
            items = [record_item(d, dataset) for d in built]
            result.without_vector += sum("vectors" not in i for i in items)
            running[pool.submit(api.upsert, dataset.id, items)] = [t.id for t in batch.tasks]

        def submit_next() -> None:
            batch = next(queue, None)
            submit(batch, vectors_of(batch) if batch is not None else {})

        # Keep `concurrency` requests in flight; payloads are built only just ahead of them.
        submit(first, first_vectors)
        for _ in range(argilla.concurrency - 1):
            submit_next()
        while running:
            finished, _ = wait(list(running), return_when=FIRST_EXCEPTION)
            for future in finished:
                ids = running.pop(future)
                future.result()  # re-raises the batch's ArgillaError; finished batches are kept
                with store.transaction():
                    store.mark_done(stage, ids)
                result.sent += len(ids)
                if progress:
                    progress(label, result.present + result.sent, total)
                submit_next()
    return result


def prompt_vectors(config: ProjectConfig, cache_path: Path) -> VectorSource:
    """Prompt vectors from the workspace's embedding cache, embedding (and caching) the
    prompts curation did not embed. The model loads only when something is missing."""

    def lookup(texts: Sequence[str]) -> dict[str, list[float]]:
        from traitforge.curation.embeddings import Embedder, EmbeddingCache

        with EmbeddingCache(cache_path) as cache:
            vectors = Embedder(config.curation.embedding, cache).embed(texts)
        return {t: v.tolist() for t, v in zip(texts, vectors, strict=True)}

    return lookup
