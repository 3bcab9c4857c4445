"""Reward models on a frozen backbone (reward.method: frozen-linear).

r(prompt, response) = w . phi, phi = [response, prompt * response] on the normalized sentence
vectors of the backbone: the features the acquisition ensemble reads (curation/ensemble.py),
the same vectors curation has cached. w is fitted by L2 logistic regression on
phi(chosen) - phi(rejected) (Bradley-Terry with a linear reward). Nothing is fine-tuned:
fitting takes well under a second on a CPU and scoring is a dot product, so a round's models,
evaluation and the next round's scoring of every open candidate cost seconds, not minutes.
A fine-tuned backbone can learn what the vectors do not hold; bench/active_learning.py's
model is this one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.ensemble import features
from traitforge.curation.generation.local import PACKAGED_MODEL
from traitforge.errors import ConfigError
from traitforge.reward.encoding import LengthReport
from traitforge.reward.pairs import Prompt, RewardPair, traits_of
from traitforge.reward.training import SHARED, FitResult, Log
from traitforge.schemas import EmbeddingConfig, RewardConfig
from traitforge.workspace.files import REWARD_MANIFEST

METHOD = "frozen-linear"
WEIGHTS_FILE = "linear-reward.npy"
# Inverse L2 strength per pair: the C bench/active_learning.py picked for these features on a
# validation split of an unused seed (never on test questions), as curation/ensemble.py uses.
C = 0.3


def prompt_vector_text(prompt: Prompt) -> str:
    """A prompt as curation embeds it (schemas.prompt_text), so its cached vector is found."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{role}: {content}" for role, content in prompt)


class FrozenFeatures:
    """phi of (prompt, response) texts from the backbone's vectors, read from and added to
    the embedding cache `vectors` (a workspace's embeddings.sqlite) when given."""

    def __init__(self, backbone: str, vectors: Path | None = None) -> None:
        if backbone == PACKAGED_MODEL:
            raise ConfigError(
                f"reward.method 'frozen-linear' reads sentence vectors; {backbone!r} is a "
                "generator. Use backbone 'all-MiniLM-L6-v2' or another sentence-transformers "
                "model, or reward.method 'fine-tune'"
            )
        self.backbone = backbone
        self._cache = EmbeddingCache(vectors) if vectors is not None else None
        self.embedder = Embedder(EmbeddingConfig(model=backbone), self._cache)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()

    def __call__(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> np.ndarray:
        prompt_vectors = self.embedder.embed([prompt_vector_text(p) for p in prompts])
        return features(prompt_vectors, self.embedder.embed(list(responses)))

    def lengths(self, pairs: Sequence[RewardPair]) -> LengthReport:
        """Pairs with a text past what the backbone reads (it keeps the first tokens)."""
        limit = int(self.embedder.model.max_seq_length)
        texts = [
            [prompt_vector_text(p.prompt) for p in pairs],
            [p.chosen for p in pairs],
            [p.rejected for p in pairs],
        ]
        counts = np.array([self.embedder.token_counts(t) for t in texts]).max(axis=0)
        report = LengthReport(limit, "truncate", len(pairs), int((counts > limit).sum()))
        report.longest = int(counts.max()) if len(counts) else 0
        for pair, count in zip(pairs, counts, strict=True):
            if count > limit:
                key = pair.trait or "(no trait)"
                report.over_by_trait[key] = report.over_by_trait.get(key, 0) + 1
        return report


def length_line(report: LengthReport) -> str:
    """What the backbone's vectors leave out: neither reward.max_length nor reward.overflow
    applies, as the backbone reads the first tokens of every text."""
    read = f"the {report.max_length} tokens the backbone reads"
    if not report.over:
        return f"all {report.pairs} pairs fit in {read} (longest {report.longest})"
    return (
        f"{report.over} of {report.pairs} pairs have a text longer than {read} (longest "
        f"{report.longest}); their vectors see its first {report.max_length}"
    )


def fit_weights(chosen: np.ndarray, rejected: np.ndarray, c: float = C) -> tuple[np.ndarray, int]:
    """(w, solver iterations): L2 logistic regression of "chosen wins" on phi differences, each
    pair in both orientations (the objective C was picked for), without an intercept, as only
    differences of rewards are learnt."""
    from sklearn.linear_model import LogisticRegression

    difference = chosen - rejected
    if not len(difference):
        return np.zeros(chosen.shape[1]), 0
    x = np.vstack([difference, -difference])
    y = np.r_[np.ones(len(difference)), np.zeros(len(difference))]
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(x, y)
    return model.coef_[0].astype(np.float64), int(model.n_iter_[0])


def fit_linear(
    pairs: Sequence[RewardPair],
    config: RewardConfig,
    folder: Path,
    name: str,
    log: Log,
    provenance: dict[str, Any] | None,
    vectors: Path | None,
) -> FitResult:
    """Fit one frozen-linear model on `pairs` and save it (weights, manifest) to `folder`."""
    phi = FrozenFeatures(config.backbone, vectors)
    try:
        lengths = phi.lengths(pairs)
        log(f"{name}: {length_line(lengths)}")
        prompts = [p.prompt for p in pairs]
        chosen = phi(prompts, [p.chosen for p in pairs])
        rejected = phi(prompts, [p.rejected for p in pairs])
        backend = phi.embedder.cache_model
    finally:
        phi.close()
    started = time.perf_counter()
    weights, iterations = fit_weights(chosen, rejected)
    seconds = time.perf_counter() - started
    margin = (chosen - rejected) @ weights
    loss = float(np.mean(np.logaddexp(0.0, -margin)))
    result = FitResult(
        name=name,
        folder=folder,
        pairs=len(pairs),
        length=lengths,
        seconds=seconds,
        train_loss=loss,
        device="cpu",
        precision="fp64",
        epochs=1.0,
        steps=iterations,
        method=METHOD,
    )
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / WEIGHTS_FILE, weights)
    manifest = {
        "kind": "model",
        "method": METHOD,
        "trait": None if name == SHARED else name,
        "traits": traits_of(pairs),
        "trait_prefix": False,  # the prompt's vector tells a shared model the domains apart
        "backbone": config.backbone,
        "vectors": backend,
        "features": "[response, prompt * response]",
        "config": config.model_dump(mode="json"),
        "training": result.as_dict(),
        "provenance": provenance or {},
    }
    (folder / REWARD_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log(f"{name}: linear reward on frozen {backend} vectors, fitted in {seconds:.2f} s")
    return result


class LinearRewardModel:
    """A saved frozen-linear model: rewards for (prompt, response) texts."""

    def __init__(self, folder: Path, manifest: dict[str, Any], vectors: Path | None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.weights = np.load(folder / WEIGHTS_FILE)
        self.features = FrozenFeatures(manifest["backbone"], vectors)

    @property
    def name(self) -> str:
        return self.manifest.get("trait") or "shared"

    def rewards(
        self,
        prompts: Sequence[Prompt],
        responses: Sequence[str],
        traits: Sequence[str | None] | None = None,
    ) -> np.ndarray:
        if not prompts:
            return np.zeros(0, dtype=np.float64)
        return self.features(prompts, responses) @ self.weights
