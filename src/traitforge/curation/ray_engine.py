"""The Ray engine of `curate` (`curation.engine: ray`): embedding, classifier scoring and the
corpus-scope near-duplicate search as Ray Data stages over Parquet shards: the first two in
actor pools that load their model once, the search in tasks (it loads nothing).

Only the expensive work moves: `RayEmbedder` replaces how the embedder encodes the texts its
cache lacks, `score_with_ray` how a trained classifier scores, and `corpus_search_with_ray` how
the near-duplicate finder searches pairs across prompts: the blocked search of `sharded_dedup`,
each block searched by a worker that holds only that block's vectors, and only the pairs come
back. The pipeline's runner, the store, the rest of dedup and selection stay one code path, and
the results land in the same embedding cache under the same (model, text hash) keys, so either
engine resumes the other's run. The blocked search returns every pair above the threshold, the
local one each text's `neighbours` nearest; the marks, connected components of the pairs, agree
unless the neighbour search misses the only edge between two groups (`dedup`'s docstring).

Ray joins the cluster that RAY_ADDRESS names, or starts a local one; a session that already
called `ray.init` (a test, a notebook) keeps its own. The shards are files in the workspace, so
a cluster of several machines needs the workspace on a filesystem they share.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from traitforge.curation.dedup import CorpusSearch
from traitforge.curation.embeddings import Embedder, Progress
from traitforge.curation.linguistic import LinguisticFeaturizer
from traitforge.curation.scorers.classifier import TraitClassifier
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.registry import Scorer
from traitforge.curation.sharded_dedup import (
    DEFAULT_PROBES,
    Blocks,
    block_pairs,
    merge_pairs,
    plan_blocks,
)
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, EmbeddingConfig, Scores

INSTALL = "pip install 'traitforge[ray]'"
SHARD_FOLDER = "ray-shards"  # beside embeddings.sqlite: the inputs of the running stage
SHARD_ROWS = Embedder.CHUNK  # rows per Parquet shard and per actor batch


def require_ray() -> ModuleType:
    """The `ray` module with Ray Data, or a ConfigError that says how to install it."""
    try:
        import ray
        import ray.data  # the extra installs it; bare `ray` lacks it
    except ImportError as e:
        raise ConfigError(
            f"curation.engine is 'ray', but Ray Data is not installed ({e}): {INSTALL}, "
            "or run with --engine local"
        ) from e
    return ray


def start_ray() -> ModuleType:
    """Ray, initialised once per process, quietly: Ray's own logs and progress bars would
    interleave with the CLI's output."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(
            address=os.environ.get("RAY_ADDRESS") or None,
            log_to_driver=False,
            logging_level=logging.ERROR,
            include_dashboard=False,
        )
    quiet_ray_data(ray)
    return ray


def quiet_ray_data(ray: ModuleType) -> None:
    from ray.util.annotations import RayDeprecationWarning

    # Ray's notes to its API's callers (e.g. that `max_restarts` goes through ray_remote_args)
    # are for traitforge's developers, not for the person running `curate`.
    warnings.filterwarnings("ignore", category=RayDeprecationWarning)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray").setLevel(logging.ERROR)
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def actor_pool(ray: ModuleType, device: str, work: int) -> dict[str, Any]:
    """map_batches arguments for an actor pool sized to the cluster: one actor per GPU when
    the cluster has GPUs (and the config allows them), else one per CPU but one; never more
    actors than shards of `work`.

    One CPU stays free for the tasks that read the shards: with a CPU actor pool holding
    every CPU, Ray Data (2.60) schedules no read and the run hangs, as it did on a 2-CPU
    cluster with more than one shard to embed."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
    slots = gpus or max(1, int(resources.get("CPU", 1)) - 1)
    actors = max(1, min(slots, -(-work // SHARD_ROWS)))
    # No restarts: Ray Data keeps an actor's constructor arguments in the object store, and a
    # restartable actor with such arguments makes Ray print an error line on the terminal. A
    # crashed actor fails the stage instead; a re-run resumes from the embedding cache.
    if gpus:
        return {"concurrency": actors, "num_gpus": 1, "max_restarts": 0}
    return {"concurrency": actors, "num_cpus": 1, "max_restarts": 0}


def write_shards(folder: Path, kind: str, table: Any) -> list[Path]:
    """`table` (pyarrow) as Parquet files of SHARD_ROWS rows, each named by the hash of its
    keys (the `key` column), so writing the same work again gives the same files. Shards of
    an earlier, killed run of this kind are removed first."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{kind}-*.parquet"):
        stale.unlink()
    paths = []
    for start in range(0, table.num_rows, SHARD_ROWS):
        part = table.slice(start, SHARD_ROWS)
        digest = hashlib.sha256("\n".join(part.column("key").to_pylist()).encode()).hexdigest()
        path = folder / f"{kind}-{digest[:32]}.parquet"
        pq.write_table(part, path)
        paths.append(path)
    return paths


def remove_shards(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def bound(actor: type, *args: Any) -> type:
    """`actor` with its constructor arguments inside the class. Passed as
    fn_constructor_args, they would live in the object store, and Ray prints an error on the
    terminal that an actor restart could lose them."""

    class Bound(actor):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__(*args)

    Bound.__name__ = Bound.__qualname__ = actor.__name__
    return Bound


class EmbedActor:
    """One sentence-transformers model per actor, loaded when the actor starts."""

    def __init__(self, config: EmbeddingConfig) -> None:
        self.embedder = Embedder(config)
        self.embedder.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.encode([str(t) for t in batch["text"]])
        return {"key": batch["key"], "vector": vectors}


class RayEmbedder(Embedder):
    """An Embedder whose missing texts are encoded by Ray actors; the driver keeps the cache
    (one writer) and the tokenizer the flag stage counts tokens with. Ray starts only when
    there is something to encode, so a re-run on a warm cache starts no cluster (a missing
    Ray was refused before: `pipeline.engine_for`)."""

    def encode_missing(
        self, todo: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        import pyarrow as pa

        ray = start_ray()
        if self.cache is None:
            raise ConfigError("the Ray engine writes its shards beside an embedding cache")
        table = pa.table({"key": [k for k, _ in todo], "text": [t for _, t in todo]})
        shards = write_shards(self.cache.path.parent / SHARD_FOLDER, "embed", table)
        config = self.config.model_copy(update={"batch_size": self.batch_size})
        dataset = ray.data.read_parquet([str(p) for p in shards]).map_batches(
            bound(EmbedActor, config),
            batch_size=SHARD_ROWS,
            batch_format="numpy",
            **actor_pool(ray, self.config.device, len(todo)),
        )
        found: dict[str, np.ndarray] = {}
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            fresh = {
                str(k): np.asarray(v, dtype=np.float32)
                for k, v in zip(batch["key"], batch["vector"], strict=True)
            }
            self.cache.put(self.cache_model, fresh)  # as they come: a killed run keeps them
            found.update(fresh)
            if progress:
                progress(len(found), len(todo))
        remove_shards(shards)
        return found


class ScoreActor:
    """A trained classifier scorer per actor; rows carry the candidate and its two vectors."""

    def __init__(
        self, scorer: TraitClassifier, traits: Sequence[str], embedding_model: str
    ) -> None:
        self.scorer = TraitClassifier(scorer.key, scorer.featurizer, scorer.folder.parent)
        self.traits = list(traits)
        self.embedding_model = embedding_model
        self.featurizer = LinguisticFeaturizer()  # spaCy loads on first use, once per actor

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        features = CandidateFeatures(
            candidates=[Candidate.model_validate_json(c) for c in batch["candidate"]],
            prompt_vectors=_rows(batch["prompt_vector"]),
            response_vectors=_rows(batch["response_vector"]),
            embedding_model=self.embedding_model,
            linguistic_featurizer=self.featurizer,
        )
        scores = self.scorer.score(features, self.traits)
        return {"score": np.array([s.model_dump_json() for s in scores], dtype=object)}


def _rows(blobs: np.ndarray) -> np.ndarray:
    """float32 bytes, one candidate a row, back to a matrix (Parquet keeps them as binary)."""
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])


def score_with_ray(
    shards: Path,
) -> Callable[[Scorer, CandidateFeatures, Sequence[str]], list[Scores]]:
    """A ScoreStage scoring function: trained classifiers score on Ray actors, in the order
    the local engine gives (trait by trait, candidates in order); other scorers (the judge,
    the reward model) score here, as under the local engine."""

    def score(scorer: Scorer, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]:
        trained = [t for t in traits if t in scorer.trained_traits()]
        if not isinstance(scorer, TraitClassifier) or not trained or not features.candidates:
            return scorer.score(features, traits)
        return _classifier_scores(scorer, features, trained, shards)

    return score


def _classifier_scores(
    scorer: TraitClassifier, features: CandidateFeatures, traits: Sequence[str], folder: Path
) -> list[Scores]:
    import pyarrow as pa

    ray = start_ray()
    table = pa.table(
        {
            "key": [c.id for c in features.candidates],
            "candidate": [c.model_dump_json() for c in features.candidates],
            "prompt_vector": [v.tobytes() for v in _float32(features.prompt_vectors)],
            "response_vector": [v.tobytes() for v in _float32(features.response_vectors)],
        }
    )
    shards = write_shards(folder, "score", table)
    dataset = ray.data.read_parquet([str(p) for p in shards]).map_batches(
        bound(ScoreActor, scorer, traits, features.embedding_model),
        batch_size=SHARD_ROWS,
        batch_format="numpy",
        **actor_pool(ray, "cpu", table.num_rows),  # a logistic regression: no GPU to gain
    )
    found = {
        (s.trait, s.candidate_id): s
        for s in (Scores.model_validate_json(j) for j in _column(dataset, "score"))
    }
    remove_shards(shards)
    return [
        found[(trait, c.id)]
        for trait in traits
        for c in features.candidates
        if (trait, c.id) in found
    ]


def _float32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _column(dataset: Any, name: str) -> Iterator[str]:
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        yield from (str(v) for v in batch[name])


def assign_blocks(
    blocks: Blocks, probes: int, batch: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Sends each row of a shard to its `probes` nearest blocks: one output row per (block,
    row)."""
    assignment = blocks.assign(_rows(batch["vector"]), probes)
    return {
        "block": assignment.reshape(-1),
        "row": np.repeat(batch["row"], probes),
        "vector": np.repeat(batch["vector"], probes),
    }


def pairs_in_block(threshold: float, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every pair at or above the threshold inside one block (one group of the shuffle), as
    the rows' ids (their row numbers, as text: what `merge_pairs` keys on)."""
    ids = [str(r) for r in batch["row"].tolist()]
    pairs = block_pairs(ids, _rows(batch["vector"]), threshold)
    return {
        "a": np.array([a for a, _, _ in pairs], dtype=str),
        "b": np.array([b for _, b, _ in pairs], dtype=str),
        "similarity": np.array([s for _, _, s in pairs], dtype=np.float32),
    }


def corpus_search_with_ray(shards: Path, seed: int = 0) -> CorpusSearch:
    """A NearDuplicateFinder corpus search on Ray: blocks planned on the driver from a sample
    (`plan_blocks`: one block below a few hundred texts), then `ray_block_pairs`."""

    def search(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        blocks = plan_blocks(vectors, seed)
        return ray_block_pairs(
            vectors, threshold, blocks, min(DEFAULT_PROBES, blocks.count), shards
        )

    return search


def ray_block_pairs(
    vectors: np.ndarray, threshold: float, blocks: Blocks, probes: int, folder: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Rows (a, b), a < b, of every pair of `vectors` at or above `threshold` that shares one
    of its `probes` nearest `blocks`: Parquet shards of (row, vector) -> block assignment ->
    shuffle by block -> one `block_pairs` per block -> pairs merged here. No worker holds more
    than a shard or one block of vectors, and only the pairs come back."""
    import pyarrow as pa

    if len(vectors) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    ray = start_ray()
    vectors = _float32(vectors)
    table = pa.table(
        {
            "key": [str(r) for r in range(len(vectors))],
            "row": np.arange(len(vectors), dtype=np.int64),
            "vector": [v.tobytes() for v in vectors],
        }
    )
    # A folder of their own, read as one path: given several file paths, Ray resolves them in
    # threads that race on importing fsspec's HTTP filesystem where aiohttp is missing.
    own = folder / "dedup"
    shards = write_shards(own, "dedup", table)
    # Tasks, not actors: nothing is loaded, and an actor pool would hold the CPUs that the
    # shuffle between the two steps needs (on a small cluster the run then never finishes).
    dataset = (
        ray.data.read_parquet(str(own))
        .map_batches(
            partial(assign_blocks, blocks, probes), batch_size=SHARD_ROWS, batch_format="numpy"
        )
        .groupby("block")
        .map_groups(partial(pairs_in_block, threshold), batch_format="numpy")
    )
    found = [
        zip(batch["a"].tolist(), batch["b"].tolist(), batch["similarity"].tolist(), strict=True)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy")
    ]
    remove_shards(shards)
    own.rmdir()
    rows = np.array([(int(a), int(b)) for a, b, _ in merge_pairs(found)], dtype=np.int64)
    rows = rows.reshape(-1, 2)
    return rows.min(axis=1), rows.max(axis=1)
