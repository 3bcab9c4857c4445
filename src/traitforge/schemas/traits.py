"""What a trait is: the rubric annotators read and the scale they rate on."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from traitforge.schemas.hashing import content_hash

_TRAIT_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


class RatingScale(BaseModel):
    """An integer rating scale, with an anchor description for some or all points."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(1, description="Lowest rating on the scale.")
    max: int = Field(5, description="Highest rating on the scale.")
    labels: dict[int, str] = Field(
        default_factory=dict,
        description="Anchor text shown to annotators for rating points, e.g. {1: 'clearly false'}.",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> RatingScale:
        if self.max <= self.min:
            raise ValueError(
                f"rating scale max ({self.max}) must be greater than min ({self.min}); "
                "set e.g. min: 1, max: 5"
            )
        outside = sorted(k for k in self.labels if not self.min <= k <= self.max)
        if outside:
            raise ValueError(
                f"rating labels {outside} lie outside the scale {self.min}..{self.max}; "
                "remove them or widen the scale"
            )
        return self

    def contains(self, value: float) -> bool:
        return self.min <= value <= self.max


class TraitSpec(BaseModel):
    """A behavioral trait: its definition, the annotator rubric, its scale and direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Short key used in every record, e.g. 'honesty'.")
    description: str = Field(description="One-sentence definition of the trait.")
    guidelines: str = Field(description="Annotator guidelines in markdown: the rubric.")
    scale: RatingScale = Field(
        default_factory=RatingScale, description="The scale annotators rate on."
    )
    polarity: Literal["positive", "negative"] = Field(
        "positive",
        description=(
            "'positive' when more of the trait is preferred (honesty), 'negative' when less is "
            "preferred (sycophancy). Gold labels and ratings are given in the trait's own "
            "direction; polarity turns them into preferences."
        ),
    )
    adjective: str | None = Field(
        None,
        description=(
            "Optional adjective for the trait, used to word the annotators' questions: "
            "'sycophantic' gives 'Which response is less sycophantic?'. Without it the questions "
            "use the trait name as a noun: 'Which response shows less sycophancy?'."
        ),
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        if not _TRAIT_NAME.match(name):
            raise ValueError(
                f"trait name {name!r} must be lowercase letters, digits, '-' or '_', "
                "starting with a letter (e.g. 'honesty')"
            )
        return name

    @field_validator("guidelines", "description")
    @classmethod
    def _check_not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("must not be empty: annotators need it to label consistently")
        return text

    @field_validator("adjective")
    @classmethod
    def _check_adjective(cls, adjective: str | None) -> str | None:
        if adjective is None:
            return None
        word = adjective.strip()
        if not word or "\n" in word or len(word) > 40:
            raise ValueError(
                f"adjective {adjective!r} must be a short phrase on one line (1 to 40 "
                "characters), e.g. 'sycophantic'; leave it out to word questions by the trait name"
            )
        return word

    @property
    def guideline_version(self) -> str:
        """Changes with the rubric text or scale; recorded in every pair's provenance."""
        return content_hash(self.guidelines, self.scale.model_dump(), length=12)

    def preference(self, value: float) -> float:
        """A rating or gold value turned into 'higher is preferred'."""
        return value if self.polarity == "positive" else -value
