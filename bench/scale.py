"""Scale: measured per-item costs of curation (local and Ray engines) and of push/pull, the
inputs of docs/scaling.md's cost model.

Data: the bundled TruthfulQA tiled (bench/tiled_data.py) with every question and every answer
numbered per copy, so that every text is new to the embedding cache: 6,202 candidates per copy.

Curation, per size (`--sizes`, candidates; rounded up to whole copies) and engine
(`--engines local,ray`): a fresh workspace, `ingest`, then `curate` with a budget of
`--budget` tasks, every stage timed (embed, flag, dedup, score: the classifiers' training
included, select). Memory: the peak RSS of this process, and of every Ray worker process
(sampled every 0.2 s; Ray Data's actors are workers). Both engines see the same data, in the
same process, one after the other; Ray runs `--workers` CPUs (`ray.init(num_cpus=...)`).

Annotation, per task count (`--tasks`): the tasks `curate` selected are not enough, so one
honesty pair per prompt is made as bench/push.py does, pushed to the embedded Argilla server,
then pulled twice: a full pull, and a second one with nothing changed.

    .venv/bin/python bench/scale.py --sizes 10000 --tasks 10000 --json scale.json

Prints per-item costs (ms per candidate or task) and writes them with `--json PATH`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from push import make_tasks
from tiled_data import tiled_truthfulqa
from traitforge.annotators import server
from traitforge.annotators.argilla import pull as argilla_pull
from traitforge.annotators.argilla import push as argilla_push
from traitforge.app import workflows
from traitforge.schemas.records import prompt_text
from traitforge.workspace import Workspace

CANDIDATES_PER_COPY = 6202  # bundled TruthfulQA, one copy: correct and incorrect answers
QUESTIONS = 817


@dataclass
class CurationRun:
    engine: str
    candidates: int
    texts_embedded: int
    seconds: dict[str, float]  # stage -> seconds ("ingest" too)
    driver_peak_mb: float
    worker_peak_mb: list[float] = field(default_factory=list)  # one per Ray worker process

    def ms_per_candidate(self, stage: str) -> float:
        return 1000 * self.seconds.get(stage, 0.0) / self.candidates


@dataclass
class AnnotationRun:
    tasks: int
    push_s: float
    pull_s: float
    repull_s: float
    driver_peak_mb: float


class Memory:
    """Peak RSS, while running, of this process and of each Ray worker process (Ray names them
    `ray::...`)."""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self.driver = 0.0
        self._me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.driver = max(self.driver, self._me.memory_info().rss / 2**20)
            for proc in psutil.process_iter(["pid", "name", "cmdline", "memory_info"]):
                title = " ".join(proc.info["cmdline"] or []) or proc.info["name"] or ""
                if title.startswith("ray::") and proc.info["memory_info"] is not None:
                    rss = proc.info["memory_info"].rss / 2**20
                    self.peaks[proc.info["pid"]] = max(self.peaks.get(proc.info["pid"], 0), rss)

    @contextmanager
    def watching(self) -> Iterator[Memory]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()


def sized_data(folder: Path, size: int) -> Path:
    """Whole tiled copies for at least `size` candidates; below one copy, its first questions."""
    data = tiled_truthfulqa(folder, math.ceil(size / CANDIDATES_PER_COPY), answers=True)
    if size >= CANDIDATES_PER_COPY:
        return data
    lines = data.read_text(encoding="utf-8").splitlines(keepends=True)
    questions = math.ceil(size / CANDIDATES_PER_COPY * QUESTIONS)
    part = folder / f"TruthfulQA-{size}.csv"
    part.write_text("".join(lines[: questions + 1]), encoding="utf-8")  # + 1: the header
    return part


def curation_run(root: Path, data: Path, engine: str, budget: int) -> CurationRun:
    ws = Workspace.open(root)
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    workflows.ingest(ws, "truthfulqa", [data])
    seconds["ingest"] = time.perf_counter() - start
    workflows.use_engine(ws, engine)
    began: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        name = stage.split(":")[0].split(" ")[0]  # "embed responses" -> "embed"
        if name in {"embed", "flag", "dedup", "score", "select"}:
            began.setdefault(name, time.perf_counter())
            seconds[name] = time.perf_counter() - began[name]

    with Memory().watching() as memory:
        report = workflows.curate(ws, budget, round_=1, progress=progress)
    return CurationRun(
        engine=engine,
        candidates=report.candidates,
        texts_embedded=report.embedded.get("computed", 0),
        seconds=seconds,
        driver_peak_mb=memory.driver,
        # Ray's idle workers exist during a local run too; only the Ray engine's count.
        worker_peak_mb=sorted(memory.peaks.values(), reverse=True) if engine == "ray" else [],
    )


def annotation_run(root: Path, data: Path, tasks_wanted: int) -> AnnotationRun:
    ws = Workspace.open(root)
    workflows.ingest(ws, "truthfulqa", [data])
    with ws.store() as store:
        candidates = {c.id: c for c in store.candidates()}
        tasks = make_tasks(list(candidates.values()), tasks_wanted)
        with store.transaction():
            store.add_tasks(tasks)
    texts = sorted({prompt_text(candidates[t.candidate_ids[0]].prompt) for t in tasks})
    del candidates
    lookup = argilla_push.prompt_vectors(ws.config, ws.embedding_cache_path)
    lookup(texts)  # embedding the prompts is curation's cost, not the push's
    started = False
    if "ARGILLA_API_URL" not in os.environ:
        started = not server.ensure_server(ws, port=server.free_port()).reused
    try:
        connection = server.owner_connection(ws)
        with Memory().watching() as memory, ws.store() as store:
            start = time.perf_counter()
            report = argilla_push.push(store, ws.config, connection, lookup)
            push_s = time.perf_counter() - start
            assert report.sent == len(tasks), (report.sent, len(tasks))
            start = time.perf_counter()
            argilla_pull.pull(store, ws.config, connection)
            pull_s = time.perf_counter() - start
            start = time.perf_counter()
            argilla_pull.pull(store, ws.config, connection)
            repull_s = time.perf_counter() - start
    finally:
        if started:
            server.stop_server(ws)
    return AnnotationRun(len(tasks), push_s, pull_s, repull_s, memory.driver)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="Candidates, comma-separated.")
    parser.add_argument("--engines", default="local,ray")
    parser.add_argument("--workers", type=int, default=2, help="CPUs Ray may use.")
    parser.add_argument("--budget", type=int, default=150)
    parser.add_argument("--tasks", default="", help="Task counts to push and pull, e.g. 10000.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    engines = [e for e in args.engines.split(",") if e]
    task_counts = [int(t) for t in args.tasks.split(",") if t]

    if "ray" in engines:
        import ray

        ray.init(num_cpus=args.workers, log_to_driver=False, include_dashboard=False)
    curation: list[CurationRun] = []
    annotation: list[AnnotationRun] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for size in sizes:
            data = sized_data(folder, size)
            for engine in engines:
                run = curation_run(folder / f"ws-{size}-{engine}", data, engine, args.budget)
                curation.append(run)
                stages = ", ".join(
                    f"{s} {run.ms_per_candidate(s):.2f}" for s in run.seconds if s != "ingest"
                )
                workers = (
                    f", Ray workers {len(run.worker_peak_mb)}, largest peak "
                    f"{max(run.worker_peak_mb):.0f} MB"
                    if run.worker_peak_mb
                    else ""
                )
                print(
                    f"{engine:5s} {run.candidates:7d} candidates ({run.texts_embedded} texts "
                    f"embedded): {sum(run.seconds.values()):7.1f} s; ms per candidate: {stages}; "
                    f"driver peak {run.driver_peak_mb:.0f} MB{workers}",
                    flush=True,
                )
        for count in task_counts:
            data = tiled_truthfulqa(folder, math.ceil(count / QUESTIONS), answers=False)
            run_a = annotation_run(folder / f"ws-tasks-{count}", data, count)
            annotation.append(run_a)
            print(
                f"push {run_a.tasks} tasks: {run_a.tasks / run_a.push_s:6.0f} tasks/s; pull "
                f"{run_a.tasks / run_a.pull_s:6.0f} tasks/s; pull again {run_a.repull_s:.1f} s; "
                f"driver peak {run_a.driver_peak_mb:.0f} MB",
                flush=True,
            )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "curation": [asdict(r) for r in curation],
                    "annotation": [asdict(r) for r in annotation],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
