"""Near-duplicate search: faiss (exact flat and HNSW) against a brute-force numpy baseline.

Data: every response of the bundled data (TruthfulQA, the three anthropic-evals files,
HH-RLHF), one row per distinct text, embedded once with the real model (all-MiniLM-L6-v2), then
tiled to `--size` rows.
Each copy after the first gets seeded Gaussian noise and is re-normalized, so copies are near-
but not exactly identical (cosine about 0.99 to their original).

Measured side by side in one process, on the same vectors, for the k = neighbours + 1 nearest
rows of every row (a row finds itself; the finder asks for one more for that reason):
- baseline: blocked numpy matrix multiply, top-k per row with argpartition;
- faiss IndexFlatIP (exact) and IndexHNSWFlat (approximate; index build included, and shown
  separately), through the same `search_neighbours` the finder uses;
- the whole NearDuplicateFinder.process on candidates built for the tiled rows.
Recall of faiss is measured against the baseline: neighbour sets, and the pairs at or above the
threshold found in them. Prints medians over `--repeats` runs; runs estimated to take more than
`--heavy` seconds are run once (the table says how many runs each median has).

    .venv/bin/python bench/dedup.py --size 100000 --repeats 3

With `--sharded`, measures `curation.sharded_dedup` instead: the exact all-pairs pass
(`block_pairs` over every row) against `sharded_pairs` on shards of `--shard-size` rows, for
each blocks x probes of the grid; recall is the share of the exact pairs at or above 0.95 and
the config threshold that the sharded search finds. Each sharded run is timed once (end to end:
k-means, assignment, grouping, search, merge); the peak memory of the largest block's search is
measured with tracemalloc in a separate call.

    .venv/bin/python bench/dedup.py --sharded --size 100000 --cache /tmp/bench-cache
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import faiss
import numpy as np

from traitforge.app.workflows import BUNDLED_INPUTS, bundled_data_dir
from traitforge.curation.dedup import NearDuplicateFinder, build_index, search_neighbours
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.sharded_dedup import (
    SAMPLE_PER_BLOCK,
    block_pairs,
    default_blocks,
    sharded_pairs,
    train_blocks,
)
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import Candidate, DedupConfig, EmbeddingConfig
from traitforge.workspace import default_config

NOISE = 0.005  # per-dimension sigma: cosine(copy, original) is about 1 / sqrt(1 + 384 sigma^2)
BLOCK = 512  # baseline rows per block: 512 x 100k similarities + argpartition indices ~0.6 GB

Neighbours = tuple[np.ndarray, np.ndarray]  # (similarities, indices), each (n, k)
T = TypeVar("T")


def bundled_candidates() -> list[Candidate]:
    config = default_config()
    candidates: list[Candidate] = []
    for fmt, relative in BUNDLED_INPUTS:
        for outcome in source_format(fmt).reader(bundled_data_dir() / relative, config):
            if isinstance(outcome, Parsed):
                candidates.extend(outcome.candidates)
    return candidates


def embed(candidates: list[Candidate], cache_dir: Path) -> np.ndarray:
    with EmbeddingCache(cache_dir / "embeddings.sqlite") as cache:
        return Embedder(EmbeddingConfig(), cache).embed([c.response for c in candidates])


def tile(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` rows: the originals, then noisy re-normalized copies of them."""
    rows = vectors[np.arange(size) % len(vectors)].copy()
    noise = np.random.default_rng(seed).normal(0.0, NOISE, rows[len(vectors) :].shape)
    rows[len(vectors) :] += noise.astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


def tile_candidates(candidates: list[Candidate], size: int) -> list[Candidate]:
    """Copy c of a candidate answers its own prompt ("<prompt id>/c") with its own text, so
    copies are cross-prompt near-duplicates and the finder searches every row."""
    tiled = list(candidates[:size])
    for row in range(len(candidates), size):
        original = candidates[row % len(candidates)]
        copy = row // len(candidates)
        tiled.append(
            original.model_copy(
                update={
                    "id": f"{original.id}/{copy}",
                    "prompt_id": f"{original.prompt_id}/{copy}",
                    "response": f"{original.response} [{copy}]",
                }
            )
        )
    return tiled


def brute_force(vectors: np.ndarray, k: int) -> Neighbours:
    """The baseline: exact top-k by inner product, one block of rows at a time."""
    n = len(vectors)
    similarities = np.empty((n, k), dtype=np.float32)
    indices = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, BLOCK):
        block = vectors[start : start + BLOCK] @ vectors.T
        top = np.argpartition(block, n - k, axis=1)[:, n - k :]
        top_sims = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_sims, axis=1)
        indices[start : start + BLOCK] = np.take_along_axis(top, order, axis=1)
        similarities[start : start + BLOCK] = np.take_along_axis(top_sims, order, axis=1)
    return similarities, indices


def pairs_at_threshold(found: Neighbours, threshold: float) -> np.ndarray:
    """Distinct unordered pairs (encoded a * n + b, a < b) among the neighbours >= threshold."""
    similarities, indices = found
    n = len(indices)
    query = np.broadcast_to(np.arange(n)[:, None], indices.shape)
    keep = (indices >= 0) & (indices != query) & (similarities >= threshold)
    a, b = query[keep], indices[keep]
    return np.unique(np.minimum(a, b) * n + np.maximum(a, b))


def neighbour_recall(found: Neighbours, truth: Neighbours) -> float:
    """Mean share of each row's true k nearest that were found."""
    found_ids, true_ids = found[1], truth[1]
    k = true_ids.shape[1]
    hits = sum(np.isin(f, t).sum() for f, t in zip(found_ids, true_ids, strict=True))
    return float(hits) / (len(true_ids) * k)


def timed(run: Callable[[], T], repeats: int, heavy: float) -> tuple[float, int, T]:
    """Median seconds over `repeats` runs (one run when the first takes over `heavy` s), and
    the last run's result."""
    start = time.perf_counter()
    result = run()
    times = [time.perf_counter() - start]
    while times[0] <= heavy and len(times) < repeats:
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times), result


def largest_block_peak(
    ids: list[str], vectors: np.ndarray, blocks: int, probes: int, seed: int, threshold: float
) -> tuple[int, float]:
    """Rows of the largest block `sharded_pairs` forms (same sample, seed and assignment), and
    the peak MiB that `block_pairs` allocates searching it (its input rows excluded)."""
    sample = vectors[: SAMPLE_PER_BLOCK * blocks]
    quantizer = train_blocks(sample, min(blocks, len(sample)), seed)
    assignment = quantizer.assign(vectors, min(probes, quantizer.count))
    largest = int(np.bincount(assignment.reshape(-1)).argmax())
    rows = np.flatnonzero((assignment == largest).any(axis=1))
    block_ids, block_vectors = [ids[r] for r in rows.tolist()], vectors[rows]
    tracemalloc.start()
    block_pairs(block_ids, block_vectors, threshold)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return len(rows), peak / 2**20


def sharded(args: argparse.Namespace, vectors: np.ndarray, config: DedupConfig) -> None:
    """The --sharded mode: recall and time of sharded_pairs against the exact all-pairs pass."""
    thresholds = sorted({0.95, config.threshold})
    ids = [str(row) for row in range(len(vectors))]
    shards = [
        (ids[start : start + args.shard_size], vectors[start : start + args.shard_size])
        for start in range(0, len(vectors), args.shard_size)
    ]
    print(f"  running exact all-pairs (block_pairs over {len(vectors)} rows) ...", flush=True)
    start = time.perf_counter()
    exact = block_pairs(ids, vectors, thresholds[0])
    exact_s = time.perf_counter() - start
    truth = {t: {(a, b) for a, b, s in exact if s >= t} for t in thresholds}
    grouped_mib = vectors.nbytes / 2**20
    print(
        f"exact: {exact_s:.2f} s; pairs "
        + ", ".join(f">= {t}: {len(truth[t])}" for t in thresholds)
        + f"; {len(shards)} shards of {args.shard_size} rows; vectors {grouped_mib:.0f} MiB"
    )
    base = default_blocks(len(vectors))
    grid_blocks = args.blocks or [max(1, base // 4), base, base * 4]
    print()
    print(
        f"{'blocks':>7}{'probes':>7}{'s':>8}{'exact s / s':>12}"
        + "".join(f"{'recall >= ' + str(t):>16}{'missed':>8}" for t in thresholds)
        + f"{'largest block':>15}{'its peak MiB':>14}"
    )
    for blocks in grid_blocks:
        for probes in args.probes:
            start = time.perf_counter()
            found = sharded_pairs(shards, thresholds[0], blocks, probes, args.seed)
            seconds = time.perf_counter() - start
            rows, peak = largest_block_peak(ids, vectors, blocks, probes, args.seed, thresholds[0])
            line = f"{blocks:>7}{probes:>7}{seconds:>8.2f}{exact_s / seconds:>12.2f}"
            for t in thresholds:
                hits = len(truth[t] & {(a, b) for a, b, s in found if s >= t})
                missed = len(truth[t]) - hits
                line += f"{hits / max(len(truth[t]), 1):>16.5f}{missed:>8}"
            print(f"{line}{rows:>15}{peak:>14.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="rows after tiling")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--heavy", type=float, default=60.0, help="run once above these seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--cache", type=Path, help="keep the embedding cache here (default: a temp dir)"
    )
    parser.add_argument("--sharded", action="store_true", help="measure sharded_dedup instead")
    parser.add_argument("--shard-size", type=int, default=10_000, help="rows per shard (--sharded)")
    parser.add_argument(
        "--blocks",
        type=int,
        nargs="+",
        help="blocks to try (--sharded; default ~sqrt(n) x 1/4, 1, 4)",
    )
    parser.add_argument(
        "--probes", type=int, nargs="+", default=[1, 2, 3], help="probes to try (--sharded)"
    )
    args = parser.parse_args()
    config = DedupConfig()
    k = config.neighbours + 1

    responses = bundled_candidates()
    # One row per distinct text, as the finder searches: identical vectors tie, and ties would
    # make "the" k nearest ambiguous between two exact methods.
    first: dict[str, Candidate] = {}
    for response in responses:
        first.setdefault(response.response, response)
    candidates = list(first.values())
    start = time.perf_counter()
    if args.cache:
        base = embed(candidates, args.cache)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            base = embed(candidates, Path(tmp))
    embed_seconds = time.perf_counter() - start
    vectors = tile(base, args.size, args.seed)
    tiled = tile_candidates(candidates, args.size)
    if args.sharded:
        print(
            f"{len(candidates)} distinct texts embedded in {embed_seconds:.0f} s, tiled to "
            f"{len(vectors)} x {vectors.shape[1]} (noise sigma {NOISE}); {os.cpu_count()} CPUs, "
            f"faiss threads {faiss.omp_get_max_threads()}"
        )
        sharded(args, vectors, config)
        return
    print(
        f"{len(responses)} bundled responses, {len(candidates)} distinct texts embedded in "
        f"{embed_seconds:.0f} s, tiled to "
        f"{len(vectors)} x {vectors.shape[1]} (noise sigma {NOISE}); k = {k}, threshold "
        f"{config.threshold}; {os.cpu_count()} CPUs, faiss threads {faiss.omp_get_max_threads()}"
    )

    def run(name: str, job: Callable[[], T]) -> tuple[float, int, T]:
        print(f"  running {name} ...", flush=True)
        return timed(job, args.repeats, args.heavy)

    rows: list[tuple[str, float, int]] = []
    base_s, base_n, truth = run("brute force", lambda: brute_force(vectors, k))
    rows.append(("numpy brute force (baseline)", base_s, base_n))
    flat_s, flat_n, flat = run("faiss flat", lambda: search_neighbours(vectors, k, False))
    rows.append(("faiss IndexFlatIP (exact)", flat_s, flat_n))
    build_s, build_n, index = run("HNSW build", lambda: build_index(vectors, True))
    search_s, search_n, hnsw = run("HNSW search", lambda: index.search(vectors, k))
    rows.append(("faiss HNSW: build", build_s, build_n))
    rows.append(("faiss HNSW: search", search_s, search_n))
    rows.append(("faiss HNSW: build + search", build_s + search_s, min(build_n, search_n)))
    finder = NearDuplicateFinder(config)
    proc_s, proc_n, marks = run("finder (flat)", lambda: finder.process(tiled, vectors))
    rows.append((f"NearDuplicateFinder.process (flat, {args.size} rows)", proc_s, proc_n))
    approx = NearDuplicateFinder(config.model_copy(update={"hnsw_above": 1}))
    hproc_s, hproc_n, _ = run("finder (HNSW)", lambda: approx.process(tiled, vectors))
    rows.append((f"NearDuplicateFinder.process (HNSW, {args.size} rows)", hproc_s, hproc_n))

    print()
    print(f"{'run':<52}{'runs':>5}{'median s':>10}{'baseline s / this s':>21}")
    for name, seconds, runs in rows:
        print(f"{name:<52}{runs:>5}{seconds:>10.2f}{base_s / seconds:>21.2f}")

    print()
    header = f"{'recall against brute force':<28}{'k-NN sets':>11}{'pairs >= threshold':>20}"
    print(f"{header}{'missed':>8}")
    true_pairs = pairs_at_threshold(truth, config.threshold)
    for name, found in (("faiss IndexFlatIP", flat), ("faiss HNSW", hnsw)):
        hits = int(np.isin(true_pairs, pairs_at_threshold(found, config.threshold)).sum())
        recall = hits / max(len(true_pairs), 1)
        knn = neighbour_recall(found, truth)
        print(f"{name:<28}{knn:>11.5f}{recall:>20.5f}{len(true_pairs) - hits:>8}")
    print(f"({len(true_pairs)} distinct pairs >= {config.threshold} among the brute-force k-NN)")
    by_scope = {s: sum(1 for m in marks if m.scope == s) for s in ("prompt", "corpus")}
    print(f"finder marks on the tiled set: {by_scope}")


if __name__ == "__main__":
    main()
