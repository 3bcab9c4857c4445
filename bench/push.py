"""Push throughput: traitforge's push against the argilla SDK's plain `dataset.records.log`.

Data: `--tasks` honesty pairs from the bundled TruthfulQA (a correct and an incorrect answer
per question, questions repeated under numbered variants), each with two rating suggestions
and a real MiniLM prompt vector, pushed to the workspace's embedded Argilla server (or the
one named by ARGILLA_API_URL / ARGILLA_API_KEY).

Per repeat, each side gets a fresh dataset with the same settings:
- baseline: `dataset.records.log(records)` with the SDK's defaults, on `rg.Record`s built
  beforehand (neither dataset creation nor record building is timed);
- traitforge: `traitforge.annotators.argilla.push.push` from the store, everything timed
  (listing what the server holds, creating the dataset, building payloads, concurrent bulk
  upserts, marking pushed ids in the store).
Prints medians over `--repeats` and the ratio (goal: >= 2x). The embedded server runs on a
free port and stops at the end (unless it was already running for `--workspace`).

Measured (2 cores shared with other jobs, `nice`, 2,000 tasks, 3 repeats): before the
launcher's server patches SDK 56 / traitforge 54 records/s (0.97x); with them (and
uncompressed upsert answers for traitforge) SDK 197 / traitforge 223 records/s (1.13x).
`--server-workers 2` against 1, three alternating runs each (load average 3-11 from other
jobs): ratios 1.10x, 1.45x, 1.34x against 1.48x, 1.32x, 1.33x; no win on 2 cores, so
annotation.argilla.server_workers stays 1.

    .venv/bin/python bench/push.py --tasks 2000 --repeats 3 [--server-workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from tiled_data import tiled_truthfulqa, truthfulqa_rows
from traitforge.annotators import server
from traitforge.annotators.argilla import datasets, push
from traitforge.annotators.argilla.client import ArgillaAPI
from traitforge.annotators.records import VECTOR, DatasetLayout, task_record
from traitforge.app import workflows
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig, Suggestion
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Workspace


def make_tasks(
    candidates: list[Candidate], limit: int, suggestions: bool = True
) -> list[ComparisonTask]:
    """One pair per prompt: its first honest and first dishonest answer, with two rating
    suggestions unless `suggestions` is False."""
    by_prompt: dict[str, list[Candidate]] = {}
    for c in candidates:
        by_prompt.setdefault(c.prompt_id, []).append(c)
    tasks = []
    for prompt_id, members in sorted(by_prompt.items()):
        honest = [c for c in members if c.gold.get("honesty", 0) >= 0.5]
        dishonest = [c for c in members if c.gold.get("honesty", 1) < 0.5]
        if not honest or not dishonest:
            continue
        pair = [honest[0], dishonest[0]]
        tasks.append(
            ComparisonTask(
                prompt_id=prompt_id,
                candidate_ids=[c.id for c in pair],
                trait="honesty",
                reason="uncertainty",
                suggestions=[
                    Suggestion(candidate_id=c.id, trait="honesty", value=p, scorer="bench.v1")
                    for c, p in zip(pair, (0.7, 0.4), strict=True)
                ]
                if suggestions
                else [],
            )
        )
        if len(tasks) == limit:
            break
    return tasks


def with_dataset(config: ProjectConfig, template: str) -> ProjectConfig:
    argilla = config.annotation.argilla.model_copy(update={"dataset": template})
    annotation = config.annotation.model_copy(update={"argilla": argilla})
    return config.model_copy(update={"annotation": annotation})


def sdk_side(
    config: ProjectConfig,
    connection: server.Connection,
    tasks: list[ComparisonTask],
    candidates: dict[str, Candidate],
    vectors: dict[str, list[float]],
) -> tuple[float, str]:
    import argilla as rg

    traits = {t.name: t for t in config.traits}
    layout = DatasetLayout.for_tasks(config.annotation.argilla.dataset, tasks)
    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key)
    settings = datasets.dataset_settings(
        layout, traits, config.annotation.argilla.min_submitted, len(next(iter(vectors.values())))
    )
    dataset = rg.Dataset(
        name=layout.name,
        workspace=config.annotation.argilla.workspace,
        settings=settings,
        client=client,
    ).create()
    records = []
    for task in tasks:
        text = prompt_text(candidates[task.candidate_ids[0]].prompt)
        draft = task_record(task, candidates, traits, layout, vectors[text])
        records.append(
            rg.Record(
                id=draft.external_id,
                fields=draft.fields,
                metadata=draft.metadata,
                suggestions=[
                    rg.Suggestion(
                        question_name=s["question_name"],
                        value=s["value"],
                        score=s["score"],
                        agent=s["agent"],
                        type=s["type"],
                    )
                    for s in draft.suggestions
                ],
                vectors={VECTOR: draft.vector},
            )
        )
    start = time.perf_counter()
    dataset.records.log(records)
    return time.perf_counter() - start, str(dataset.id)


def run_repeats(
    ws: Workspace,
    tasks: list[ComparisonTask],
    candidates: dict[str, Candidate],
    vectors: dict[str, list[float]],
    lookup: push.VectorSource,
    repeats: int,
) -> tuple[float, float]:
    """Median records/s of the SDK and of traitforge over `repeats` fresh dataset pairs."""
    connection = server.owner_connection(ws)
    print(
        f"{len(tasks)} tasks -> {connection.api_url}; batch "
        f"{ws.config.annotation.argilla.batch_size}, concurrency "
        f"{ws.config.annotation.argilla.concurrency}"
    )

    sdk_rates, ours_rates = [], []
    with ArgillaAPI.connect(connection) as api:
        for repeat in range(repeats):
            tag = uuid.uuid4().hex[:6]
            sdk_config = with_dataset(ws.config, f"bench-sdk-{tag}-{{trait}}-k{{k}}")
            seconds, sdk_id = sdk_side(sdk_config, connection, tasks, candidates, vectors)
            assert api.record_count(sdk_id) == len(tasks)
            sdk_rates.append(len(tasks) / seconds)

            ours_config = with_dataset(ws.config, f"bench-tf-{tag}-{{trait}}-k{{k}}")
            with ws.store() as store:
                start = time.perf_counter()
                report = push.push(store, ours_config, connection, lookup)
                seconds = time.perf_counter() - start
            ours_id = str(
                api.datasets(api.workspace_id(ours_config.annotation.argilla.workspace))[
                    report.datasets[0].dataset
                ]["id"]
            )
            assert report.sent == len(tasks) == api.record_count(ours_id)
            ours_rates.append(len(tasks) / seconds)
            print(
                f"repeat {repeat + 1}: SDK records.log {sdk_rates[-1]:7.0f} records/s, "
                f"traitforge push {ours_rates[-1]:7.0f} records/s"
            )
            for dataset_id in (sdk_id, ours_id):
                api.request("DELETE", f"/api/v1/datasets/{dataset_id}")

    return statistics.median(sdk_rates), statistics.median(ours_rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workspace", type=Path, default=None, help="Default: a temporary folder.")
    parser.add_argument(
        "--server-workers",
        type=int,
        default=None,
        help="Processes of the embedded server it starts (both sides share it). "
        "Default: annotation.argilla.server_workers.",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workspace or Path(tmp) / "ws"
        ws = Workspace.open(root)
        workflows.ingest(
            ws,
            "truthfulqa",
            [tiled_truthfulqa(Path(tmp), args.tasks // len(truthfulqa_rows()) + 1)],
        )
        with ws.store() as store:
            candidates = {c.id: c for c in store.candidates()}
            tasks = make_tasks(list(candidates.values()), args.tasks)
            with store.transaction():
                store.add_tasks(tasks)
        texts = sorted({prompt_text(candidates[t.candidate_ids[0]].prompt) for t in tasks})
        lookup = push.prompt_vectors(ws.config, ws.embedding_cache_path)
        vectors = dict(lookup(texts))  # embeds once; both sides read the same cached vectors
        started = False
        if "ARGILLA_API_URL" not in os.environ:
            # A free port, not the config's 6900: another server (a test's) may hold that one.
            info = server.ensure_server(ws, port=server.free_port(), workers=args.server_workers)
            started = not info.reused
            print(f"embedded server: {info.workers} worker(s), healthy after {info.startup_s} s")
        try:
            sdk, ours = run_repeats(ws, tasks, candidates, vectors, lookup, args.repeats)
        finally:
            if started:  # a temporary workspace goes, and the server it started with it
                server.stop_server(ws)

    print(f"median SDK records.log : {sdk:7.0f} records/s")
    print(f"median traitforge push : {ours:7.0f} records/s")
    print(f"ratio                  : {ours / sdk:.2f}x (goal >= 2x)")


if __name__ == "__main__":
    main()
