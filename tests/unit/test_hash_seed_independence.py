"""Selection, simulated annotators and pair building must not depend on PYTHONHASHSEED.

String hashing is randomized per process, so iterating a set of ids (or a dict built from
one) gives another order in every run. Two fresh clones of one commit must select the same
tasks, get the same simulated answers and export the same pairs: each of those is run here
in two processes with different hash seeds, and their digests must match.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from traitforge.annotators.records import PREFERENCE, DatasetLayout, presented_order
from traitforge.annotators.simulated import SimulatedAnnotator, assignees
from traitforge.curation.ensemble import Comparison
from traitforge.curation.selection import STRATEGIES, PairSelector, SelectionInputs
from traitforge.exports.exporter import build_pairs
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    Judgement,
    ProjectConfig,
    RankedCandidate,
    Scores,
)
from traitforge.workspace import Store
from traitforge.workspace.config_file import default_config

ROOT = Path(__file__).resolve().parents[2]
USERS = ("sim-1", "sim-2", "sim-3")


def _candidates(config: ProjectConfig, rng: random.Random) -> list[Candidate]:
    traits = [t.name for t in config.traits]
    out = []
    for p in range(30):
        trait = traits[p % len(traits)]
        for r in range(4):
            gold = {trait: float(rng.random() < 0.5)} if p % 5 else {}
            response = f"answer {p}-{r} " + "x" * rng.randint(0, 9)
            out.append(Candidate(prompt=f"prompt {p}?", response=response, source="t", gold=gold))
    return out


def _with_strategy(config: ProjectConfig, strategy: str) -> ProjectConfig:
    selection = config.curation.selection.model_copy(update={"strategy": strategy})
    curation = config.curation.model_copy(update={"selection": selection})
    return config.model_copy(update={"curation": curation})


def _with_method(config: ProjectConfig, method: str) -> ProjectConfig:
    aggregation = config.annotation.aggregation.model_copy(update={"method": method})
    annotation = config.annotation.model_copy(update={"aggregation": aggregation})
    return config.model_copy(update={"annotation": annotation})


def _judgements(
    config: ProjectConfig, tasks: list[ComparisonTask], candidates: list[Candidate]
) -> list[Judgement]:
    """What the simulated annotators answer, as rankings (the rest of a pull is I/O)."""
    by_id = {c.id: c for c in candidates}
    traits = {t.name: t for t in config.traits}
    out = []
    for task in tasks:
        layout = DatasetLayout.for_tasks("d", [task])
        order = presented_order(task)
        for user in assignees(task.id, USERS, 2, config.annotation.simulation.seed):
            annotator = SimulatedAnnotator(user, config.annotation.simulation, traits)
            values, _ = annotator.answer(task, order, by_id, layout)
            label = values[PREFERENCE]["value"]
            ranks = {"A": (1, 2), "B": (2, 1)}.get(label, (1, 1))  # else a tie
            ranking = [
                RankedCandidate(candidate_id=c, rank=r) for c, r in zip(order, ranks, strict=True)
            ]
            out.append(
                Judgement(task_id=task.id, annotator_id=user, ranking=ranking, simulated=True)
            )
    return out


def digest() -> str:
    """One hash of every strategy's two rounds of tasks, the simulated answers to them and
    the pairs each aggregation method builds from those answers."""
    config = default_config()
    rng = random.Random(7)
    candidates = _candidates(config, rng)
    vectors = np.random.default_rng(3).normal(size=(len(candidates) + 30, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    prompts = sorted({c.prompt_id for c in candidates})
    prompt_vectors = dict(zip(prompts, vectors[: len(prompts)], strict=True))
    response_vectors = dict(zip((c.id for c in candidates), vectors[30:], strict=True))
    scores = [
        Scores(candidate_id=c.id, scorer=s, trait=t.name, score=0.0, probability=rng.random())
        for c in candidates
        for s in ("a", "b")
        for t in config.traits
    ]
    seen: dict[str, object] = {}
    answered: list[ComparisonTask] = []
    for strategy in sorted(STRATEGIES):
        project = _with_strategy(config, strategy)
        inputs = SelectionInputs(candidates, scores, prompt_vectors, response_vectors)
        first = PairSelector(project).process(inputs, 12, 1)
        answers = [Comparison(*t.candidate_ids[:2], rng.choice((0, 1, 2))) for t in first]
        later = SelectionInputs(
            candidates, scores, prompt_vectors, response_vectors, first, answers
        )
        second = PairSelector(project).process(later, 12, 2)
        seen[strategy] = [t.id for t in first + second]
        answered = first + second
    judgements = _judgements(config, answered, candidates)
    seen["judgements"] = [j.model_dump(mode="json") for j in judgements]
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "s.sqlite") as store:
        with store.transaction():
            store.add_candidates(candidates)
            store.add_tasks(answered)
            store.put_judgements(judgements)
        for method in ("majority", "bradley-terry", "noisy-bradley-terry"):
            pairs, drops, _ = build_pairs(store, _with_method(config, method))
            seen[method] = [p.model_dump(mode="json") for p in pairs] + [sorted(drops.items())]
    return hashlib.sha256(json.dumps(seen, sort_keys=True).encode()).hexdigest()


def _digest_under(hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    code = "from tests.unit.test_hash_seed_independence import digest; print(digest())"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_selection_answers_and_pairs_do_not_depend_on_the_hash_seed():
    assert _digest_under("1") == _digest_under("2")
