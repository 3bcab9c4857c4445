"""Calibrated per-trait classifiers on candidate features, with cross-validated metrics."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.curation.scorers.features import FEATURIZERS, CandidateFeatures
from traitforge.errors import TraitforgeError
from traitforge.schemas import Scores
from traitforge.workspace.files import atomic_write_text

MIN_EXAMPLES_PER_CLASS = 10
FOLDS = 5


@dataclass(frozen=True)
class Example:
    candidate_id: str
    label: int  # 1: shows the trait (preferred), 0: does not


@dataclass(frozen=True)
class TrainResult:
    trait: str
    examples: int
    positives: int
    metrics: dict[str, float]
    path: Path


def _base_model(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Strong regularisation: features are wide (1152 for embeddings) and rounds are small.
    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.05, max_iter=2000, random_state=seed)
    )


@dataclass
class CalibratedModel:
    """A linear model plus Platt scaling fitted on its out-of-fold decision values: calibrated
    without the extra inner cross-validation that CalibratedClassifierCV would fit."""

    base: Any
    calibrator: Any

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.calibrator.predict_proba(self.base.decision_function(x)[:, None])[:, 1]


class TraitClassifier:
    """A versioned scorer key + a featurizer; one calibrated model per trait on disk."""

    def __init__(self, key: str, featurizer: str, artifacts: Path) -> None:
        self.key = key
        self.featurizer = featurizer
        self.folder = artifacts / key

    def path(self, trait: str) -> Path:
        return self.folder / f"{trait}.joblib"

    def trained_traits(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.joblib")) if self.folder.exists() else []

    def train(
        self, trait: str, features: CandidateFeatures, examples: Sequence[Example], seed: int = 0
    ) -> TrainResult:
        """Cross-validate by prompt (no prompt in both train and validation folds), then fit
        on everything and save the model with its metrics."""
        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score
        from sklearn.model_selection import GroupKFold, cross_val_predict

        labels = np.array([e.label for e in examples])
        positives = int(labels.sum())
        if min(positives, len(labels) - positives) < MIN_EXAMPLES_PER_CLASS:
            raise TraitforgeError(
                f"cannot train {self.key} for '{trait}': {positives} positive and "
                f"{len(labels) - positives} negative examples; need at least "
                f"{MIN_EXAMPLES_PER_CLASS} of each. Ingest data with gold labels for '{trait}' "
                "or annotate more tasks"
            )
        part = features.subset([e.candidate_id for e in examples])
        x = FEATURIZERS[self.featurizer](part)
        groups = [c.prompt_id for c in part.candidates]
        folds = min(FOLDS, len(set(groups)))
        decision = cross_val_predict(
            _base_model(seed),
            x,
            labels,
            groups=groups,
            cv=GroupKFold(n_splits=folds),
            method="decision_function",
        )
        calibrator = LogisticRegression().fit(decision[:, None], labels)
        out_of_fold = calibrator.predict_proba(decision[:, None])[:, 1]
        metrics = {
            "auroc": round(float(roc_auc_score(labels, out_of_fold)), 4),
            "accuracy": round(float(accuracy_score(labels, out_of_fold >= 0.5)), 4),
            "brier": round(float(brier_score_loss(labels, out_of_fold)), 4),
            "folds": folds,
        }
        model = CalibratedModel(_base_model(seed).fit(x, labels), calibrator)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path(trait).with_suffix(".joblib.tmp")
        joblib.dump(
            {
                "model": model,
                "featurizer": self.featurizer,
                "embedding_model": features.embedding_model,
            },
            tmp,
        )
        tmp.replace(self.path(trait))
        record = {
            "scorer": self.key,
            "trait": trait,
            "examples": len(labels),
            "positives": positives,
            "cross_validated": metrics,
        }
        atomic_write_text(
            self.folder / f"{trait}.metrics.json",
            json.dumps(record, indent=2, sort_keys=True) + "\n",
        )
        return TrainResult(trait, len(labels), positives, metrics, self.path(trait))

    def score(self, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]:
        import joblib

        scores: list[Scores] = []
        for trait in traits:
            if not self.path(trait).exists():
                continue
            saved = joblib.load(self.path(trait))
            if saved["embedding_model"] != features.embedding_model and self.featurizer.startswith(
                "embedding"
            ):
                raise TraitforgeError(
                    f"{self.key} for '{trait}' was trained on {saved['embedding_model']} "
                    f"embeddings but this run uses {features.embedding_model}; retrain it with "
                    "`traitforge classifiers train`"
                )
            probabilities = saved["model"].predict_proba(FEATURIZERS[self.featurizer](features))
            scores += [
                Scores(
                    candidate_id=c.id,
                    scorer=self.key,
                    trait=trait,
                    score=round(float(p), 6),
                    probability=round(float(p), 6),
                    embedding_ref=features.embedding_model,
                )
                for c, p in zip(features.candidates, probabilities, strict=True)
            ]
        return scores

    def metrics(self, trait: str) -> dict[str, Any] | None:
        path = self.folder / f"{trait}.metrics.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
