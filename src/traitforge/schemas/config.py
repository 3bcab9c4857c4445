"""The project config: traits, how to read input files, and how to export pairs.

Every field's description is its documentation; the CLI help and the error messages use it.
"""

from __future__ import annotations

import math
import re
from typing import Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from traitforge.schemas.annotation_config import AnnotationConfig
from traitforge.schemas.curation_config import CurationConfig
from traitforge.schemas.loop import LoopConfig
from traitforge.schemas.reward_config import RewardConfig
from traitforge.schemas.traits import TraitSpec

_MARGIN_STRATEGY = re.compile(r"^margin\s*>=\s*(\S+)$")
CopyFormat = Literal["parquet", "jsonl"]  # an export's extra copies, by format
COPY_FORMATS: tuple[str, ...] = get_args(CopyFormat)
Origin = Literal["auto", "gold", "judgements"]


class FieldMapping(BaseModel):
    """Which columns of a jsonl/csv/parquet/hf file hold what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field("prompt", description="Column holding the prompt (text or chat messages).")
    response: str = Field("response", description="Column holding the candidate response.")
    prompt_group: str | None = Field(
        None,
        description="Column whose value groups candidates of one prompt; default: the prompt text.",
    )
    model: str | None = Field(None, description="Column naming the model that wrote the response.")
    source: str | None = Field(
        None, description="Column naming the source; default: the file name without extension."
    )
    gold: dict[str, str] = Field(
        default_factory=dict,
        description="Trait name -> column holding a known value for that trait (number or bool).",
    )
    trait: str | None = Field(
        None,
        description=(
            "Column naming the trait(s) a row is for: one trait name, or a list of names (in "
            'CSV, a JSON list such as ["honesty", "sycophancy"]); each must be one of the '
            "project's traits. A prompt is then asked only about the traits its rows name. "
            "Default (or an empty cell): not stated, so a prompt is asked about the traits it "
            "has gold labels for, else about every trait."
        ),
    )
    metadata: list[str] | None = Field(
        None, description="Columns kept as metadata; default: every column not mapped above."
    )
    prompt_format: Literal["auto", "text", "chat"] = Field(
        "auto",
        description=(
            "'auto': strings are text prompts and lists are chat messages; 'chat': the prompt "
            "column holds chat messages (in CSV, as a JSON string); 'text': always plain text."
        ),
    )


class SourceInfo(BaseModel):
    """License and attribution of a data source, copied into every dataset card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    license: str
    attribution: str
    url: str | None = None


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: FieldMapping = Field(
        default_factory=FieldMapping, description="Column mapping for jsonl, csv, parquet and hf."
    )
    anthropic_evals_polarity: dict[str, Literal["matching", "not-matching"]] = Field(
        default_factory=dict,
        description=(
            "File name (without .jsonl) -> which answer is the corrigible one: 'matching' "
            "(answer_matching_behavior) or 'not-matching'."
        ),
    )
    sources: dict[str, SourceInfo] = Field(
        default_factory=dict, description="Source name -> license and attribution."
    )


class ExportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str = Field(
        "best-vs-worst",
        description=(
            "How pairs are formed per prompt and trait: 'best-vs-worst' (one pair), 'all-pairs' "
            "(every ordered pair with a preference), 'margin>=X' (pairs whose preference "
            "differs by at least X), or 'length-balanced' (all pairs, then per trait as many "
            "whose chosen response is shorter as longer, by words: the surplus side's pairs "
            "of smallest margin are dropped and counted)."
        ),
    )
    origin: Origin = Field(
        "auto",
        description=(
            "Where preferences come from: 'judgements' (annotators), 'gold' (labels shipped "
            "with the data), or 'auto': judgements for traits that have any, else gold."
        ),
    )
    test_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Share of prompts assigned to the test split."
    )
    seed: int = Field(0, description="Seed of the prompt-level split.")
    copies: list[CopyFormat] = Field(
        default_factory=list,
        # `formats`: the name in configs written before this field was renamed.
        validation_alias=AliasChoices("copies", "formats"),
        description="Extra copies written beside the saved DatasetDict, by format.",
    )

    trait_strategies: dict[str, str] = Field(
        default_factory=dict,
        description="Per-trait overrides of `strategy`, e.g. {harmlessness: all-pairs}.",
    )
    ai_feedback: bool = Field(
        False,
        description="Also export pairs from the trait judge's ratings (curation.scorers: "
        "judge.v1) for the prompts and traits that have no annotator answer or gold label, "
        "with origin 'ai-feedback'; counted apart from human pairs in the report and card.",
    )

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, strategy: str) -> str:
        parse_strategy(strategy)
        return strategy

    @field_validator("trait_strategies")
    @classmethod
    def _check_trait_strategies(cls, strategies: dict[str, str]) -> dict[str, str]:
        for strategy in strategies.values():
            parse_strategy(strategy)
        return strategies

    def strategy_for(self, trait: str) -> str:
        return self.trait_strategies.get(trait, self.strategy)


def parse_strategy(strategy: str) -> tuple[str, float | None]:
    """('best-vs-worst' | 'all-pairs' | 'length-balanced' | 'margin', X of 'margin>=X' or
    None)."""
    if strategy in ("best-vs-worst", "all-pairs", "length-balanced"):
        return strategy, None
    match = _MARGIN_STRATEGY.match(strategy)
    if match is None:
        raise ValueError(
            f"unknown pair strategy {strategy!r}; use 'best-vs-worst', 'all-pairs', "
            "'length-balanced' or 'margin>=X' with a number X, e.g. 'margin>=0.5'"
        )
    try:
        margin = float(match.group(1))
    except ValueError:
        margin = math.nan
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(
            f"pair strategy {strategy!r}: X of 'margin>=X' must be a finite number >= 0 "
            f"(a difference in preference), got {match.group(1)!r}; e.g. 'margin>=0.5'"
        )
    return "margin", margin


class ProjectConfig(BaseModel):
    """A traitforge project: one YAML file, resolved and saved in each workspace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = Field(1, description="Config format version.")
    traits: list[TraitSpec] = Field(
        description="The traits this project labels; honesty, corrigibility and harmlessness "
        "ship as defaults when the key is left out.",
        min_length=1,
    )
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig)
    annotation: AnnotationConfig = Field(default_factory=AnnotationConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    loop: LoopConfig = Field(default_factory=LoopConfig)

    @model_validator(mode="after")
    def _check_traits(self) -> ProjectConfig:
        names = [t.name for t in self.traits]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"trait names must be unique; repeated: {repeated}")
        unknown = sorted(set(self.curation.trait_weights) - set(names))
        if unknown:
            raise ValueError(
                f"curation.trait_weights names traits {unknown} that are not defined; "
                f"defined traits: {names}"
            )
        shares = self.curation.selection.trait_budget
        unknown = sorted(set(shares) - set(names)) if isinstance(shares, dict) else []
        if unknown:
            raise ValueError(
                f"curation.selection.trait_budget names traits {unknown} that are not "
                f"defined; defined traits: {names}"
            )
        unknown = sorted(set(self.export.trait_strategies) - set(names))
        if unknown:
            raise ValueError(
                f"export.trait_strategies names traits {unknown} that are not defined; "
                f"defined traits: {names}"
            )
        unknown = sorted(set(self.ingest.mapping.gold) - set(names))
        if unknown:
            raise ValueError(
                f"ingest.mapping.gold names traits {unknown} that are not defined; "
                f"defined traits: {names}. Add them under 'traits' or fix the names"
            )
        return self

    def trait_weight(self, name: str) -> float:
        return self.curation.trait_weights.get(name, 1.0)

    def trait(self, name: str) -> TraitSpec:
        for trait in self.traits:
            if trait.name == name:
                return trait
        raise KeyError(name)
