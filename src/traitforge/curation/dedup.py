"""Near-duplicate responses, marked (never deleted): within one prompt, and across prompts.

Two candidates are near-duplicates when the cosine similarity of their response embeddings is
at least `DedupConfig.threshold`; identical response texts always are (similarity 1.0).

- **prompt scope**: near-duplicate answers to the same prompt. A marked candidate is never paired
  for annotation, so this scope is computed exactly: every pair inside each prompt is compared
  (prompts hold a handful of candidates, so this costs little).
- **corpus scope**: the same answer given to different prompts (boilerplate such as "I have no
  comment"). Informational only. Found with faiss: each distinct response text searches its
  `neighbours` nearest texts (exact inner product up to `hnsw_above` texts, HNSW above).

The corpus search can be replaced (`CorpusSearch`; the Ray engine passes the blocked search of
`sharded_dedup`, run across workers). Such a search returns every pair at or above the
threshold, where the neighbour search keeps at most `neighbours` per text. Marks come from the
connected components of the pairs, so the two give the same marks unless the neighbour search
misses the one edge joining two components: texts A and B above the threshold, each with
`neighbours` closer texts of its own group filling its list, and no other edge between the
groups. The neighbour search then reports two corpus clusters, the full search one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

import faiss
import numpy as np

from traitforge.errors import TraitforgeError
from traitforge.schemas import Candidate, DedupConfig, DuplicateMark

Scope = Literal["prompt", "corpus"]
# (unit vectors of the distinct texts, threshold) -> rows (a, b) of every pair at or above it.
CorpusSearch: TypeAlias = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]

# HNSW settings, chosen with bench/dedup.py on 100k tiled MiniLM vectors (2 CPU cores), where
# the exact flat search takes ~45 s and HNSW ~13 s (build 8 s + search 5 s):
# - M=32 links per node, the usual choice for 384-dim sentence embeddings. M=16 builds twice as
#   fast but found 0.992 of the true 17 nearest (M=32: 0.995 at the same efConstruction);
#   M=48 took 1.7x the build time of M=32 for no measurable gain.
# - efConstruction=80 instead of faiss' 40: 0.995 -> 0.9995 of the true neighbours for about
#   the same build time; 160 took ~3x the build time for +0.0004.
# - efSearch=128 (the candidate list kept while searching; never below k): 0.9994 of the true
#   neighbours and 0.9999 of the pairs above 0.95 (71 of 641k missed); 64 halves the search
#   time for ~2x the misses. Search is the cheaper half of an HNSW run, so we take the recall.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128

# Rows compared at once in the exact within-prompt pass: bounds memory to BLOCK x prompt size.
BLOCK = 1024
# Embedders return unit vectors; anything further off than this was not normalized.
NORM_TOLERANCE = 1e-3


def build_index(vectors: np.ndarray, approximate: bool) -> faiss.Index:
    """A faiss inner-product index holding `vectors`: exact (flat), or HNSW when approximate."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index: faiss.Index
    if approximate:
        index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def search_neighbours(
    vectors: np.ndarray, k: int, approximate: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest rows of `vectors` to each row, by inner product (cosine on unit vectors).

    Returns (similarities, indices), each of shape (n, min(k, n)), best first. A row's own index
    is usually among its results; HNSW may return -1 where it found fewer than k.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = build_index(vectors, approximate)
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, k)
    similarities, indices = index.search(vectors, min(k, len(vectors)))
    return similarities, indices


def unit_rows(vectors: np.ndarray, where: str) -> np.ndarray:
    """`vectors` as contiguous float32, refused (naming `where`) unless every row is finite
    and of unit length: inner products are cosines only then."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        raise TraitforgeError(
            f"{where}: expected finite vectors, got NaN or infinity. Fix: re-embed the "
            "responses (delete the workspace's embedding cache if it is damaged)"
        )
    norms = np.linalg.norm(vectors, axis=1)
    if len(norms) and np.abs(norms - 1.0).max() > NORM_TOLERANCE:
        raise TraitforgeError(
            f"{where}: expected L2-normalized rows, got norms from {norms.min():.4g} to "
            f"{norms.max():.4g}. Fix: embed with Embedder (it normalizes), or divide each "
            "row by its norm"
        )
    return vectors


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, node: int) -> int:
        parent = self.parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps later finds short
            node = parent[node]
        return node

    def union(self, a: int, b: int) -> int:
        """Joins the sets of a and b; returns the root of the joined set."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_b] = root_a
        return root_a

    def groups(self) -> Iterator[list[int]]:
        """Sets of two or more members, members in ascending order."""
        members: dict[int, list[int]] = defaultdict(list)
        for node in range(len(self.parent)):
            members[self.find(node)].append(node)
        return (m for m in members.values() if len(m) > 1)


def _integral(rows: np.ndarray) -> bool:
    # An empty float array passes: np.asarray([]), a search's "no pairs", is float64.
    return rows.dtype.kind in "iu" or (rows.size == 0 and rows.dtype.kind == "f")


def _gold_compatible(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(b[trait] == value for trait, value in a.items() if trait in b)


@dataclass(frozen=True)
class ClusterSize:
    """One cluster of a report: its scope, representative, and members (representative too)."""

    scope: Scope
    representative_id: str
    size: int


@dataclass(frozen=True)
class DedupReport:
    """Counts for a run of the finder (or for marks read back from a store)."""

    candidates: int  # distinct candidate ids looked at
    marked: dict[Scope, int]  # candidates marked, per scope
    clusters: dict[Scope, int]  # clusters with at least one marked member, per scope
    largest: list[ClusterSize] = field(default_factory=list)
    kept_apart: int = 0  # prompt-scope joins refused because gold labels disagree

    @classmethod
    def from_marks(
        cls,
        marks: Sequence[DuplicateMark],
        candidates: int,
        largest: int = 5,
        kept_apart: int = 0,
    ) -> DedupReport:
        """Marked candidates and clusters per scope, and the `largest` clusters."""
        sizes: dict[tuple[Scope, str], int] = defaultdict(lambda: 1)  # 1: the representative
        for mark in marks:
            sizes[(mark.scope, mark.representative_id)] += 1
        ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))
        return cls(
            candidates=candidates,
            marked={s: sum(1 for m in marks if m.scope == s) for s in ("prompt", "corpus")},
            clusters={s: sum(1 for scope, _ in sizes if scope == s) for s in ("prompt", "corpus")},
            largest=[ClusterSize(scope, rep, size) for (scope, rep), size in ranked[:largest]],
            kept_apart=kept_apart,
        )


class NearDuplicateFinder:
    """Marks near-duplicate candidates. A stage: frozen config, no model to load, and a
    `process` that does no I/O.

    Near-duplicate pairs are joined into clusters with union-find, separately per scope. A
    cluster keeps one representative: a candidate with gold labels if it has one, then the
    smallest id, so re-runs on the same data give the same marks. Every other member gets one
    DuplicateMark pointing at the representative, carrying its own similarity to the
    representative (1.0 for identical texts; it can be below the threshold when the cluster is a
    chain of pairs).

    Rules:
    - A candidate is never marked a duplicate of itself. Rows repeating an id already seen are
      the same candidate (ids hash prompt, response and source), so only the first is used.
    - A candidate gets at most one mark, and prompt scope is decided first. Corpus scope then
      treats each prompt cluster as one unit that speaks through its representative: a group
      connected by identical texts or cross-prompt pairs that spans two or more prompts keeps
      one representative, and the other prompt representatives in it are marked "corpus". A
      prompt duplicate is not reported again in corpus scope: its prompt mark, the one with
      consequences, already says which candidate stands for it. (Two answers to one prompt that
      the gold rule below kept apart can still meet in one corpus group through a third
      prompt's answer; one of them is then marked "corpus" against the other.)
    - Within a prompt, candidates whose gold labels disagree on a trait never share a cluster,
      however similar their embeddings. Sentence embeddings barely register negation or swapped
      entities ("fortune cookies came from China, but they originated in California" and the
      reverse: cosine 0.998 with all-MiniLM-L6-v2), and such true/false contrasts are the most
      informative pairs a prompt has. Pairs are joined from the most similar down; a join that
      would bring conflicting gold labels together is refused and counted (`kept_apart`).
      Corpus scope has no such rule: gold labels of different prompts answer different questions.
    """

    def __init__(self, config: DedupConfig, corpus_search: CorpusSearch | None = None) -> None:
        """`corpus_search` replaces the neighbour search of corpus scope (None keeps it)."""
        self.config = config
        self.corpus_search = corpus_search

    def process(self, candidates: Sequence[Candidate], vectors: np.ndarray) -> list[DuplicateMark]:
        """Marks for `candidates`; `vectors` are their L2-normalized response embeddings, one
        float32 row per candidate, in the same order."""
        return self.find(candidates, vectors)[0]

    def find(
        self, candidates: Sequence[Candidate], vectors: np.ndarray
    ) -> tuple[list[DuplicateMark], DedupReport]:
        """The marks (sorted by candidate id) and their report."""
        vectors = self._check(candidates, vectors)
        first: dict[str, int] = {}
        for row, candidate in enumerate(candidates):
            first.setdefault(candidate.id, row)
        rows = list(first.values())
        unique = [candidates[row] for row in rows]
        if len(unique) < 2:
            return [], DedupReport.from_marks([], len(unique))
        run = _Run(self.config, unique, vectors[rows], self.corpus_search)
        prompt_groups, kept_apart = run.prompt_clusters()
        links = run.mark_prompt_duplicates(prompt_groups)
        links += run.mark_corpus_duplicates(prompt_groups, {member for member, _, _ in links})
        marks = run.marks(links)  # a candidate is in `links` at most once, so marked at most once
        return marks, DedupReport.from_marks(marks, len(unique), kept_apart=kept_apart)

    @staticmethod
    def _check(candidates: Sequence[Candidate], vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[0] != len(candidates):
            raise TraitforgeError(
                f"dedup: expected one vector row per candidate ({len(candidates)} rows), got an "
                f"array of shape {vectors.shape}. Fix: pass the response embeddings in the "
                "order of the candidates"
            )
        return unit_rows(vectors, "dedup")


class _Run:
    """State of one `find` call: candidates with distinct ids, their vectors, and codes for
    their texts and prompts."""

    def __init__(
        self,
        config: DedupConfig,
        candidates: list[Candidate],
        vectors: np.ndarray,
        corpus_search: CorpusSearch | None = None,
    ) -> None:
        self.config = config
        self.candidates = candidates
        self.vectors = vectors
        self.corpus_search = corpus_search
        texts: dict[str, int] = {}
        prompts: dict[str, int] = {}
        # Codes in order of first appearance, so text code t first occurs at row first_rows[t].
        self.text_codes = np.array(
            [texts.setdefault(c.response, len(texts)) for c in candidates], dtype=np.int64
        )
        self.prompt_codes = np.array(
            [prompts.setdefault(c.prompt_id, len(prompts)) for c in candidates], dtype=np.int64
        )
        self.first_rows = np.unique(self.text_codes, return_index=True)[1]

    def rank(self, row: int) -> tuple[bool, str]:
        """Representatives: gold-labelled first, then the smallest id."""
        candidate = self.candidates[row]
        return (not candidate.gold, candidate.id)

    def prompt_pairs(self) -> list[tuple[float, int, int]]:
        """Every pair (similarity, row, row) within a prompt at or above the threshold.

        Exact, not from the neighbour search: a prompt's near-duplicates could be pushed out of
        its k nearest neighbours by copies of the same boilerplate under other prompts.
        """
        by_prompt: dict[int, list[int]] = defaultdict(list)
        for row, code in enumerate(self.prompt_codes.tolist()):
            by_prompt[code].append(row)
        pairs: list[tuple[float, int, int]] = []
        for rows in by_prompt.values():
            if len(rows) < 2:
                continue
            group = np.asarray(rows)
            vectors, texts = self.vectors[group], self.text_codes[group]
            for start in range(0, len(group), BLOCK):
                sims = vectors[start : start + BLOCK] @ vectors.T
                # Identical texts are duplicates whatever their vectors say.
                sims[texts[start : start + BLOCK, None] == texts[None, :]] = 1.0
                a, b = np.nonzero(sims >= self.config.threshold)
                upper = b > a + start  # each pair once, and never a row with itself
                a, b = a[upper], b[upper]
                pairs.extend(
                    zip(
                        sims[a, b].tolist(),
                        group[a + start].tolist(),
                        group[b].tolist(),
                        strict=True,
                    )
                )
        return pairs

    def prompt_clusters(self) -> tuple[list[list[int]], int]:
        """Clusters within prompts under the gold rule, and how many joins it refused."""
        pairs = self.prompt_pairs()
        ids = [c.id for c in self.candidates]
        pairs.sort(key=lambda p: (-p[0], ids[p[1]], ids[p[2]]))
        clusters = _UnionFind(len(self.candidates))
        gold = [c.gold for c in self.candidates]  # per root: the union of its members' labels
        kept_apart = 0
        for _, a, b in pairs:
            root_a, root_b = clusters.find(a), clusters.find(b)
            if root_a == root_b:
                continue
            if not _gold_compatible(gold[root_a], gold[root_b]):
                kept_apart += 1
                continue
            gold[clusters.union(root_a, root_b)] = {**gold[root_a], **gold[root_b]}
        return list(clusters.groups()), kept_apart

    def mark_prompt_duplicates(self, groups: list[list[int]]) -> list[tuple[int, int, Scope]]:
        links: list[tuple[int, int, Scope]] = []
        for members in groups:
            representative = min(members, key=self.rank)
            links.extend((m, representative, "prompt") for m in members if m != representative)
        return links

    def corpus_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows (a, b) of cross-prompt pairs at or above the threshold, searched one row per
        distinct text: copies of a text are joined by `mark_corpus_duplicates` directly, and
        searching them once keeps a popular text from filling everyone's neighbour list."""
        first_rows = self.first_rows
        if len(first_rows) < 2:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        if self.corpus_search is None:
            a, b = self.neighbour_pairs()
        else:
            a, b = self.searched_pairs(self.corpus_search)
        # A text's prompt when all its copies answer one prompt, else -1. A pair of texts that
        # only ever answer the same single prompt is a prompt-scope matter, not a corpus one.
        only_prompt = self.prompt_codes[first_rows].copy()
        spread = self.prompt_codes != only_prompt[self.text_codes]
        only_prompt[self.text_codes[spread]] = -1
        cross = (only_prompt[a] < 0) | (only_prompt[a] != only_prompt[b])
        return first_rows[a[cross]], first_rows[b[cross]]

    def neighbour_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Text codes (a, b): each text with those of its `neighbours` nearest at or above the
        threshold."""
        sims, found = search_neighbours(
            self.vectors[self.first_rows],
            self.config.neighbours + 1,  # + 1: a text finds itself, which is not a neighbour
            approximate=len(self.first_rows) > self.config.hnsw_above,
        )
        query = np.broadcast_to(np.arange(len(self.first_rows))[:, None], found.shape)
        keep = (found >= 0) & (found != query) & (sims >= self.config.threshold)
        return query[keep], found[keep]

    def searched_pairs(self, search: CorpusSearch) -> tuple[np.ndarray, np.ndarray]:
        """Text codes (a, b) from a replacement search, checked: rows of the matrix it got."""
        texts = len(self.first_rows)
        found = search(self.vectors[self.first_rows], self.config.threshold)
        a, b = (np.asarray(rows) for rows in found)
        if a.shape != b.shape or a.ndim != 1 or not all(_integral(r) for r in (a, b)):
            raise TraitforgeError(
                f"dedup: the corpus search returned rows of shape {a.shape} and {b.shape} "
                f"(dtypes {a.dtype}, {b.dtype}); expected two 1-d integer arrays of equal "
                "length. Fix: return (a, b) with pair i joining rows a[i] and b[i]"
            )
        if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= texts):
            raise TraitforgeError(
                f"dedup: the corpus search returned rows from {min(a.min(), b.min())} to "
                f"{max(a.max(), b.max())}; expected rows of the {texts} vectors it was given "
                f"(0 to {texts - 1}). Fix: return row numbers of its input matrix"
            )
        return a.astype(np.int64), b.astype(np.int64)

    def mark_corpus_duplicates(
        self, prompt_groups: list[list[int]], prompt_marked: set[int]
    ) -> list[tuple[int, int, Scope]]:
        groups = _UnionFind(len(self.candidates))
        for members in prompt_groups:  # a prompt cluster moves as one unit
            for member in members[1:]:
                groups.union(members[0], member)
        first_rows = self.first_rows
        for row, text in enumerate(self.text_codes.tolist()):  # copies of one text
            groups.union(int(first_rows[text]), row)
        for a, b in zip(*(rows.tolist() for rows in self.corpus_pairs()), strict=True):
            groups.union(a, b)
        links: list[tuple[int, int, Scope]] = []
        for members in groups.groups():
            if len(set(self.prompt_codes[members].tolist())) < 2:
                continue
            eligible = [m for m in members if m not in prompt_marked]
            representative = min(eligible, key=self.rank)
            links.extend((m, representative, "corpus") for m in eligible if m != representative)
        return links

    def marks(self, links: list[tuple[int, int, Scope]]) -> list[DuplicateMark]:
        if not links:
            return []
        members = np.array([m for m, _, _ in links])
        representatives = np.array([r for _, r, _ in links])
        sims = np.einsum("ij,ij->i", self.vectors[members], self.vectors[representatives])
        same_text = self.text_codes[members] == self.text_codes[representatives]
        # float32 dot products of unit vectors can stray just outside [-1, 1].
        sims = np.where(same_text, 1.0, np.clip(sims, -1.0, 1.0))
        marks = [
            DuplicateMark(
                candidate_id=self.candidates[m].id,
                representative_id=self.candidates[r].id,
                similarity=float(s),
                scope=scope,
            )
            for (m, r, scope), s in zip(links, sims.tolist(), strict=True)
        ]
        return sorted(marks, key=lambda mark: mark.candidate_id)
