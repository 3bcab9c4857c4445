"""Trait scorers: calibrated probabilities per candidate and trait, under versioned keys."""

from traitforge.curation.scorers.classifier import Example, TrainResult, TraitClassifier
from traitforge.curation.scorers.features import CandidateFeatures
from traitforge.curation.scorers.registry import (
    Scorer,
    get_scorer,
    register_scorer,
    registered_scorers,
)

__all__ = [
    "CandidateFeatures",
    "Example",
    "Scorer",
    "TrainResult",
    "TraitClassifier",
    "get_scorer",
    "register_scorer",
    "registered_scorers",
]
