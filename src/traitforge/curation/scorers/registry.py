"""Scorers under versioned keys: config files name keys, never import paths.

Later stages plug in here: the reward stage registers 'reward-model.v1' so that a trained
reward model scores the next round's candidates, without curation importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from traitforge.curation.scorers.classifier import TraitClassifier
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.errors import ConfigError
from traitforge.schemas import Scores


class Scorer(Protocol):
    key: str

    def trained_traits(self) -> list[str]: ...

    def score(self, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]: ...


ScorerFactory = Callable[[Path], Scorer]  # gets the workspace's artifacts folder

_REGISTRY: dict[str, ScorerFactory] = {}


def register_scorer(key: str, factory: ScorerFactory) -> None:
    if not key.rsplit(".", 1)[-1].startswith("v"):
        raise ValueError(f"scorer keys carry a version, like 'my-scorer.v1'; got {key!r}")
    _REGISTRY[key] = factory


def registered_scorers() -> list[str]:
    return sorted(_REGISTRY)


def get_scorer(key: str, artifacts: Path) -> Scorer:
    try:
        factory = _REGISTRY[key]
    except KeyError:
        raise ConfigError(
            f"unknown scorer {key!r} in curation.scorers; registered: {registered_scorers()}. "
            "Fix the key in the config (keys are versioned, e.g. 'embedding-logreg.v1')"
        ) from None
    return factory(artifacts)


register_scorer(
    "embedding-logreg.v1", lambda a: TraitClassifier("embedding-logreg.v1", "embedding-pair", a)
)
register_scorer("linguistic.v1", lambda a: TraitClassifier("linguistic.v1", "linguistic", a))
