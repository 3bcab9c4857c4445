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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from traitforge.annotators.argilla.client import MAX_UPSERT, ArgillaAPI, ArgillaError, Connection
from traitforge.annotators.argilla.datasets import ensure_dataset, record_item
from traitforge.annotators.backends import DatasetPush, PushReport
from traitforge.annotators.records import DatasetLayout, RecordDraft, group_tasks, task_record
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
    candidates = {c.id: c for c in store.candidates()}
    groups = _checked_groups(store.tasks(), argilla.dataset)
    report = PushReport(url=connection.api_url)
    with ArgillaAPI.connect(connection, argilla.retries) as api:
        for tasks in groups.values():
            usable = []
            for task in tasks:
                if all(c in candidates for c in task.candidate_ids):
                    usable.append(task)
                else:
                    report.skipped["a candidate is no longer in the workspace"] += 1
            if not usable:
                continue
            report.datasets.append(
                _push_dataset(
                    api, connection, config, traits, candidates, usable, vectors, store, progress
                )
            )
    return report


def _checked_groups(
    tasks: Iterator[ComparisonTask], template: str
) -> dict[str, list[ComparisonTask]]:
    groups = group_tasks(tasks, template)
    for name, members in groups.items():
        kinds = {(t.trait, len(t.candidate_ids)) for t in members}
        if len(kinds) > 1:
            raise ArgillaError(
                f"annotation.argilla.dataset {template!r} puts tasks of different traits or "
                f"sizes {sorted(kinds)} into one dataset {name!r}; the template must contain "
                "{trait} and {k}"
            )
    return groups


def _push_dataset(
    api: ArgillaAPI,
    connection: Connection,
    config: ProjectConfig,
    traits: Mapping[str, TraitSpec],
    candidates: Mapping[str, Candidate],
    tasks: list[ComparisonTask],
    vectors: VectorSource | None,
    store: Store,
    progress: StageProgress | None,
) -> DatasetPush:
    argilla = config.annotation.argilla
    layout = DatasetLayout.for_tasks(argilla.dataset, tasks, config.annotation.layout)
    result = DatasetPush(dataset=layout.name, tasks=len(tasks))
    label = f"push {layout.name}"
    workspace_id = api.workspace_id(argilla.workspace)
    existing = api.datasets(workspace_id).get(layout.name) if workspace_id else None
    on_server: set[str] = set()
    if existing is not None and existing.get("status") == "ready":
        on_server = api.external_ids(str(existing["id"]))
    todo = sorted((t for t in tasks if t.id not in on_server), key=queue_position)
    result.present = len(tasks) - len(todo)
    if progress:
        progress(label, result.present, len(tasks))
    # What the server holds counts as pushed even if a killed run never got to record it.
    known = {t.id for t in tasks} & on_server
    with store.transaction():
        store.mark_done(push_stage(layout.name), known - store.done_keys(push_stage(layout.name)))
    if not todo:
        return result

    texts = {prompt_text(candidates[t.candidate_ids[0]].prompt) for t in todo}
    vector_of = dict(vectors(sorted(texts))) if vectors else {}
    dimensions = len(next(iter(vector_of.values()))) if vector_of else None
    dataset = ensure_dataset(api, connection, config, layout, dimensions)
    shown = dataset.layout or layout

    def draft(task: ComparisonTask) -> RecordDraft:
        text = prompt_text(candidates[task.candidate_ids[0]].prompt)
        return task_record(task, candidates, traits, shown, vector_of.get(text))

    size = min(argilla.batch_size, MAX_UPSERT)
    batches = [todo[i : i + size] for i in range(0, len(todo), size)]
    done = result.present
    with ThreadPoolExecutor(max_workers=argilla.concurrency) as pool:
        running: dict[Future[int], list[ComparisonTask]] = {}
        queue = iter(batches)

        def submit() -> None:
            batch = next(queue, None)
            if batch is not None:
                drafts = [draft(t) for t in batch]
                # The order is stored before the records exist, so a pull always finds it.
                with store.transaction():
                    store.record_presented(layout.name, {d.external_id: d.order for d in drafts})
                items = [record_item(d, dataset) for d in drafts]
                result.without_vector += sum("vectors" not in i for i in items)
                running[pool.submit(api.upsert, dataset.id, items)] = batch

        # Keep `concurrency` requests in flight; payloads are built only just ahead of them.
        for _ in range(argilla.concurrency):
            submit()
        while running:
            finished, _ = wait(list(running), return_when=FIRST_EXCEPTION)
            for future in finished:
                batch = running.pop(future)
                future.result()  # re-raises the batch's ArgillaError; finished batches are kept
                with store.transaction():
                    store.mark_done(push_stage(layout.name), [t.id for t in batch])
                done += len(batch)
                result.sent += len(batch)
                if progress:
                    progress(label, done, len(tasks))
                submit()
    return result


def prompt_vectors(config: ProjectConfig, cache_path: Path) -> VectorSource:
    """Prompt vectors from the workspace's embedding cache, embedding (and caching) the
    prompts curation did not embed. The model loads only when something is missing."""

    def lookup(texts: Sequence[str]) -> dict[str, list[float]]:
        from traitforge.curation.embeddings import Embedder, EmbeddingCache, text_key

        model = config.curation.embedding.model
        with EmbeddingCache(cache_path) as cache:
            cached = cache.get(model, [text_key(t) for t in texts])
            missing = [t for t in texts if text_key(t) not in cached]
            if missing:
                fresh = Embedder(config.curation.embedding, cache).embed(missing)
                cached.update({text_key(t): v for t, v in zip(missing, fresh, strict=True)})
        return {t: cached[text_key(t)].tolist() for t in texts}

    return lookup
