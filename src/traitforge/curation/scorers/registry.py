"""Scorers under versioned keys: config files name keys, never import paths.

Later stages plug in here: the reward stage registers 'reward-model.v1' so that a trained
reward model scores the next round's candidates, without curation importing it. Most factories
get the artifacts folder only; one registered with `needs_config=True` (the trait judge, which
reads the trait specs and its own settings) also gets the project config.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from traitforge.curation.scorers.classifier import TraitClassifier
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.judge import KEY as JUDGE_KEY
from traitforge.curation.scorers.judge import TraitJudge
from traitforge.errors import ConfigError
from traitforge.schemas import ProjectConfig, Scores


class Scorer(Protocol):
    key: str

    def trained_traits(self) -> list[str]: ...

    def score(self, features: CandidateFeatures, traits: Sequence[str]) -> list[Scores]: ...


ScorerFactory = Callable[[Path], Scorer]  # gets the workspace's artifacts folder
ConfiguredScorerFactory = Callable[[Path, ProjectConfig], Scorer]  # ... and the project config

_REGISTRY: dict[str, ScorerFactory | ConfiguredScorerFactory] = {}
_NEEDS_CONFIG: set[str] = set()


def register_scorer(
    key: str, factory: ScorerFactory | ConfiguredScorerFactory, *, needs_config: bool = False
) -> None:
    if not key.rsplit(".", 1)[-1].startswith("v"):
        raise ValueError(f"scorer keys carry a version, like 'my-scorer.v1'; got {key!r}")
    _REGISTRY[key] = factory
    if needs_config:
        _NEEDS_CONFIG.add(key)
    else:
        _NEEDS_CONFIG.discard(key)


def registered_scorers() -> list[str]:
    return sorted(_REGISTRY)


def get_scorer(key: str, artifacts: Path, config: ProjectConfig | None = None) -> Scorer:
    try:
        factory = _REGISTRY[key]
    except KeyError:
        raise ConfigError(
            f"unknown scorer {key!r} in curation.scorers; registered: {registered_scorers()}. "
            "Fix the key in the config (keys are versioned, e.g. 'embedding-logreg.v1')"
        ) from None
    if key in _NEEDS_CONFIG:
        if config is None:
            raise ConfigError(f"scorer {key!r} reads the project config, and none was given")
        return factory(artifacts, config)  # type: ignore[call-arg]
    return factory(artifacts)  # type: ignore[call-arg]


register_scorer(
    "embedding-logreg.v1", lambda a: TraitClassifier("embedding-logreg.v1", "embedding-pair", a)
)
register_scorer("linguistic.v1", lambda a: TraitClassifier("linguistic.v1", "linguistic", a))
register_scorer(JUDGE_KEY, lambda a, c: TraitJudge(JUDGE_KEY, c, a), needs_config=True)
