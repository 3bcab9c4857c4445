"""Features of candidates, computed once per run and shared by every scorer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from traitforge.schemas import Candidate, prompt_text


@dataclass
class CandidateFeatures:
    """Aligned rows: candidate i has prompt_vectors[i] and response_vectors[i].

    Linguistic features are computed on first use only, because spaCy is the slowest part.
    """

    candidates: Sequence[Candidate]
    prompt_vectors: np.ndarray
    response_vectors: np.ndarray
    embedding_model: str
    linguistic_featurizer: Any = None  # LinguisticFeaturizer, created by the caller
    _linguistic: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.index = {c.id: i for i, c in enumerate(self.candidates)}

    def subset(self, ids: Sequence[str]) -> CandidateFeatures:
        rows = [self.index[i] for i in ids]
        part = CandidateFeatures(
            candidates=[self.candidates[r] for r in rows],
            prompt_vectors=self.prompt_vectors[rows],
            response_vectors=self.response_vectors[rows],
            embedding_model=self.embedding_model,
            linguistic_featurizer=self.linguistic_featurizer,
        )
        if self._linguistic is not None:
            part._linguistic = self._linguistic[rows]
        return part

    @property
    def linguistic(self) -> np.ndarray:
        if self._linguistic is None:
            if self.linguistic_featurizer is None:
                raise RuntimeError("no linguistic featurizer was given to CandidateFeatures")
            self._linguistic = self.linguistic_featurizer.features(
                [c.response for c in self.candidates]
            )
        return self._linguistic


def embedding_pair_features(features: CandidateFeatures) -> np.ndarray:
    """Prompt, response and their elementwise product: whether an answer is true depends on
    the question, and the product lets a linear model see how the two relate."""
    p, r = features.prompt_vectors, features.response_vectors
    return np.hstack([p, r, p * r]).astype(np.float32)


def linguistic_features(features: CandidateFeatures) -> np.ndarray:
    return features.linguistic


FEATURIZERS: dict[str, Callable[[CandidateFeatures], np.ndarray]] = {
    "embedding-pair": embedding_pair_features,
    "linguistic": linguistic_features,
}


def prompt_texts(candidates: Sequence[Candidate]) -> list[str]:
    return [prompt_text(c.prompt) for c in candidates]
