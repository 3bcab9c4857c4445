"""Records of the closed loop: what each round selected, collected, trained and measured."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

STEPS = ("select", "push", "annotate", "pull", "export", "train", "score", "report")


class LoopRound(BaseModel):
    """One round of the loop, written to W/rounds/<n>/round.json as its steps complete."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1)
    selected_with: list[str] = Field(
        default_factory=list, description="Scorer keys the round's selection used."
    )
    strategy: str = ""
    tasks: int = Field(0, description="Comparison tasks selected in this round.")
    labels: int = Field(0, description="Submitted answers (judgements) so far, all rounds.")
    pairs: dict[str, int] = Field(
        default_factory=dict, description="Trait -> exported pairs after this round."
    )
    pair_origins: dict[str, str] = Field(default_factory=dict)
    drops: dict[str, int] = Field(default_factory=dict)
    agreement: dict[str, Any] | None = None
    model: str | None = Field(None, description="Reward-model folder trained in this round.")
    evaluation: dict[str, Any] | None = Field(
        None, description="Reward-model evaluation on the export's test split."
    )
    matrix: dict[str, Any] | None = None
    completed: list[str] = Field(default_factory=list, description="Steps done, in order.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Step -> wall time.")


class LoopConfig(BaseModel):
    """How `traitforge loop` runs its rounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(3, ge=1, le=100, description="Rounds of select-annotate-train.")
    budget_per_round: int = Field(100, ge=1, description="Comparison tasks selected per round.")
    wait_share: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="Without --simulate, a round goes on once this share of the pushed records "
        "has all its submissions (annotation.argilla.min_submitted).",
    )
    poll_seconds: float = Field(30.0, gt=0.0, description="How often to check for answers.")
    train_on: Literal["judgements", "all"] = Field(
        "judgements",
        description="Pairs the loop's reward model learns from: annotators' judgements only, "
        "or every exported pair (gold-labelled ones too).",
    )
    evaluate_on: Literal["gold", "export"] = Field(
        "gold",
        description="'gold': held-out gold pairs of the test prompts (more of them than "
        "judged test pairs); 'export': the export's own test split.",
    )
