"""`reward-model.v1`: a trained reward model as a curation scorer, for the next round.

`traitforge score` points the workspace at a trained folder (W/reward/reward-model.json)
and scores every candidate (`score_candidates`); the loop only points, and the next round's
`curate` scores what it selects from. Curation finds this scorer in its registry under its
key; it never imports `reward`. Rewards are cached per model and candidate in a small SQLite
file beside the pointer, so the next `curate` only scores candidates that are new.

Selection reads a probability per candidate: sigmoid of the reward's z-score in the pool, for
each trait. Two candidates with a reward margin near zero get close probabilities, which the
selector treats as an uncertain pair; disagreement between this scorer and the trait
classifiers adds to the uncertainty.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.curation.scorers import CandidateFeatures, register_scorer
from traitforge.reward.model import MANIFEST, RewardModelSet, read_manifest
from traitforge.reward.pairs import as_reward_prompt
from traitforge.schemas import Scores
from traitforge.workspace import Store, Workspace
from traitforge.workspace.files import atomic_write_text

KEY = "reward-model.v1"
POINTER = "reward-model.json"
CACHE = "reward-scores.sqlite"


def point_to_model(folder: Path, model: Path) -> dict[str, Any]:
    """Record in `folder` (W/reward/) which trained model scores this workspace's
    candidates from now on."""
    manifest = read_manifest(model)  # fails clearly if `model` is not a trained folder
    pointer = {"model": str(model.resolve()), "fingerprint": model_fingerprint(model)}
    if manifest.get("kind") == "set":
        pointer["traits"] = sorted(manifest["members"])
    else:
        pointer["traits"] = manifest.get("traits", [])
    atomic_write_text(folder / POINTER, json.dumps(pointer, indent=2) + "\n")
    return pointer


def pointer_file(folder: Path) -> Path:
    """The pointer in `folder` (W/reward/); a workspace that pointed at a model before that
    folder existed keeps it in W/classifiers/, read until a model is pointed to again."""
    legacy = folder.parent / Workspace.CLASSIFIERS_DIR / POINTER
    current = folder / POINTER
    return legacy if not current.is_file() and legacy.is_file() else current


def has_model(folder: Path) -> bool:
    """Whether the workspace has been pointed at a reward model."""
    return pointer_file(folder).is_file()


def model_fingerprint(model: Path) -> str:
    """Changes whenever the folder is retrained: manifests record each training run."""
    digest = hashlib.sha256()
    for path in sorted(model.rglob(MANIFEST)):
        digest.update(path.relative_to(model).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class RewardScorer:
    key = KEY

    def __init__(self, folder: Path, vectors: Path | None = None) -> None:
        self.folder = folder
        self.vectors = vectors  # the workspace's embedding cache, for frozen-linear models
        path = pointer_file(folder)
        self.pointer = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        self._models: RewardModelSet | None = None

    def trained_traits(self) -> list[str]:
        return list(self.pointer["traits"]) if self.pointer else []

    def score(self, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]:
        """Scores for `traits` the model covers; nothing before a model is pointed to."""
        wanted = [t for t in traits if t in self.trained_traits()]
        if not self.pointer or not wanted or not features.candidates:
            return []
        scores = []
        for trait in wanted:
            candidates = [c for c in features.candidates if _about(c, trait)]
            if not candidates:
                continue
            values = self._rewards(candidates, trait)
            probabilities = selection_probabilities(values)
            scores += [
                Scores(
                    candidate_id=c.id,
                    scorer=KEY,
                    trait=trait,
                    score=round(float(value), 6),
                    probability=round(float(p), 6),
                )
                for c, value, p in zip(candidates, values, probabilities, strict=True)
            ]
        return scores

    def _rewards(self, candidates: Sequence[Any], trait: str) -> np.ndarray:
        assert self.pointer is not None
        fingerprint = self.pointer["fingerprint"]
        self.folder.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.folder / CACHE)) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS rewards (model TEXT, candidate TEXT, trait TEXT, "
                "reward REAL, PRIMARY KEY (model, candidate, trait))"
            )
            cached = dict(
                db.execute(
                    "SELECT candidate, reward FROM rewards WHERE model = ? AND trait = ?",
                    (fingerprint, trait),
                )
            )
            missing = [c for c in candidates if c.id not in cached]
            if missing:
                if self._models is None:
                    self._models = RewardModelSet(Path(self.pointer["model"]), vectors=self.vectors)
                values = self._models.rewards(
                    [as_reward_prompt(c.prompt) for c in missing],
                    [c.response for c in missing],
                    [trait] * len(missing),
                )
                rows = [
                    (fingerprint, c.id, trait, float(v))
                    for c, v in zip(missing, values, strict=True)
                ]
                with db:  # one transaction: a killed run keeps whole traits only
                    db.executemany("INSERT OR REPLACE INTO rewards VALUES (?, ?, ?, ?)", rows)
                cached.update({c.id: float(v) for c, v in zip(missing, values, strict=True)})
        return np.array([cached[c.id] for c in candidates], dtype=np.float64)


def selection_probabilities(rewards: np.ndarray) -> np.ndarray:
    """sigmoid of each reward's z-score within the pool. Reward scales differ between models
    (a model trained on few pairs moves its rewards by hundredths); the z-score puts every
    model on the scale of the classifiers' probabilities, so a pair with a margin near zero
    *relative to the pool's spread* reads as uncertain."""
    spread = float(rewards.std()) or 1.0
    return 1.0 / (1.0 + np.exp(-(rewards - rewards.mean()) / spread))


def _about(candidate: Any, trait: str) -> bool:
    """Whether a candidate's prompt is about `trait`: its data has gold for it, or for none
    (as selection decides which traits a prompt is asked about)."""
    return not candidate.gold or trait in candidate.gold


@dataclass
class ScoreResult:
    model: Path
    candidates: int
    scores: dict[str, int]  # trait -> candidates scored


def score_candidates(
    store: Store, traits: Sequence[str], folder: Path, model: Path, vectors: Path | None = None
) -> ScoreResult:
    """Point `folder` (W/reward/) at `model` and store its reward for every candidate of
    `store` on `traits`; a later `curate` selects with them. `vectors`: the embedding cache."""
    pointer = point_to_model(folder, model)
    candidates = list(store.candidates())
    empty = np.zeros((len(candidates), 0), dtype=np.float32)
    features = CandidateFeatures(candidates, empty, empty, embedding_model="")
    scores = RewardScorer(folder, vectors).score(features, traits)
    with store.transaction():
        store.put_scores(scores)
    counts = Counter(s.trait for s in scores)
    return ScoreResult(Path(pointer["model"]), len(candidates), dict(counts))


# The registry hands every scorer the workspace's classifiers folder; this one keeps its
# pointer and cache in the reward folder beside it.
register_scorer(
    KEY,
    lambda classifiers: RewardScorer(
        classifiers.parent / Workspace.REWARD_DIR, classifiers.parent / Workspace.EMBEDDING_CACHE
    ),
)
