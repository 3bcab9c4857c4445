"""Ingest throughput: what crash-safe storage costs on top of parsing.

Baseline: the source reader alone (parse + validate every row into Candidates, store nothing).
Measured side by side in one process, on the bundled TruthfulQA CSV repeated `--copies` times:
- first ingest into a fresh store (one transaction per file, keyed by content hash);
- re-ingest of the same file (every candidate already present).
Prints medians over `--repeats` runs and the ratios against the baseline.

    .venv/bin/python bench/ingest.py --copies 4 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tiled_data import tiled_truthfulqa
from traitforge.curation.ingest import ingest_file
from traitforge.curation.sources import Parsed, source_format
from traitforge.workspace import Store, default_config


def timed(run: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = run()
    return time.perf_counter() - start, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = default_config()
    reader = source_format("truthfulqa").reader

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = tiled_truthfulqa(folder, args.copies)

        def parse_only() -> int:
            return sum(len(o.candidates) for o in reader(path, config) if isinstance(o, Parsed))

        results: dict[str, list[float]] = {
            "parse only (baseline)": [],
            "first ingest": [],
            "re-ingest": [],
        }
        count = 0
        for repeat in range(args.repeats):
            seconds, count = timed(parse_only)
            results["parse only (baseline)"].append(seconds)
            with Store(folder / f"store-{repeat}.sqlite") as store:
                seconds, _ = timed(
                    lambda s=store: ingest_file(s, config, "truthfulqa", path, folder / "q").new
                )
                results["first ingest"].append(seconds)
                seconds, _ = timed(
                    lambda s=store: ingest_file(s, config, "truthfulqa", path, folder / "q").present
                )
                results["re-ingest"].append(seconds)

    baseline = statistics.median(results["parse only (baseline)"])
    print(f"{count} candidates per run, median of {args.repeats} runs")
    print(f"{'run':<24}{'median s':>10}{'candidates/s':>15}{'x baseline time':>17}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:<24}{median:>10.3f}{count / median:>15.0f}{median / baseline:>17.2f}")


if __name__ == "__main__":
    main()
