"""The data model. Imports nothing else of traitforge, so every stage can depend on it."""

from traitforge.schemas.config import (
    ExportConfig,
    FieldMapping,
    IngestConfig,
    ProjectConfig,
    SourceInfo,
)
from traitforge.schemas.hashing import content_hash
from traitforge.schemas.records import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    Judgement,
    PreferencePair,
    Prompt,
    Provenance,
    RankedCandidate,
    Scores,
    Suggestion,
    prompt_hash,
    prompt_text,
)
from traitforge.schemas.traits import RatingScale, TraitSpec

__all__ = [
    "Candidate",
    "ChatMessage",
    "ComparisonTask",
    "ExportConfig",
    "FieldMapping",
    "IngestConfig",
    "Judgement",
    "PreferencePair",
    "ProjectConfig",
    "Prompt",
    "Provenance",
    "RankedCandidate",
    "RatingScale",
    "Scores",
    "SourceInfo",
    "Suggestion",
    "TraitSpec",
    "content_hash",
    "prompt_hash",
    "prompt_text",
]
