"""Push and pull memory: flat in the number of tasks.

For each `--sizes` N: a store of N honesty pairs from the bundled TruthfulQA (questions
repeated under numbered variants), pushed to a fresh dataset on the workspace's embedded
Argilla server, then pulled. Push and pull run in a child process of their own, so its peak
RSS is theirs (after imports), and tracemalloc gives the peak of Python's allocations. Prints
both per size and the ratio of the largest size to the smallest: flat memory keeps the
tracemalloc ratio near 1 while the task ratio is 10.

No prompt vectors (the embedding model would dominate the peak); simulated answers neither
(the server writes ~40-200 records/s here): pull lists every record all the same.

    .venv/bin/python bench/push_memory.py --sizes 2000 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

from push import make_tasks, with_dataset
from tiled_data import tiled_truthfulqa, truthfulqa_rows
from traitforge.annotators import server
from traitforge.annotators.argilla import pull, push
from traitforge.app import workflows
from traitforge.workspace import Store, Workspace, dump_config


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc (Linux). Not getrusage's ru_maxrss: that
    keeps the peak of the parent this process was forked from."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def child(workspace: Path, store_path: Path, template: str) -> None:
    """Push then pull one store; print one JSON line of measurements."""
    ws = Workspace.open(workspace)
    config = with_dataset(ws.config, template)
    connection = server.owner_connection(ws)
    base_rss = _status_kib("VmRSS")
    tracemalloc.start()
    with Store(store_path) as store:
        start = time.perf_counter()
        pushed = push.push(store, config, connection)
        push_s = time.perf_counter() - start
        _, push_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        start = time.perf_counter()
        pulled = pull.pull(store, config, connection)
        pull_s = time.perf_counter() - start
        _, pull_peak = tracemalloc.get_traced_memory()
    print(
        json.dumps(
            {
                "sent": pushed.sent,
                "push_s": push_s,
                "pull_s": pull_s,
                "pulled_datasets": len(pulled.by_dataset),
                "push_peak_mib": push_peak / 2**20,
                "pull_peak_mib": pull_peak / 2**20,
                "base_rss_mib": base_rss / 1024,
                "peak_rss_mib": _status_kib("VmHWM") / 1024,
            }
        )
    )


def measure(ws: Workspace, root: Path, tmp: Path, sizes: list[int]) -> dict[int, dict]:
    """Push and pull each size in a child process; its measurements by size."""
    results: dict[int, dict] = {}
    largest = max(sizes)
    workflows.ingest(
        ws, "truthfulqa", [tiled_truthfulqa(tmp, largest // len(truthfulqa_rows()) + 1)]
    )
    with ws.store() as store:
        candidates = list(store.candidates())
    tasks = make_tasks(candidates, largest, suggestions=False)
    connection = server.owner_connection(ws)  # starts the embedded server if needed
    print(f"server {connection.api_url}; sizes {sizes}")
    for size in sorted(sizes):
        store_path = tmp / f"store-{size}.sqlite"
        chosen = tasks[:size]
        used = {c for t in chosen for c in t.candidate_ids}
        with Store(store_path) as store, store.transaction():
            store.add_candidates(c for c in candidates if c.id in used)
            store.add_tasks(chosen)
        template = f"mem-{size}-{uuid.uuid4().hex[:6]}-{{trait}}-k{{k}}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(root), str(store_path), template],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["sent"] == size, result
        results[size] = result
        print(
            f"{size:>7} tasks: push {result['push_s']:6.1f} s "
            f"({size / result['push_s']:5.0f} records/s), pull {result['pull_s']:5.1f} s; "
            f"tracemalloc peak push {result['push_peak_mib']:6.1f} MiB, "
            f"pull {result['pull_peak_mib']:6.1f} MiB; "
            f"RSS {result['base_rss_mib']:6.1f} MiB after imports, "
            f"peak {result['peak_rss_mib']:6.1f} MiB",
            flush=True,
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--child", nargs=3, metavar=("WORKSPACE", "STORE", "TEMPLATE"))
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.child[2])
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        ws = Workspace.open(root)
        # A free port of its own: another server may hold the default one.
        argilla = ws.config.annotation.argilla.model_copy(update={"port": server.free_port()})
        annotation = ws.config.annotation.model_copy(update={"argilla": argilla})
        config = ws.config.model_copy(update={"annotation": annotation})
        (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
        ws = Workspace.open(root)
        try:
            results = measure(ws, root, Path(tmp), args.sizes)
        finally:
            server.stop_server(ws)
    small, large = results[min(results)], results[max(results)]
    print(f"tasks ratio            : {max(results) / min(results):.1f}x")
    for key, label in (
        ("push_peak_mib", "push tracemalloc peak"),
        ("pull_peak_mib", "pull tracemalloc peak"),
    ):
        print(f"{label:<23}: {large[key] / small[key]:.2f}x")
    growth = (large["peak_rss_mib"] - large["base_rss_mib"]) / max(
        small["peak_rss_mib"] - small["base_rss_mib"], 1.0
    )
    print(f"RSS growth over imports: {growth:.2f}x")


if __name__ == "__main__":
    main()
