"""Embedding stage throughput against plain `SentenceTransformer.encode`, and the cache.

The work is what `curate` embeds: for each bundled candidate, its prompt and its response.
Same texts, same loaded model, one process, order alternating between repeats:
- baseline: `model.encode(prompts + responses)` with sentence-transformers' default settings;
- stage, cold: traitforge's Embedder with an empty cache (identical texts embedded once,
  device-dependent batch size, normalized vectors, cache writes included);
- stage, cached: the same calls again, every vector read from the cache.
A second table does the same on responses alone, where few texts repeat, to show the stage's
own overhead without the benefit of deduplication. A third puts the backends
(curation.embedding.backend) side by side on the distinct texts: each one's throughput, its
ratio to plain `encode()`, and the lowest cosine between its vectors and PyTorch's (the goal:
>= 2x at a min cosine >= 0.99). `--json PATH` writes that table.

    .venv/bin/python bench/embeddings.py --limit 2000 --repeats 3 --json embeddings.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.app.workflows import BUNDLED_INPUTS, bundled_data_dir
from traitforge.curation import embedding_backends
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.scorers.features import prompt_texts
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import Candidate, EmbeddingConfig
from traitforge.workspace import default_config


def bundled_candidates(limit: int) -> list[Candidate]:
    config = default_config()
    candidates = [
        c
        for fmt, relative in BUNDLED_INPUTS
        for o in source_format(fmt).reader(bundled_data_dir() / relative, config)
        if isinstance(o, Parsed)
        for c in o.candidates
    ]
    # every n-th candidate, so a limit keeps the mix of sources, short and long texts
    return candidates[:: max(1, len(candidates) // limit)][:limit]


def compare(
    label: str, embedder: Embedder, groups: list[list[str]], repeats: int, candidates: int
) -> None:
    model = embedder.model
    everything = [t for g in groups for t in g]

    def baseline() -> None:
        model.encode(everything)

    def stage(cache: EmbeddingCache) -> Callable[[], None]:
        def run() -> None:
            embedder.cache = cache
            for group in groups:
                embedder.embed(group)

        return run

    times: dict[str, list[float]] = {
        "baseline encode()": [],
        "stage, cold": [],
        "stage, cached": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            with EmbeddingCache(Path(tmp) / f"cache-{repeat}.sqlite") as cache:
                order = [("baseline encode()", baseline), ("stage, cold", stage(cache))]
                for name, run in order if repeat % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                stage(cache)()
                times["stage, cached"].append(time.perf_counter() - start)

    medians = {name: statistics.median(t) for name, t in times.items()}
    base = medians["baseline encode()"]
    print(
        f"\n{label}: {candidates} candidates, {len(everything)} texts "
        f"({len(set(everything))} distinct), median of {repeats} runs, device {model.device}"
    )
    print(f"{'run':<20}{'median s':>10}{'candidates/s':>14}{'vs baseline':>13}")
    for name, median in medians.items():
        print(f"{name:<20}{median:>10.3f}{candidates / median:>14.1f}{base / median:>12.2f}x")
    print(
        f"cached re-run: {medians['stage, cold'] / medians['stage, cached']:.0f}x faster than "
        "the cold run"
    )


def compare_backends(
    model: Any, texts: list[str], names: list[str], batch_size: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Each backend's median throughput on `texts`, against plain encode() in alternating
    order, and its lowest cosine to the PyTorch vectors."""
    encoders = {name: embedding_backends.build(name, model, batch_size) for name in names}
    for encoder in encoders.values():
        encoder.encode(texts[:64])  # warm-up: one-off costs (conversion, compilation)
    reference = encoders["torch"].encode(texts) if "torch" in encoders else None
    runs: dict[str, Callable[[], object]] = {"encode()": lambda: model.encode(texts)}
    runs.update({name: (lambda e=e: e.encode(texts)) for name, e in encoders.items()})
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(repeats):
        order = list(runs.items())
        for name, run in order if repeat % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["encode()"])
    print(
        f"\nbackends: {len(texts)} distinct texts, batch size {batch_size}, median of {repeats} "
        "runs; min cosine to the torch backend's vectors"
    )
    print(f"{'backend':<16}{'median s':>10}{'texts/s':>10}{'vs encode()':>13}{'min cosine':>12}")
    table: dict[str, dict[str, float]] = {}
    for name, encoder in encoders.items():
        median = statistics.median(times[name])
        cosine = float("nan")
        if reference is not None:
            cosine = float(np.min(np.sum(encoder.encode(texts) * reference, axis=1)))
        table[name] = {
            "texts_per_s": round(len(texts) / median, 1),
            "vs_encode": round(base / median, 3),
            "min_cosine": round(cosine, 6),
        }
        print(
            f"{name:<16}{median:>10.3f}{len(texts) / median:>10.1f}{base / median:>12.2f}x"
            f"{cosine:>12.6f}"
        )
    print(f"{'encode()':<16}{base:>10.3f}{len(texts) / base:>10.1f}{1.0:>12.2f}x")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000, help="candidates")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="local path or hub id")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument(
        "--backends",
        default="torch,openvino,openvino-bf16",
        help="comma-separated curation.embedding.backend values to compare",
    )
    parser.add_argument("--json", type=Path, help="write the backends table here")
    args = parser.parse_args()
    candidates = bundled_candidates(args.limit)
    embedder = Embedder(EmbeddingConfig(model=args.model, device=args.device))
    embedder.setup()
    embedder.model.encode([c.response for c in candidates[:64]])  # warm-up, one-off costs
    responses = [c.response for c in candidates]
    compare(
        "prompts and responses (what curate embeds)",
        embedder,
        [responses, prompt_texts(candidates)],
        args.repeats,
        len(candidates),
    )
    compare(
        "responses only (few repeats: the stage's own overhead)",
        embedder,
        [responses],
        args.repeats,
        len(candidates),
    )
    distinct = list(dict.fromkeys(responses + prompt_texts(candidates)))
    names = args.backends.split(",")
    table = compare_backends(embedder.model, distinct, names, embedder.batch_size, args.repeats)
    if args.json:
        args.json.write_text(json.dumps({"backends": table}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
