"""Embedding stage throughput against plain `SentenceTransformer.encode`, and the cache.

Same texts (responses of the bundled data), same model, one process, alternating order:
- baseline: `model.encode(texts)` with sentence-transformers' default settings;
- stage, cold: traitforge's Embedder with an empty cache (dedup of identical texts, batch 64,
  normalized vectors, cache writes included);
- stage, cached: the same call again, every vector read from the cache.
Prints medians and ratios (candidates/s of the stage over the baseline; cold over cached).

    .venv/bin/python bench/embeddings.py --limit 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import EmbeddingConfig
from traitforge.workflows import BUNDLED_INPUTS, bundled_data_dir
from traitforge.workspace import default_config


def bundled_responses(limit: int) -> list[str]:
    config = default_config()
    texts = [
        c.response
        for fmt, relative in BUNDLED_INPUTS
        for o in source_format(fmt).reader(bundled_data_dir() / relative, config)
        if isinstance(o, Parsed)
        for c in o.candidates
    ]
    # interleave sources so a limit keeps the mix of short and long responses
    return texts[:: max(1, len(texts) // limit)][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="all-MiniLM-L6-v2", help="local path or hub id")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    texts = bundled_responses(args.limit)
    config = EmbeddingConfig(model=args.model, device=args.device)
    embedder = Embedder(config)
    embedder.setup()
    model = embedder.model  # the same loaded model serves both sides
    model.encode(texts[:64])  # warm-up: first call pays one-off initialisation

    results: dict[str, list[float]] = {
        "baseline encode()": [],
        "stage, cold": [],
        "stage, cached": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            start = time.perf_counter()
            model.encode(texts)
            results["baseline encode()"].append(time.perf_counter() - start)
            with EmbeddingCache(Path(tmp) / f"cache-{repeat}.sqlite") as cache:
                embedder.cache = cache
                start = time.perf_counter()
                embedder.embed(texts)
                results["stage, cold"].append(time.perf_counter() - start)
                start = time.perf_counter()
                embedder.embed(texts)
                results["stage, cached"].append(time.perf_counter() - start)

    medians = {name: statistics.median(times) for name, times in results.items()}
    base = medians["baseline encode()"]
    print(
        f"{len(texts)} texts ({len(set(texts))} distinct), median of {args.repeats} runs, "
        f"device {embedder.model.device}"
    )
    print(f"{'run':<20}{'median s':>10}{'texts/s':>10}{'speed vs baseline':>20}")
    for name, median in medians.items():
        print(f"{name:<20}{median:>10.3f}{len(texts) / median:>10.1f}{base / median:>19.2f}x")
    print(
        f"cached re-run is {medians['stage, cold'] / medians['stage, cached']:.0f}x faster "
        "than the cold run"
    )


if __name__ == "__main__":
    main()
