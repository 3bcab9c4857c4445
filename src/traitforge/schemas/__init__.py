"""The data model. Imports nothing else of traitforge, so every stage can depend on it."""

from traitforge.schemas.annotation_config import (
    AggregationConfig,
    AnnotationConfig,
    ArgillaConfig,
    SimulationConfig,
)
from traitforge.schemas.config import (
    ExportConfig,
    FieldMapping,
    IngestConfig,
    ProjectConfig,
    SourceInfo,
)
from traitforge.schemas.curation_config import (
    CurationConfig,
    DedupConfig,
    EmbeddingConfig,
    FlagConfig,
    GenerationConfig,
    SelectionConfig,
)
from traitforge.schemas.hashing import content_hash
from traitforge.schemas.loop import LoopConfig, LoopRound
from traitforge.schemas.records import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    DuplicateMark,
    Flag,
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
from traitforge.schemas.results import (
    AgreementResult,
    AnnotatorQuality,
    Calibration,
    EvaluationResult,
    MatrixResult,
    TraitAgreement,
    TraitTies,
)
from traitforge.schemas.reward_config import LoraConfig, RewardConfig
from traitforge.schemas.traits import RatingScale, TraitSpec

__all__ = [
    "AggregationConfig",
    "AgreementResult",
    "AnnotationConfig",
    "AnnotatorQuality",
    "ArgillaConfig",
    "Calibration",
    "Candidate",
    "ChatMessage",
    "ComparisonTask",
    "CurationConfig",
    "DedupConfig",
    "DuplicateMark",
    "EmbeddingConfig",
    "EvaluationResult",
    "ExportConfig",
    "FieldMapping",
    "Flag",
    "FlagConfig",
    "GenerationConfig",
    "IngestConfig",
    "Judgement",
    "LoopConfig",
    "LoopRound",
    "LoraConfig",
    "MatrixResult",
    "PreferencePair",
    "ProjectConfig",
    "Prompt",
    "Provenance",
    "RankedCandidate",
    "RatingScale",
    "RewardConfig",
    "Scores",
    "SelectionConfig",
    "SimulationConfig",
    "SourceInfo",
    "Suggestion",
    "TraitAgreement",
    "TraitSpec",
    "TraitTies",
    "content_hash",
    "prompt_hash",
    "prompt_text",
]
