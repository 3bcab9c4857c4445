"""Cross-shard near-duplicate pairs (curation.sharded_dedup) against an exact float64 search."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from traitforge.curation import sharded_dedup
from traitforge.curation.sharded_dedup import (
    Blocks,
    block_pairs,
    default_blocks,
    merge_pairs,
    plan_blocks,
    sharded_pairs,
    split_by_block,
    train_blocks,
)
from traitforge.errors import TraitforgeError


def _clustered(n: int, clusters: int, dim: int, spread: float, seed: int) -> np.ndarray:
    """Unit rows scattered around random cluster centres: pairs inside a cluster are similar,
    and clusters are wide enough that k-means cuts through some of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    rows = centres[rng.integers(0, clusters, n)] + rng.normal(scale=spread, size=(n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _ids(n: int) -> list[str]:
    # Descending names, so that a pair's ids are ordered only if the code orders them.
    return [f"id-{n - row:05d}" for row in range(n)]


def _shards(ids, vectors, size):
    return [(ids[s : s + size], vectors[s : s + size]) for s in range(0, len(ids), size)]


def _exact(ids, vectors, threshold) -> set[tuple[str, str]]:
    sims = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    a, b = np.nonzero(np.triu(sims >= threshold, k=1))
    return {tuple(sorted((ids[i], ids[j]))) for i, j in zip(a.tolist(), b.tolist(), strict=True)}


def _keys(pairs) -> set[tuple[str, str]]:
    return {(a, b) for a, b, _ in pairs}


@pytest.fixture(scope="module")
def data():
    vectors = _clustered(1200, clusters=15, dim=24, spread=0.15, seed=1)
    ids = _ids(len(vectors))
    return ids, vectors, _exact(ids, vectors, 0.9)


def test_full_probes_equal_the_exact_search(data):
    ids, vectors, exact = data
    assert len(exact) > 1000  # the construction has plenty of pairs to get wrong
    found = sharded_pairs(_shards(ids, vectors, 250), 0.9, blocks=6, probes=6, seed=0)
    assert _keys(found) == exact
    assert len(found) == len(exact)  # each pair once, though every block holds it
    row = {name: number for number, name in enumerate(ids)}
    for a, b, similarity in found[:50]:
        assert similarity == pytest.approx(float(vectors[row[a]] @ vectors[row[b]]), abs=1e-6)


def test_more_probes_recover_the_pairs_that_straddle_blocks(data):
    ids, vectors, exact = data
    shards = _shards(ids, vectors, 300)
    recall = {
        probes: len(_keys(sharded_pairs(shards, 0.9, 30, probes, 0)) & exact) / len(exact)
        for probes in (1, 2, 3)
    }
    # Measured: 30 blocks cut the 15 clusters apart, so one probe finds 0.65 of the pairs; two
    # find 0.9985, three all of them.
    assert recall[1] < 0.8
    assert recall[2] >= 0.99
    assert recall[3] >= 0.999


def test_no_pair_is_invented(data):
    ids, vectors, exact = data
    found = sharded_pairs(_shards(ids, vectors, 300), 0.9, 30, 2, 0)
    assert _keys(found) <= exact
    assert all(similarity >= 0.9 for _, _, similarity in found)


def test_same_seed_same_pairs_and_centroids(data):
    ids, vectors, _ = data
    shards = _shards(ids, vectors, 300)
    assert sharded_pairs(shards, 0.9, 20, 2, seed=3) == sharded_pairs(shards, 0.9, 20, 2, seed=3)
    first, again = train_blocks(vectors, 20, 3), train_blocks(vectors, 20, 3)
    assert np.array_equal(first.centroids, again.centroids)
    assert not np.array_equal(first.centroids, train_blocks(vectors, 20, 4).centroids)


def test_ids_in_pairs_are_ordered_and_pairs_sorted(data):
    ids, vectors, _ = data
    found = sharded_pairs(_shards(ids, vectors, 300), 0.9, 20, 2, 0)
    assert found and all(a < b for a, b, _ in found)
    assert found == sorted(found)


def test_training_sample_is_the_first_vectors(data):
    ids, vectors, _ = data
    shards = _shards(ids, vectors, 100)
    quantizer = train_blocks(vectors[:200], 10, 0)
    # Trained on the first 200 rows, the driver's blocks are exactly these: full probes over them
    # finds everything, and one probe finds what shares one of these blocks.
    assignment = quantizer.assign(vectors, 1)[:, 0]
    same_block = {
        tuple(sorted((ids[i], ids[j])))
        for i in range(len(ids))
        for j in np.flatnonzero(assignment == assignment[i]).tolist()
        if j > i
    }
    found = sharded_pairs(shards, 0.9, 10, 1, 0, sample=200)
    assert _keys(found) == same_block & _exact(ids, vectors, 0.9)


def test_empty_and_single_vector_shards():
    vectors = _clustered(40, clusters=2, dim=8, spread=0.05, seed=2)
    ids = _ids(40)
    empty = ([], np.zeros((0, 8), dtype=np.float32))
    assert sharded_pairs([], 0.9, 4) == []
    assert sharded_pairs([empty, ([], np.zeros((0, 0)))], 0.9, 4) == []
    assert sharded_pairs([(ids[:1], vectors[:1])], 0.9, 4) == []  # one vector: no pair
    singles = [empty] + [(ids[r : r + 1], vectors[r : r + 1]) for r in range(40)] + [empty]
    expected = _exact(ids, vectors, 0.9)
    assert expected  # two tight clusters
    assert _keys(sharded_pairs(singles, 0.9, blocks=2, probes=2)) == expected


def test_a_repeated_id_is_never_paired_with_itself():
    vectors = _clustered(10, clusters=1, dim=8, spread=0.01, seed=3)
    ids = _ids(10)
    found = sharded_pairs([(ids, vectors), (ids[:1], vectors[:1])], 0.9, 1, 1)
    assert all(a != b for a, b, _ in found)
    assert _keys(found) == _exact(ids, vectors, 0.9)


def test_block_pairs_is_exact_across_its_row_chunks(monkeypatch, data):
    ids, vectors, exact = data
    monkeypatch.setattr(sharded_dedup, "BLOCK", 7)  # many chunks, pairs across their borders
    found = block_pairs(ids, vectors, 0.9)
    assert len(found) == len(exact)
    assert _keys(found) == exact


def test_a_shard_that_is_not_unit_length_is_refused(data):
    ids, vectors, _ = data
    shards = _shards(ids, vectors, 300)
    shards[2] = (shards[2][0], shards[2][1] * 2.0)
    with pytest.raises(TraitforgeError, match=r"shard 2: expected L2-normalized rows.*2"):
        sharded_pairs(shards, 0.9, 10)
    with pytest.raises(TraitforgeError, match="block: expected L2-normalized"):
        block_pairs(ids[:10], vectors[:10] * 0.5, 0.9)
    broken = vectors[:10].copy()
    broken[3, 0] = np.nan
    with pytest.raises(TraitforgeError, match="shard 0: expected finite vectors"):
        sharded_pairs([(ids[:10], broken)], 0.9, 2)


def test_mismatched_shards_are_refused(data):
    ids, vectors, _ = data
    with pytest.raises(TraitforgeError, match=r"shard 0: expected one vector per id \(9 ids\)"):
        sharded_pairs([(ids[:9], vectors[:10])], 0.9, 2)
    other_model = np.eye(5, dtype=np.float32)
    with pytest.raises(TraitforgeError, match=r"shard 1: expected a matrix of shape \(n, 24\)"):
        sharded_pairs([(ids[:10], vectors[:10]), (ids[10:15], other_model)], 0.9, 2)
    with pytest.raises(TraitforgeError, match="threshold in"):
        sharded_pairs([(ids, vectors)], 1.5, 2)


def test_blocks_assign_nearest_first_and_check_probes(data):
    _, vectors, _ = data
    quantizer = train_blocks(vectors, 8, 0)
    assignment = quantizer.assign(vectors[:50], 3)
    sims = vectors[:50] @ quantizer.centroids.T
    assert np.array_equal(assignment[:, 0], sims.argmax(axis=1))
    picked = np.take_along_axis(sims, assignment, axis=1)
    assert (np.diff(picked, axis=1) <= 0).all()
    assert quantizer.assign(np.zeros((0, 24), dtype=np.float32), 2).shape == (0, 2)
    with pytest.raises(TraitforgeError, match="between 1 and the 8 blocks, got 9"):
        quantizer.assign(vectors, 9)
    with pytest.raises(TraitforgeError, match="between 1 and 5 blocks"):
        train_blocks(vectors[:5], 6, 0)


def test_blocks_survive_pickling_for_workers(data):
    _, vectors, _ = data
    quantizer = train_blocks(vectors, 8, 0)
    copy = pickle.loads(pickle.dumps(quantizer))
    assert isinstance(copy, Blocks)
    assert np.array_equal(copy.assign(vectors, 2), quantizer.assign(vectors, 2))


def test_split_by_block_puts_each_row_in_each_of_its_blocks(data):
    ids, vectors, _ = data
    assignment = train_blocks(vectors, 8, 0).assign(vectors[:100], 2)
    parts = split_by_block(ids[:100], vectors[:100], assignment)
    for row in range(100):
        holding = {block for block, (part_ids, _) in parts.items() if ids[row] in part_ids}
        assert holding == set(assignment[row].tolist())
    for part_ids, part_vectors in parts.values():
        assert np.array_equal(part_vectors, vectors[[ids.index(i) for i in part_ids]])


def test_merge_pairs_keeps_one_entry_per_pair():
    merged = merge_pairs([[("a", "b", 0.95), ("c", "d", 0.99)], [("a", "b", 0.96)]])
    assert merged == [("a", "b", 0.96), ("c", "d", 0.99)]


def test_default_blocks_grow_with_the_square_root():
    assert default_blocks(0) == 1
    assert default_blocks(10_000) == 100
    assert default_blocks(1_000_000) == 1000


def test_plan_blocks_uses_one_block_for_small_inputs_and_sqrt_n_above():
    small = _clustered(sharded_dedup.ONE_BLOCK_BELOW - 1, 5, 16, 0.1, seed=1)
    one = plan_blocks(small, seed=0)
    assert one.count == 1
    assert (one.assign(small, 1) == 0).all()
    large = _clustered(sharded_dedup.ONE_BLOCK_BELOW, 5, 16, 0.1, seed=1)
    assert plan_blocks(large, seed=0).count == default_blocks(len(large))
    assert plan_blocks(small, seed=0, blocks=7).count == 7


def test_plan_blocks_samples_all_of_the_data_whatever_its_order():
    # Sorted data: the first half near one direction, the second half near the opposite one.
    # A sample of the first rows would put both centroids in the first half.
    first = _clustered(600, 1, 16, 0.05, seed=2)
    vectors = np.concatenate([first, -first])
    blocks = plan_blocks(vectors, seed=0, blocks=2)
    assert set(blocks.assign(vectors[:600], 1)[:, 0]) != set(blocks.assign(vectors[600:], 1)[:, 0])
    again = plan_blocks(vectors, seed=0, blocks=2)
    assert np.array_equal(blocks.centroids, again.centroids)


def test_plan_blocks_without_vectors_is_refused():
    with pytest.raises(TraitforgeError, match="at least one vector to plan blocks for"):
        plan_blocks(np.zeros((0, 4), dtype=np.float32), seed=0)
