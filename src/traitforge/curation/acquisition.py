"""How much an answer to a candidate group would teach: the score epistemic strategies rank by.

With answers already collected, an ensemble of tie-aware preference models on frozen
embeddings (`ensemble.py`) is fitted to them, and a pair's score is BALD: how much its answer
would tell about which member is right. A pair the members agree is a tie (learnt from past
ties), or agree on, scores low. Before any answer (round 1) there is no ensemble: the score is
the trait classifiers' own uncertainty about the pair's direction, weighted by the chance that
the pair is decisive at all, so two candidates the classifiers find alike on the trait (both
good or both bad: a likely tie) score low there as well. In both cases the classifiers' view
that the two sides look alike lowers the score: P(tie) = p_a p_b + (1 - p_a)(1 - p_b) for
probabilities p that each side has the trait.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np

from traitforge.curation.ensemble import (
    Comparison,
    PreferenceEnsemble,
    bald,
    features,
)

Kind = Literal["bald", "decisive"]


@dataclass(frozen=True)
class Information:
    """One group's acquisition score, and the parts it is made of (for the task's detail)."""

    score: float
    epistemic: float  # BALD or the direction's entropy (ensemble); without, the classifiers'
    tie: float  # the predicted probability that the answer is a tie


class Acquisition:
    """Scores candidate groups; `source` says what the scores come from."""

    def __init__(
        self,
        probability: Mapping[str, float],
        ensemble: PreferenceEnsemble | None,
        phi: Mapping[str, np.ndarray],
        answers: int,
        scorers: Sequence[str] = (),
    ) -> None:
        self.probability = probability  # candidate -> classifier P(trait), when scored
        self.ensemble = ensemble
        ids = sorted(phi)
        self.row = {c: i for i, c in enumerate(ids)}
        # (candidates, members): every member's reward of every candidate, computed once
        self.rewards = (
            ensemble.rewards(np.stack([phi[c] for c in ids]))
            if ensemble is not None and ids
            else None
        )
        self.source = (
            f"ensemble of {len(ensemble.thresholds)} models on {answers} answered comparisons"
            if ensemble is not None
            else f"trait scores of {', '.join(scorers) or 'no scorer'} (no answers yet)"
        )

    @classmethod
    def build(
        cls,
        answers: Sequence[Comparison],
        prompt_of: Mapping[str, str],
        prompt_vectors: Mapping[str, np.ndarray],
        response_vectors: Mapping[str, np.ndarray],
        probability: Mapping[str, float],
        seed: int,
        scorers: Sequence[str] = (),
    ) -> Acquisition:
        ids = sorted(response_vectors)
        phi: dict[str, np.ndarray] = {}
        if ids:
            rows = features(
                np.stack([prompt_vectors[prompt_of[c]] for c in ids]),
                np.stack([response_vectors[c] for c in ids]),
            )
            phi = dict(zip(ids, rows, strict=True))
        ensemble = PreferenceEnsemble.fit(answers, phi, seed=seed) if answers else None
        return cls(probability, ensemble, phi, len(answers), scorers)

    def score(self, groups: Sequence[tuple[str, ...]], kind: Kind = "bald") -> list[Information]:
        """Per group, the mean over its candidate pairs. `kind` 'bald': the members'
        disagreement; 'decisive': the uncertainty of the ensemble's mean about the direction
        of an answer that is not a tie (margin sampling that knows about ties)."""
        pairs = sorted({p for g in groups for p in combinations(g, 2)})
        if not pairs:
            return []
        epistemic = self._epistemic(pairs, kind)
        tie = self._tie(pairs, epistemic[1])
        per_pair = {p: (e, t) for p, e, t in zip(pairs, epistemic[0], tie, strict=True)}
        out = []
        for group in groups:
            values = [per_pair[p] for p in combinations(group, 2)]
            e = float(np.mean([v[0] for v in values]))
            t = float(np.mean([v[1] for v in values]))
            out.append(Information(score=round(e * (1.0 - t), 9), epistemic=e, tie=t))
        return out

    def _epistemic(self, pairs: list[tuple[str, str]], kind: Kind) -> tuple[np.ndarray, np.ndarray]:
        """(score before the tie term, model tie probability) per pair."""
        if self.ensemble is None or self.rewards is None:
            return self._classifier_uncertainty(pairs), np.zeros(len(pairs))
        first = self.rewards[[self.row[a] for a, _ in pairs]]
        second = self.rewards[[self.row[b] for _, b in pairs]]
        probabilities = self.ensemble.outcome_probabilities(first, second)
        mean = probabilities.mean(axis=1)
        if kind == "bald":
            return bald(probabilities), mean[:, 2]
        decisive = mean[:, 0] + mean[:, 1]
        direction = np.divide(
            mean[:, 0], decisive, out=np.full(len(pairs), 0.5), where=decisive > 0
        )
        return np.array([_bits(q) for q in direction]), mean[:, 2]

    def _classifier_uncertainty(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """The entropy (bits) of the pair's direction, given that the answer is decisive
        (how likely it is to be decisive at all is the tie term)."""
        out = np.zeros(len(pairs))
        for i, (a, b) in enumerate(pairs):
            pa, pb = self.probability.get(a, 0.5), self.probability.get(b, 0.5)
            first, second = pa * (1 - pb), pb * (1 - pa)
            if first + second > 0:
                out[i] = _bits(first / (first + second))
        return out

    def _tie(self, pairs: list[tuple[str, str]], model_tie: np.ndarray) -> np.ndarray:
        """The larger of the ensemble's and the classifiers' tie probability."""
        alike = np.array(
            [
                _alike(self.probability[a], self.probability[b])
                if a in self.probability and b in self.probability
                else 0.0
                for a, b in pairs
            ]
        )
        return np.maximum(model_tie, alike)


def _alike(pa: float, pb: float) -> float:
    return pa * pb + (1 - pa) * (1 - pb)


def _bits(q: float) -> float:
    if q <= 0.0 or q >= 1.0:
        return 0.0
    return float(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))
