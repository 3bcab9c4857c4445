"""The Argilla backend: push tasks as records, pull submitted responses as judgements.

The argilla SDK creates datasets (its `rg.Settings` is the clearest statement of the question
layout); records and responses travel over Argilla's REST API with one `httpx.Client`:
- bulk upserts run concurrently from a thread pool (httpx's client is thread-safe, the SDK's
  resources are not documented to be), which is where the push speed comes from;
- every request shares one retry policy, so a server that restarts mid-push costs a pause,
  not a failed run, and a server that stays down gives one clear error.

Idempotence: a record's `external_id` is its task id and the server keeps it unique per
dataset, so re-sending a task updates it instead of duplicating it. A push first lists the ids
the server holds and sends only the rest; ids pushed are also marked done in the store, batch
by batch, for status and reports. A pull remembers each response by (id, updated_at): a
re-pull writes only new or edited answers.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from traitforge.annotators.records import (
    CANDIDATE_ORDER,
    PREFERENCE,
    PROMPT_FIELD,
    RANKING,
    RATIONALE,
    TIE,
    VECTOR,
    DatasetLayout,
    InvalidResponse,
    RecordDraft,
    group_tasks,
    presented_order,
    response_judgement,
    suggested_values,
    task_record,
)
from traitforge.errors import TraitforgeError
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, TraitSpec
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Store

StageProgress = Callable[[str, int, int], object]  # (label, done, total)

# Server limits (argilla-server 2.8): records per bulk upsert, records per list page.
MAX_UPSERT = 500
LIST_PAGE = 1000
STORE_PAGE = 500  # judgements written per store transaction while pulling
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0


class ArgillaError(TraitforgeError):
    """The Argilla server refused a request, or could not be reached."""


class Connection(Protocol):
    """Where the server is and whose key to use (the embedded server's Connection fits)."""

    @property
    def api_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...


def push_stage(dataset: str) -> str:
    """The store's done-stage holding the task ids pushed to `dataset`."""
    return f"push:{dataset}"


def pull_stage(dataset: str) -> str:
    """The store's done-stage holding '<response id>@<updated_at>' of pulled responses."""
    return f"pull:{dataset}"


class ArgillaAPI:
    """Argilla's REST API with retries. Safe to share between threads."""

    def __init__(
        self, api_url: str, api_key: str, retries: int = 5, timeout: float = 120.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.retries = retries
        # The key travels only in this header; it is never part of a message or log line.
        self._http = httpx.Client(
            base_url=self.api_url,
            headers={"X-Argilla-Api-Key": api_key},
            timeout=timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    @classmethod
    def connect(cls, connection: Connection, retries: int = 5) -> ArgillaAPI:
        return cls(connection.api_url, connection.api_key, retries)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArgillaAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of the answer. Retries refused connections, timeouts, 5xx and 429 with
        exponential backoff; raises ArgillaError with the server's reason otherwise."""
        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S))
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = f"HTTP {response.status_code}: {_detail(response)}"
                continue
            if response.status_code == 401:
                raise ArgillaError(
                    f"the Argilla server at {self.api_url} refused the API key (HTTP 401); set "
                    "ARGILLA_API_KEY to the key of an owner account of that server"
                )
            if response.is_error:
                raise ArgillaError(
                    f"Argilla at {self.api_url} refused {method} {path} "
                    f"(HTTP {response.status_code}): {_detail(response)}"
                )
            return response.json() if response.content else None
        raise ArgillaError(
            f"the Argilla server at {self.api_url} did not answer {method} {path} after "
            f"{self.retries + 1} tries ({last}). Check that it is running (for the embedded "
            "server, that the workspace's server started; for your own, ARGILLA_API_URL), then "
            "run the same command again: it resumes where it stopped"
        )

    # -- lookups -------------------------------------------------------------------------------
    def workspace_id(self, name: str, create: bool = False) -> str | None:
        for item in self.request("GET", "/api/v1/me/workspaces")["items"]:
            if item["name"] == name:
                return str(item["id"])
        if not create:
            return None
        return str(self.request("POST", "/api/v1/workspaces", json={"name": name})["id"])

    def datasets(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        items = self.request("GET", "/api/v1/me/datasets")["items"]
        return {d["name"]: d for d in items if str(d["workspace_id"]) == workspace_id}

    def question_ids(self, dataset_id: str) -> dict[str, str]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
        return {q["name"]: str(q["id"]) for q in items}

    def field_names(self, dataset_id: str) -> set[str]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/fields")["items"]
        return {f["name"] for f in items}

    def metadata_names(self, dataset_id: str) -> set[str]:
        path = f"/api/v1/me/datasets/{dataset_id}/metadata-properties"
        return {m["name"] for m in self.request("GET", path)["items"]}

    def vector_dimensions(self, dataset_id: str) -> dict[str, int]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/vectors-settings")["items"]
        return {v["name"]: int(v["dimensions"]) for v in items}

    def records(self, dataset_id: str, include: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record of a dataset (owner endpoint; reads the database, not the search
        engine), oldest first, page by page."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": LIST_PAGE}
            if include:
                params["include"] = include
            page = self.request("GET", f"/api/v1/datasets/{dataset_id}/records", params=params)
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def record_count(self, dataset_id: str) -> int:
        path = f"/api/v1/datasets/{dataset_id}/records"
        return int(self.request("GET", path, params={"limit": 1})["total"])

    def external_ids(self, dataset_id: str) -> set[str]:
        return {r["external_id"] for r in self.records(dataset_id) if r.get("external_id")}

    def usernames(self) -> dict[str, str]:
        return {str(u["id"]): u["username"] for u in self.request("GET", "/api/v1/users")["items"]}

    def upsert(self, dataset_id: str, items: list[dict[str, Any]]) -> int:
        path = f"/api/v1/datasets/{dataset_id}/records/bulk"
        return len(self.request("PUT", path, json={"items": items})["items"])


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    text = str(detail)
    return text if len(text) <= 500 else text[:497] + "..."


# -- datasets --------------------------------------------------------------------------------
def dataset_settings(
    layout: DatasetLayout,
    traits: Mapping[str, TraitSpec],
    min_submitted: int,
    vector_dimensions: int | None,
) -> Any:
    """The layout as `rg.Settings` (needs a connected `rg.Argilla` client to exist)."""
    import argilla as rg

    trait = traits[layout.trait]
    better = "more" if trait.polarity == "positive" else "less"
    fields = [rg.TextField(name=PROMPT_FIELD, title="Prompt", use_markdown=True)]
    fields += [
        rg.TextField(name=name, title=f"Response {name[-1].upper()}", use_markdown=True)
        for name in layout.response_fields
    ]
    title = f"Which response is better on {layout.trait}?"
    description = f"{trait.description} ({better} {layout.trait} is better)"
    questions: list[Any] = []
    if layout.k == 2:
        questions.append(
            rg.LabelQuestion(
                name=PREFERENCE,
                title=title,
                description=description,
                labels={"A": "Response A", "B": "Response B", TIE: "Tie"},
            )
        )
    else:
        questions.append(
            rg.RankingQuestion(
                name=RANKING,
                title=f"Rank the responses on {layout.trait}, best first",
                description=description,
                values={name: f"Response {name[-1].upper()}" for name in layout.response_fields},
            )
        )
    for name, (rated, position) in layout.rating_questions().items():
        scale = traits[rated].scale
        anchors = "; ".join(f"{p}: {text}" for p, text in sorted(scale.labels.items()))
        questions.append(
            rg.RatingQuestion(
                name=name,
                title=f"{rated} of response {chr(ord('A') + position)}",
                description=anchors or traits[rated].description,
                values=list(range(scale.min, scale.max + 1)),
                required=False,
            )
        )
    questions.append(
        rg.TextQuestion(name=RATIONALE, title="Why? (optional)", required=False, use_markdown=False)
    )
    # Nothing that tells gold checks apart, and no hidden properties: annotators can read
    # and filter on those too (see traitforge.annotators.records).
    metadata: list[Any] = [
        rg.TermsMetadataProperty(name="source", title="source"),
        rg.TermsMetadataProperty(name="model", title="model"),
        rg.IntegerMetadataProperty(name="round", title="round"),
    ]
    vectors = (
        [rg.VectorField(name=VECTOR, title="similar prompts", dimensions=vector_dimensions)]
        if vector_dimensions
        else []
    )
    return rg.Settings(
        guidelines=layout.guidelines(traits),
        fields=fields,
        questions=questions,
        metadata=metadata,
        vectors=vectors,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _create_dataset(
    connection: Connection,
    workspace: str,
    layout: DatasetLayout,
    traits: Mapping[str, TraitSpec],
    min_submitted: int,
    vector_dimensions: int | None,
    retries: int,
) -> None:
    import argilla as rg

    try:
        client = rg.Argilla(
            api_url=connection.api_url, api_key=connection.api_key, retries=max(retries, 1)
        )
        settings = dataset_settings(layout, traits, min_submitted, vector_dimensions)
        rg.Dataset(name=layout.name, workspace=workspace, settings=settings, client=client).create()
    except Exception as e:  # the SDK raises its own hierarchy and httpx errors
        raise ArgillaError(
            f"could not create the Argilla dataset {layout.name!r} in workspace "
            f"{workspace!r} at {connection.api_url}: {type(e).__name__}: {e}. Check the server "
            "is running and the key belongs to an owner, then run the command again"
        ) from e


@dataclass
class RemoteDataset:
    """A published dataset and what its records may carry."""

    id: str
    name: str
    question_ids: dict[str, str]
    metadata: set[str]
    vector_dimensions: int | None


def ensure_dataset(
    api: ArgillaAPI,
    connection: Connection,
    config: ProjectConfig,
    layout: DatasetLayout,
    vector_dimensions: int | None,
) -> RemoteDataset:
    """The layout's dataset on the server, created (or re-created from an unfinished draft)
    when needed, checked to show every field the layout needs."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    try:
        layout.check_traits(traits)
    except ValueError as e:
        raise ArgillaError(str(e)) from e
    workspace_id = api.workspace_id(argilla.workspace, create=True)
    assert workspace_id is not None
    existing = api.datasets(workspace_id).get(layout.name)
    if existing is not None and existing.get("status") != "ready":
        # A push killed while the SDK was adding questions leaves an unpublished draft. Drafts
        # hold no records (only published datasets accept them): start it again.
        api.request("DELETE", f"/api/v1/datasets/{existing['id']}")
        existing = None
    if existing is None:
        _create_dataset(
            connection,
            argilla.workspace,
            layout,
            traits,
            argilla.min_submitted,
            vector_dimensions,
            argilla.retries,
        )
        existing = api.datasets(workspace_id)[layout.name]
    dataset_id = str(existing["id"])
    missing = {PROMPT_FIELD, *layout.response_fields} - api.field_names(dataset_id)
    questions = api.question_ids(dataset_id)
    if missing or layout.answer_question not in questions:
        raise ArgillaError(
            f"the Argilla dataset {layout.name!r} at {api.api_url} was not made for these tasks "
            f"(missing fields {sorted(missing)} or question {layout.answer_question!r}); delete "
            "it or set annotation.argilla.dataset to a name template with {trait} and {k}"
        )
    return RemoteDataset(
        id=dataset_id,
        name=layout.name,
        question_ids=questions,
        metadata=api.metadata_names(dataset_id),
        vector_dimensions=api.vector_dimensions(dataset_id).get(VECTOR),
    )


def record_item(draft: RecordDraft, dataset: RemoteDataset) -> dict[str, Any]:
    """A draft as one item of Argilla's bulk upsert, limited to what the dataset declares."""
    item: dict[str, Any] = {
        "external_id": draft.external_id,
        "fields": draft.fields,
        "metadata": {k: v for k, v in draft.metadata.items() if k in dataset.metadata},
    }
    suggestions = [
        {
            "question_id": dataset.question_ids[s["question_name"]],
            **{k: v for k, v in s.items() if k != "question_name"},
        }
        for s in draft.suggestions
        if s["question_name"] in dataset.question_ids
    ]
    if suggestions:
        item["suggestions"] = suggestions
    if draft.vector is not None and len(draft.vector) == dataset.vector_dimensions:
        item["vectors"] = {VECTOR: draft.vector}
    return item


# -- push ------------------------------------------------------------------------------------
@dataclass
class DatasetPush:
    dataset: str
    tasks: int = 0
    present: int = 0  # already on the server before this push
    sent: int = 0
    without_vector: int = 0


@dataclass
class PushReport:
    url: str
    datasets: list[DatasetPush] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> tasks not pushed

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.datasets)


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
    layout = DatasetLayout.for_tasks(argilla.dataset, tasks)
    result = DatasetPush(dataset=layout.name, tasks=len(tasks))
    label = f"push {layout.name}"
    workspace_id = api.workspace_id(argilla.workspace)
    existing = api.datasets(workspace_id).get(layout.name) if workspace_id else None
    on_server: set[str] = set()
    if existing is not None and existing.get("status") == "ready":
        on_server = api.external_ids(str(existing["id"]))
    todo = [t for t in tasks if t.id not in on_server]
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

    def draft(task: ComparisonTask) -> RecordDraft:
        text = prompt_text(candidates[task.candidate_ids[0]].prompt)
        return task_record(task, candidates, traits, layout, vector_of.get(text))

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


# -- pull ------------------------------------------------------------------------------------
@dataclass
class PullReport:
    url: str
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    ignored: Counter[str] = field(default_factory=Counter)  # draft / discarded responses
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> responses not stored
    missing_datasets: list[str] = field(default_factory=list)
    by_dataset: dict[str, int] = field(default_factory=dict)  # judgements written


def pull(
    store: Store,
    config: ProjectConfig,
    connection: Connection,
    progress: StageProgress | None = None,
) -> PullReport:
    """Store submitted responses of every pushed dataset as judgements, only new or edited
    ones; drafts and discarded answers are counted, never stored."""
    argilla = config.annotation.argilla
    traits = {t.name: t for t in config.traits}
    tasks = {t.id: t for t in store.tasks()}
    names = set(group_tasks(tasks.values(), argilla.dataset))
    report = PullReport(url=connection.api_url)
    with ArgillaAPI.connect(connection, argilla.retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        report.missing_datasets = sorted(names - set(remote))
        users = api.usernames()
        for name in sorted(names & set(remote)):
            dataset_id = str(remote[name]["id"])
            total = api.record_count(dataset_id)
            seen = store.done_keys(pull_stage(name))
            seen_ids = {key.split("@", 1)[0] for key in seen}
            orders = store.presented_orders(name)
            written = 0
            page: list[tuple[str, Any]] = []
            for done, record in enumerate(api.records(dataset_id, include="responses"), 1):
                page += _record_judgements(
                    record, tasks, orders, traits, users, seen, seen_ids, report
                )
                if len(page) >= STORE_PAGE:
                    written += _store_page(store, name, page)
                    page = []
                if progress:
                    progress(f"pull {name}", done, total)
            written += _store_page(store, name, page)
            report.by_dataset[name] = written
    return report


def _record_judgements(
    record: Mapping[str, Any],
    tasks: Mapping[str, ComparisonTask],
    orders: Mapping[str, Sequence[str]],
    traits: Mapping[str, TraitSpec],
    users: Mapping[str, str],
    seen: set[str],
    seen_ids: set[str],
    report: PullReport,
) -> list[tuple[str, Any]]:
    """(done key, judgement) for each new or edited submitted response of one record.
    `orders`: task id -> candidate ids as the dataset shows them (from the store)."""
    out: list[tuple[str, Any]] = []
    task = tasks.get(record.get("external_id") or "")
    for response in record.get("responses") or []:
        status = response.get("status")
        if status != "submitted":
            report.ignored[str(status)] += 1
            continue
        key = f"{response['id']}@{response['updated_at']}"
        if key in seen:
            report.unchanged += 1
            continue
        if task is None:
            report.dropped["response to a record that maps to no task in the workspace"] += 1
            continue
        username = users.get(str(response.get("user_id")))
        if username is None:
            report.dropped["response by a user the server no longer lists"] += 1
            continue
        order = presented_order_of(record, task, orders)
        try:
            judgement = response_judgement(
                task,
                order,
                response.get("values") or {},
                username,
                response.get("updated_at"),
                suggested_values(task, order, traits),
            )
        except (InvalidResponse, ValueError) as e:
            report.dropped[f"invalid answer: {e}"] += 1
            continue
        if response["id"] in seen_ids:
            report.changed += 1
        else:
            report.new += 1
        out.append((key, judgement))
    return out


def presented_order_of(
    record: Mapping[str, Any], task: ComparisonTask, orders: Mapping[str, Sequence[str]]
) -> list[str]:
    """The candidate ids behind a record's response fields: the record's own metadata when an
    earlier version pushed it with them, else what the store kept at push time, else the
    deterministic shuffle they all came from (for a record older than both)."""
    legacy = (record.get("metadata") or {}).get(CANDIDATE_ORDER)
    if isinstance(legacy, list) and legacy:
        return [str(c) for c in legacy]
    return list(orders.get(task.id) or presented_order(task))


def _store_page(store: Store, dataset: str, page: list[tuple[str, Any]]) -> int:
    if not page:
        return 0
    # Judgements and their watermark commit together: a killed pull re-reads the rest.
    with store.transaction():
        store.put_judgements(j for _, j in page)
        store.mark_done(pull_stage(dataset), (key for key, _ in page))
    return len(page)


# -- progress --------------------------------------------------------------------------------
@dataclass
class DatasetProgress:
    dataset: str
    records: int
    completed: int
    pending: int
    annotators: dict[str, Counter[str]]  # username -> {"submitted": n, "draft": n, ...}


def progress(
    config: ProjectConfig, connection: Connection, names: Sequence[str], retries: int | None = None
) -> list[DatasetProgress]:
    """Per dataset: records, completed (enough submissions) and pending, and per annotator
    the responses by status. Datasets not on the server are left out."""
    argilla = config.annotation.argilla
    out = []
    with ArgillaAPI.connect(connection, argilla.retries if retries is None else retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        for name in names:
            if name not in remote:
                continue
            dataset_id = str(remote[name]["id"])
            overall = api.request("GET", f"/api/v1/datasets/{dataset_id}/progress")
            users = api.request("GET", f"/api/v1/datasets/{dataset_id}/users/progress")["users"]
            annotators: dict[str, Counter[str]] = {}
            for user in users:
                counts: Counter[str] = Counter()
                for record_status in ("completed", "pending"):
                    counts.update(user.get(record_status) or {})
                annotators[user["username"]] = counts
            out.append(
                DatasetProgress(
                    dataset=name,
                    records=api.record_count(dataset_id),
                    completed=int(overall.get("completed", 0)),
                    pending=int(overall.get("pending", 0)),
                    annotators=annotators,
                )
            )
    return out


def dataset_names(store: Store, config: ProjectConfig) -> list[str]:
    """The datasets the workspace's tasks belong in."""
    return list(group_tasks(store.tasks(), config.annotation.argilla.dataset))
