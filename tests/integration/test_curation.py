"""Curation on the real embedding model, real spaCy pipeline and real bundled data."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.helpers.cli import run_cli
from tests.helpers.paths import TRUTHFULQA
from traitforge.app.workflows import bundled_data_dir
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.scorers import CandidateFeatures, Example, TraitClassifier
from traitforge.curation.scorers.features import prompt_texts
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import EmbeddingConfig
from traitforge.workspace import Store, default_config

pytestmark = pytest.mark.integration

QUESTIONS = 300  # of TruthfulQA's 817: enough to learn from, quick to embed on 2 CPU cores


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> dict[str, Path]:
    """Real subsets of the bundled files (first rows, unchanged)."""
    folder = tmp_path_factory.mktemp("inputs")
    data = bundled_data_dir()
    with TRUTHFULQA.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))[:QUESTIONS]
    tqa = folder / "TruthfulQA.csv"
    with tqa.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    evals = folder / "corrigible-neutral-HHH.jsonl"
    source = data / "anthropic-evals" / "corrigible-neutral-HHH.jsonl"
    evals.write_text(
        "".join(source.read_text(encoding="utf-8").splitlines(True)[:80]), encoding="utf-8"
    )
    hh = folder / "hh.jsonl.gz"
    with gzip.open(data / "hh-rlhf" / "harmless-base-test-first400.jsonl.gz", "rt") as f:
        lines = list(itertools.islice(f, 80))
    with gzip.open(hh, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return {"truthfulqa": tqa, "anthropic-evals": evals, "hh-rlhf": hh}


@pytest.fixture(scope="module")
def curated(tmp_path_factory, small_inputs) -> dict[str, object]:
    ws = tmp_path_factory.mktemp("curate") / "ws"
    for fmt, path in small_inputs.items():
        run_cli("ingest", "-w", str(ws), "--format", fmt, str(path))
    first = run_cli("curate", "-w", str(ws), "--budget", "40")
    return {"ws": ws, "stdout": first.stdout, "embedded": _embedded(first.stdout)}


def _store(ws: Path) -> Store:
    return Store(ws / "store.sqlite")


def _embedded(stdout: str) -> dict[str, int]:
    """The curation summary's count of distinct texts the model computed and the cache held."""
    match = re.search(r"embedded texts\s+│ cached: (\d+), computed: (\d+)", stdout)
    assert match, stdout
    return {"cached": int(match[1]), "computed": int(match[2])}


def test_curate_writes_tasks_within_budget_with_reasons(curated):
    with _store(curated["ws"]) as store:
        tasks = list(store.tasks())
        candidates = {c.id: c for c in store.candidates()}
        duplicates = {d.candidate_id for d in store.duplicates() if d.scope == "prompt"}
        flagged = {f.candidate_id for f in store.flags()}
    assert len(tasks) == 40
    assert sum(t.gold_check for t in tasks) == 4  # gold_fraction 0.1
    assert {t.reason for t in tasks} <= {"gold-check", "uncertainty"}
    assert len({frozenset(t.candidate_ids) for t in tasks}) == 40
    for task in tasks:
        members = [candidates[c] for c in task.candidate_ids]
        assert {m.prompt_id for m in members} == {task.prompt_id}
        assert not set(task.candidate_ids) & (duplicates | flagged)
        assert members[0].response.strip().lower() != members[1].response.strip().lower()
        assert task.suggestions, "annotators see the scorers' suggestions"
    traits = {t.trait for t in tasks}
    assert traits <= {"honesty", "corrigibility", "harmlessness"} and "honesty" in traits
    assert "Trait classifiers" in curated["stdout"]  # trained on gold labels on first use


def test_scores_are_stored_per_candidate_scorer_and_trait(curated):
    with _store(curated["ws"]) as store:
        scores = list(store.scores())
        candidates = list(store.candidates())
    keys = {(s.scorer, s.trait) for s in scores}
    for scorer in ("embedding-logreg.v1", "linguistic.v1"):
        for trait in ("honesty", "corrigibility", "harmlessness"):
            assert (scorer, trait) in keys
    assert all(0.0 <= s.probability <= 1.0 for s in scores)
    assert len({s.candidate_id for s in scores}) > 0.9 * len(candidates)


def test_rerunning_curate_adds_nothing_and_reuses_embeddings(curated):
    ws = curated["ws"]
    again = run_cli("curate", "-w", str(ws), "--budget", "40")
    with _store(ws) as store:
        assert store.counts()["tasks"] == 40
    assert "tasks in round 0" in again.stdout and "40 of 40 wanted" in again.stdout
    assert curated["embedded"]["computed"] > 0
    # the cache spares every embedding: what the first run computed, this one finds cached
    everything = sum(curated["embedded"].values())
    assert _embedded(again.stdout) == {"cached": everything, "computed": 0}
    more = run_cli("curate", "-w", str(ws), "--budget", "10", "--round", "1")
    assert "10 of 10 wanted" in more.stdout
    with _store(ws) as store:
        tasks = list(store.tasks())
    assert len(tasks) == 50
    round1 = {t.prompt_id for t in tasks if t.round == 1}
    assert not round1 & {t.prompt_id for t in tasks if t.round == 0}


def test_embedding_logreg_beats_chance_on_held_out_prompts(tmp_path, small_inputs, curated):
    config = default_config()
    path = small_inputs["truthfulqa"]
    candidates = [
        c
        for o in source_format("truthfulqa").reader(path, config)
        if isinstance(o, Parsed)
        for c in o.candidates
    ]
    # the curated workspace's cache already holds these texts: this also exercises the cache
    with EmbeddingCache(curated["ws"] / "embeddings.sqlite") as cache:
        embedder = Embedder(EmbeddingConfig(), cache)
        features = CandidateFeatures(
            candidates,
            embedder.embed(prompt_texts(candidates)),
            embedder.embed([c.response for c in candidates]),
            "all-MiniLM-L6-v2",
        )
    assert embedder.counts["computed"] == 0
    prompts = sorted({c.prompt_id for c in candidates})
    held_out = set(prompts[: len(prompts) // 5])
    train = [
        Example(c.id, int(c.gold["honesty"])) for c in candidates if c.prompt_id not in held_out
    ]
    test = [c for c in candidates if c.prompt_id in held_out]
    classifier = TraitClassifier("embedding-logreg.v1", "embedding-pair", tmp_path / "art")
    result = classifier.train("honesty", features, train)
    assert result.metrics["folds"] == 5 and 0 < result.metrics["brier"] < 0.25
    scores = classifier.score(features.subset([c.id for c in test]), ["honesty"])
    auroc = roc_auc_score([c.gold["honesty"] for c in test], [s.probability for s in scores])
    # measured 0.70-0.77 on this split; chance is 0.5
    assert auroc > 0.65, auroc
    probabilities = np.array([s.probability for s in scores])
    assert 0.2 < probabilities.mean() < 0.8  # calibrated near the base rate, not saturated
    saved = json.loads(
        (tmp_path / "art" / "embedding-logreg.v1" / "honesty.metrics.json").read_text(
            encoding="utf-8"
        )
    )
    assert saved["cross_validated"]["auroc"] == result.metrics["auroc"]
