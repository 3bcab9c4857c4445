"""The finder's replaceable corpus search (`NearDuplicateFinder(config, corpus_search)`), with
the in-process blocked search of `sharded_dedup` standing in for the Ray one.

The vectors here are constructed, not embedded: the geometry each test needs (an edge that a
neighbour list misses, clusters that blocks cut through) is set exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from traitforge.curation.dedup import NearDuplicateFinder, search_neighbours
from traitforge.curation.pipeline import CurationState, DedupStage
from traitforge.curation.scorers import CandidateFeatures
from traitforge.curation.sharded_dedup import sharded_pairs
from traitforge.errors import TraitforgeError
from traitforge.schemas import Candidate, DedupConfig


def _candidates(n: int, prompts: int | None = None) -> list[Candidate]:
    """Answer i to question i % prompts (default: each to its own question)."""
    prompts = prompts or n
    return [
        Candidate(prompt=f"Question {i % prompts}?", response=f"Answer {i}", source="test")
        for i in range(n)
    ]


def _blocked(blocks: int, probes: int = 2):
    """A corpus search over the rows: `sharded_pairs` with row numbers as ids."""
    calls: list[tuple[int, float]] = []

    def search(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        calls.append((len(vectors), threshold))
        ids = [str(row) for row in range(len(vectors))]
        pairs = sharded_pairs([(ids, vectors)], threshold, blocks, probes, seed=0)
        rows = np.array([(int(a), int(b)) for a, b, _ in pairs], dtype=np.int64).reshape(-1, 2)
        return rows[:, 0], rows[:, 1]

    search.calls = calls  # type: ignore[attr-defined]
    return search


def _on_circle(degrees: list[float]) -> np.ndarray:
    angles = np.radians(degrees)
    return np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], 1).astype(np.float32)


def _groups(marks) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for mark in marks:
        groups.setdefault(mark.representative_id, {mark.representative_id}).add(mark.candidate_id)
    return {frozenset(g) for g in groups.values()}


def test_knn_misses_the_one_edge_between_two_groups_that_the_full_search_keeps():
    # Two groups of three answers, each to its own question, 1-2 degrees apart inside a group;
    # p3 (5 deg) and q1 (22 deg) are 17 deg apart: cos 0.956, the only pair across the groups
    # at or above 0.955 (p3-q2, 18 deg: 0.951).
    candidates = _candidates(6)
    vectors = _on_circle([0, 1, 5, 22, 23, 24])
    config = DedupConfig(threshold=0.955, neighbours=2)
    assert float(vectors[2] @ vectors[3]) >= 0.955 > float(vectors[2] @ vectors[4])
    # With neighbours=2, p3's list holds p2 and p1 and q1's holds q2 and q3: the edge is missed.
    _, nearest = search_neighbours(vectors, config.neighbours + 1, approximate=False)
    assert 3 not in nearest[2] and 2 not in nearest[3]

    knn = NearDuplicateFinder(config).process(candidates, vectors)
    blocked = NearDuplicateFinder(config, _blocked(blocks=1)).process(candidates, vectors)
    ids = [c.id for c in candidates]
    # kNN: two corpus clusters of three (4 marks); every pair: one cluster of six (5 marks).
    assert _groups(knn) == {frozenset(ids[:3]), frozenset(ids[3:])}
    assert _groups(blocked) == {frozenset(ids)}
    assert {m.scope for m in knn + blocked} == {"corpus"}


def test_blocked_search_gives_the_neighbour_search_marks_when_no_edge_is_missed():
    # 400 answers in 40 tight clusters (10 each: fewer than neighbours=16, so kNN misses no
    # edge), shuffled, 4 or 5 to each of 97 questions (some share a cluster: prompt scope too). 20
    # blocks on 400 rows cut through clusters; two probes recover the pairs across the cuts.
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 32))
    members = rng.permutation(np.repeat(np.arange(40), 10))
    rows = centres[members] + rng.normal(scale=0.02, size=(400, 32))
    vectors = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    candidates = _candidates(400, prompts=97)
    config = DedupConfig(threshold=0.97)
    search = _blocked(blocks=20)

    knn = NearDuplicateFinder(config).process(candidates, vectors)
    blocked = NearDuplicateFinder(config, search).process(candidates, vectors)
    assert search.calls == [(400, 0.97)]  # the distinct texts, once, with the threshold
    assert {m.scope for m in knn} == {"prompt", "corpus"}
    assert len(knn) > 300
    assert blocked == knn


def test_the_search_sees_each_distinct_text_once():
    copies = [
        Candidate(prompt=f"Question {i}?", response="I have no comment", source="test")
        for i in range(3)
    ]
    vectors = _on_circle([0, 0, 0, 40])
    search = _blocked(blocks=1)
    marks = NearDuplicateFinder(DedupConfig(), search).process(
        [*copies, _candidates(4)[3]], vectors
    )
    assert search.calls == [(2, DedupConfig().threshold)]
    assert len(marks) == 2  # the copies, joined as one text whatever the search returns


@pytest.mark.parametrize(
    ("found", "message"),
    [
        ((np.array([0]), np.array([0, 1])), r"rows of shape \(1,\) and \(2,\)"),
        ((np.array([0.0]), np.array([1.0])), "expected two 1-d integer arrays"),
        ((np.array([0]), np.array([4])), r"rows from 0 to 4; expected rows of the 4 vectors"),
        ((np.array([-1]), np.array([1])), "rows from -1 to 1"),
    ],
)
def test_a_search_returning_rows_that_do_not_fit_is_refused(found, message):
    vectors = _on_circle([0, 10, 20, 30])
    finder = NearDuplicateFinder(DedupConfig(), lambda vectors, threshold: found)
    with pytest.raises(TraitforgeError, match=message):
        finder.process(_candidates(4), vectors)


def test_a_search_that_finds_nothing_leaves_only_identical_texts(config):
    vectors = _on_circle([0, 0.5, 1])
    empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert NearDuplicateFinder(DedupConfig()).process(_candidates(3), vectors)
    assert (
        NearDuplicateFinder(DedupConfig(), lambda v, t: empty).process(_candidates(3), vectors)
        == []
    )


def test_the_dedup_stage_passes_the_engines_search_to_the_finder(config):
    candidates = _candidates(6)
    vectors = _on_circle([0, 1, 5, 22, 23, 24])
    search = _blocked(blocks=1)
    state = CurationState(candidates=candidates)
    state.flags = []
    state.features = CandidateFeatures(
        candidates=candidates,
        prompt_vectors=vectors,
        response_vectors=vectors,
        embedding_model="constructed",
    )
    DedupStage(config, search).process(state)
    assert search.calls == [(6, config.curation.dedup.threshold)]
    DedupStage(config).process(state)  # the local engine's: no search passed, none called
    assert len(search.calls) == 1
