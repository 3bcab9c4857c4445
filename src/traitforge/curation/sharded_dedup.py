"""Near-duplicate pairs across shards, without ever holding all vectors in one index.

The corpus-scope search of `dedup` builds one faiss index over every response. Here the vectors
are split by a coarse quantizer instead: spherical k-means on a sample gives `blocks` centroids,
every vector goes to its `probes` nearest blocks, and the pairs at or above the threshold are
found exactly inside each block. A pair is found when its two vectors share a block; sending each
vector to more than one block is what keeps the pairs that straddle a block boundary.

Each piece is a pure function of its inputs, so it can run in a separate worker (Ray Data):
`train_blocks` on a sample (`plan_blocks` draws it and picks the block count), `Blocks.assign`
and `split_by_block` per shard, `block_pairs` per block after grouping by block (a shuffle),
`merge_pairs` at the end. `sharded_pairs` is the same flow in one process;
`ray_engine.corpus_search_with_ray` runs it on Ray for the corpus scope of `dedup`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain

import faiss
import numpy as np

from traitforge.curation.dedup import BLOCK, unit_rows
from traitforge.errors import TraitforgeError

Pair = tuple[str, str, float]  # (smaller id, larger id, cosine similarity)

# Defaults, chosen with `bench/dedup.py --sharded` on tiled MiniLM vectors (2 loaded CPU cores);
# recall is the share of the exact pairs >= 0.95 that the sharded search finds. At 100k rows the
# exact all-pairs pass (block_pairs over every row) takes 122 s and finds 681k pairs:
# - probes=2: with 316 blocks one probe found 0.998 (1379 pairs missed, near-copies on either
#   side of a boundary), two found all of them in 7.1 s, three all in 8.1 s. At 20k (141 blocks)
#   the same: 0.998, then 1.0. Two probes are the fewest that missed nothing.
# - blocks ~ sqrt(n) (`default_blocks`): the largest block stays near probes x sqrt(n) rows (2180
#   at 100k: 16 MiB peak while searching it) and the total work, ~ probes^2 n^2 / blocks, grows
#   slower than n^2. At 100k, 4x fewer blocks (79) were 1.8x slower, missed 37 pairs with two
#   probes (coarse centroids in 384 dims leave many vectors almost equidistant from several), and
#   their largest block had 11k rows (88 MiB); 4x more (1264) were 6x slower, k-means on 80k
#   sample rows into 1264 centroids costing more than the blocks saved.
# - 64 training vectors per block: k-means centroids settle with a few dozen points each; the
#   sample is the only part that must fit in one process.
DEFAULT_PROBES = 2
SAMPLE_PER_BLOCK = 64
KMEANS_ITERATIONS = 20
# Fewer vectors than this share one block (`plan_blocks`): their exact pass is a few BLOCK-row
# chunks of a small matrix (500 x 500 similarities: 1 MiB), and k-means on a few hundred points
# would only cut clusters that one block keeps whole.
ONE_BLOCK_BELOW = 500


def default_blocks(n: int) -> int:
    """Blocks for `n` vectors: about sqrt(n), at least one."""
    return max(1, round(math.sqrt(n)))


def check_vectors(vectors: np.ndarray, what: str, dim: int | None = None) -> np.ndarray:
    """`vectors` as a contiguous float32 matrix of finite unit rows (of `dim` columns if given),
    or a TraitforgeError naming `what` (for example "shard 3")."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or (dim is not None and vectors.shape[1] != dim):
        expected = f"(n, {dim})" if dim is not None else "(n, dim)"
        raise TraitforgeError(
            f"sharded dedup: {what}: expected a matrix of shape {expected}, got an array of "
            f"shape {vectors.shape}. Fix: pass one embedding row per id, all of the same model"
        )
    return unit_rows(vectors, f"sharded dedup: {what}")


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class Blocks:
    """A coarse quantizer: one unit-length centroid row per block."""

    centroids: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "centroids", check_vectors(self.centroids, "centroids"))
        if len(self.centroids) == 0:
            raise TraitforgeError(
                "sharded dedup: expected at least one centroid, got none. Fix: train the "
                "blocks with train_blocks on a non-empty sample"
            )

    @property
    def count(self) -> int:
        return len(self.centroids)

    def assign(self, vectors: np.ndarray, probes: int) -> np.ndarray:
        """The `probes` nearest blocks of each row (by cosine), nearest first: int64 (n, probes)."""
        if not 1 <= probes <= self.count:
            raise TraitforgeError(
                f"sharded dedup: expected probes between 1 and the {self.count} blocks, got "
                f"{probes}. Fix: lower probes, or train more blocks"
            )
        vectors = check_vectors(vectors, "vectors to assign", self.centroids.shape[1])
        if len(vectors) == 0:
            return np.zeros((0, probes), dtype=np.int64)
        index = faiss.IndexFlatIP(self.centroids.shape[1])
        index.add(self.centroids)
        return index.search(vectors, probes)[1].astype(np.int64)


def train_blocks(sample: np.ndarray, blocks: int, seed: int) -> Blocks:
    """`blocks` centroids from spherical k-means on the unit rows of `sample` (deterministic for
    a seed). The sample needs at least `blocks` rows; SAMPLE_PER_BLOCK per block is plenty."""
    sample = check_vectors(sample, "training sample")
    if not 1 <= blocks <= len(sample):
        raise TraitforgeError(
            f"sharded dedup: expected between 1 and {len(sample)} blocks (the sample's rows), "
            f"got {blocks}. Fix: train on a larger sample, or ask for fewer blocks"
        )
    kmeans = faiss.Kmeans(
        sample.shape[1],
        blocks,
        niter=KMEANS_ITERATIONS,
        seed=seed,
        spherical=True,  # centroids re-normalized, so nearest by inner product means by cosine
        min_points_per_centroid=1,  # small samples are fine here: silence faiss' warning
        max_points_per_centroid=max(SAMPLE_PER_BLOCK, math.ceil(len(sample) / blocks)),
    )
    kmeans.train(sample)
    return Blocks(kmeans.centroids.copy())


def plan_blocks(vectors: np.ndarray, seed: int, blocks: int | None = None) -> Blocks:
    """Blocks for the unit rows of `vectors`: `blocks` of them (default: one below
    ONE_BLOCK_BELOW rows, else `default_blocks`), trained on SAMPLE_PER_BLOCK rows per block
    drawn at random (seeded), so centroids cover all of the data whatever its order."""
    vectors = check_vectors(vectors, "vectors to plan blocks for")
    if len(vectors) == 0:
        raise TraitforgeError(
            "sharded dedup: expected at least one vector to plan blocks for, got none"
        )
    count = blocks or (1 if len(vectors) < ONE_BLOCK_BELOW else default_blocks(len(vectors)))
    if count == 1:
        return Blocks(vectors[:1])  # every row's nearest block, whichever unit row it is
    size = min(len(vectors), SAMPLE_PER_BLOCK * count)
    rows = np.sort(np.random.default_rng(seed).choice(len(vectors), size, replace=False))
    return train_blocks(vectors[rows], count, seed)


def split_by_block(
    ids: Sequence[str], vectors: np.ndarray, assignment: np.ndarray
) -> dict[int, tuple[list[str], np.ndarray]]:
    """Each block's (ids, vectors) from one shard, given `assignment` from `Blocks.assign`."""
    if assignment.shape[0] != len(ids) or len(vectors) != len(ids):
        raise TraitforgeError(
            f"sharded dedup: expected one vector and one assignment row per id ({len(ids)} "
            f"ids), got {len(vectors)} vectors and {assignment.shape[0]} assignment rows"
        )
    rows = np.repeat(np.arange(len(ids)), assignment.shape[1])
    flat = assignment.reshape(-1)
    order = np.argsort(flat, kind="stable")  # stable: rows keep shard order within a block
    rows, flat = rows[order], flat[order]
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]]) if len(flat) else []
    ends = np.r_[starts[1:], len(flat)] if len(flat) else []
    return {
        int(flat[start]): ([ids[r] for r in rows[start:end].tolist()], vectors[rows[start:end]])
        for start, end in zip(starts, ends, strict=True)
    }


def block_pairs(ids: Sequence[str], vectors: np.ndarray, threshold: float) -> list[Pair]:
    """Every pair of rows of one block whose cosine is at least `threshold`, exactly:
    (smaller id, larger id, similarity), so copies found in two blocks merge. Rows sharing an id
    are one item and never paired with each other. Memory: BLOCK x len(ids) similarities."""
    vectors = check_vectors(vectors, "block")
    if len(vectors) != len(ids):
        raise TraitforgeError(
            f"sharded dedup: expected one vector per id ({len(ids)} ids), got {len(vectors)}"
        )
    names = np.asarray(ids, dtype=str)
    pairs: list[Pair] = []
    for start in range(0, len(vectors), BLOCK):
        # Only columns from `start` on: pairs with earlier rows were found by earlier chunks.
        sims = vectors[start : start + BLOCK] @ vectors[start:].T
        a, b = np.nonzero(sims >= threshold)
        upper = b > a  # each pair once, and never a row with itself
        a, b = a[upper], b[upper]
        values = sims[a, b]
        first, second = names[a + start], names[b + start]
        distinct = first != second
        low = np.where(first < second, first, second)[distinct]
        high = np.where(first < second, second, first)[distinct]
        # float32 products of unit vectors can stray just above 1.
        values = np.minimum(values[distinct], 1.0)
        pairs.extend(zip(low.tolist(), high.tolist(), values.tolist(), strict=True))
    return pairs


def merge_pairs(found: Iterable[Iterable[Pair]]) -> list[Pair]:
    """One entry per id pair, sorted by ids. A pair found in two blocks can differ in the last
    float32 bit of its similarity (the products are summed in a different order): the larger
    is kept, so the result does not depend on the order of the blocks."""
    best: dict[tuple[str, str], float] = {}
    for pairs in found:
        for a, b, similarity in pairs:
            if similarity > best.get((a, b), -2.0):
                best[(a, b)] = similarity
    return [(a, b, similarity) for (a, b), similarity in sorted(best.items())]


def _checked(
    shards: Iterable[tuple[Sequence[str], np.ndarray]],
) -> Iterator[tuple[Sequence[str], np.ndarray]]:
    dim: int | None = None
    for number, (ids, vectors) in enumerate(shards):
        if len(ids) == 0 and np.size(vectors) == 0:
            continue  # an empty shard, whatever its array's shape
        vectors = check_vectors(vectors, f"shard {number}", dim)
        if len(vectors) != len(ids):
            raise TraitforgeError(
                f"sharded dedup: shard {number}: expected one vector per id ({len(ids)} ids), "
                f"got {len(vectors)}. Fix: pass (ids, vectors) with rows in the order of the ids"
            )
        dim = vectors.shape[1]
        yield ids, vectors


def sharded_pairs(
    shards: Iterable[tuple[Sequence[str], np.ndarray]],
    threshold: float,
    blocks: int,
    probes: int = DEFAULT_PROBES,
    seed: int = 0,
    sample: int | None = None,
) -> list[Pair]:
    """Every pair at or above `threshold` that shares one of its `probes` nearest blocks, over
    shards of (ids, unit vectors) read once; sorted by ids. Ids should be distinct across shards
    (a repeated id is one item, never paired with itself).

    The training sample is the first `sample` vectors (default SAMPLE_PER_BLOCK x blocks), read
    from the first shards, which stay buffered until the centroids exist: shards are read only
    once, so they may come from a generator, but shuffle them first if their order follows the
    data (sorted by source, say), or the centroids only cover the first part. Fewer vectors than
    `blocks` train one block per vector, and `probes` is capped at the blocks trained.

    Here every block's rows are grouped in memory (`probes` copies of each vector); on Ray the
    grouping is a shuffle keyed by block, and each block is one `block_pairs` task.
    """
    if not 0.0 < threshold <= 1.0:
        raise TraitforgeError(
            f"sharded dedup: expected a threshold in (0, 1], got {threshold}. Fix: use a "
            "cosine similarity such as DedupConfig.threshold"
        )
    if blocks < 1 or probes < 1 or (sample is not None and sample < 1):
        raise TraitforgeError(
            f"sharded dedup: expected blocks, probes and sample of at least 1, got blocks="
            f"{blocks}, probes={probes}, sample={sample}. Fix: use default_blocks(n) and "
            "DEFAULT_PROBES"
        )
    wanted = sample if sample is not None else SAMPLE_PER_BLOCK * blocks
    stream = _checked(shards)
    buffered: list[tuple[Sequence[str], np.ndarray]] = []
    taken = 0
    for shard in stream:
        buffered.append(shard)
        taken += len(shard[1])
        if taken >= wanted:
            break
    if taken == 0:
        return []
    training = np.concatenate([vectors for _, vectors in buffered])[:wanted]
    quantizer = train_blocks(training, min(blocks, len(training)), seed)
    per_block: dict[int, list[tuple[list[str], np.ndarray]]] = defaultdict(list)
    for ids, vectors in chain(buffered, stream):
        assignment = quantizer.assign(vectors, min(probes, quantizer.count))
        for block, part in split_by_block(ids, vectors, assignment).items():
            per_block[block].append(part)
    buffered.clear()

    def found() -> Iterator[list[Pair]]:
        for block in sorted(per_block):
            parts = per_block.pop(block)  # each block's rows are freed once searched
            ids = [i for part_ids, _ in parts for i in part_ids]
            yield block_pairs(ids, np.concatenate([v for _, v in parts]), threshold)

    return merge_pairs(found())
