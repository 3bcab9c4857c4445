"""Records of the closed loop: what each round selected, collected, trained and measured."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from traitforge.schemas.results import (
    AgreementResult,
    EvaluationResult,
    LengthPositionResult,
    MatrixResult,
    TrainingSummary,
    TraitTies,
)

# "use-model" points the workspace at the round's reward model (the next round scores with it).
STEPS = ("select", "push", "annotate", "pull", "export", "train", "use-model", "report")
RENAMED_STEPS = {"score": "use-model"}  # step names in round.json files of earlier versions


class LoopRound(BaseModel):
    """One round of the loop, written to W/rounds/<n>/round.json as its steps complete."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(ge=1)
    selected_with: list[str] = Field(
        default_factory=list, description="Scorer keys the round's selection used."
    )
    strategy: str = ""
    acquisition: str | None = Field(
        None, description="What an epistemic strategy scored with (ensemble or classifiers)."
    )
    tasks: int = Field(0, description="Comparison tasks selected in this round.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What this round's selection could not do, each with what to do: traits "
        "without candidates or tasks, gold checks short, nothing scored.",
    )
    stopped: str | None = Field(
        None,
        description="Why the loop stopped at this round: its selection found no task (no open "
        "prompt left, or nothing scores above chance), so it trained nothing and no round "
        "followed. None for a round that ran.",
    )
    stopped_inputs: str | None = Field(
        None,
        description="What selection had when the round stopped (candidates and judgements in "
        "the store, a hash of the curation config); a re-run retries the round once this "
        "differs.",
    )
    judgements_total: int = Field(
        0,
        validation_alias=AliasChoices("judgements_total", "labels"),  # `labels` in older files
        description="Submitted answers (judgements) so far, this round and all before it.",
    )
    pairs: dict[str, int] = Field(
        default_factory=dict, description="Trait -> exported pairs after this round."
    )
    pair_origins: dict[str, str] = Field(default_factory=dict)
    drops: dict[str, int] = Field(default_factory=dict)
    ties: dict[str, TraitTies] = Field(
        default_factory=dict, description="Trait -> ties among the answers after this round."
    )
    agreement: AgreementResult | None = None
    length_position: LengthPositionResult | None = Field(
        None, description="Length and position bias in the votes so far, after this round."
    )
    model: str | None = Field(None, description="Reward-model folder trained in this round.")
    training: dict[str, TrainingSummary] = Field(
        default_factory=dict, description="Model (trait, or 'shared') -> what it trained on."
    )
    evaluation: EvaluationResult | None = Field(
        None, description="Reward-model evaluation on the pairs named in `evaluated_on`."
    )
    evaluated_on: dict[str, int] = Field(
        default_factory=dict,
        description="What the evaluation used -> its test pairs of the trained traits: 'gold' "
        "(gold pairs of the held-out prompts), 'held-out judgements' (annotators' pairs of the "
        "held-out prompts) or 'export' (the export's test split); see loop.evaluate_on.",
    )
    evaluation_note: str | None = Field(
        None,
        description="Why the round's model has no evaluation, or which trained traits it "
        "lacks, and what to do about it.",
    )
    matrix: MatrixResult | None = None
    completed: list[str] = Field(default_factory=list, description="Steps done, in order.")
    seconds: dict[str, float] = Field(default_factory=dict, description="Step -> wall time.")

    @field_validator("completed", mode="before")
    @classmethod
    def _renamed_steps(cls, steps: object) -> object:
        if isinstance(steps, list):
            return [RENAMED_STEPS.get(s, s) if isinstance(s, str) else s for s in steps]
        return steps

    @field_validator("seconds", mode="before")
    @classmethod
    def _renamed_step_times(cls, seconds: object) -> object:
        if isinstance(seconds, dict):
            return {RENAMED_STEPS.get(k, k): v for k, v in seconds.items()}
        return seconds


class LoopConfig(BaseModel):
    """How `traitforge loop` runs its rounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(3, ge=1, le=100, description="Rounds of select-annotate-train.")
    budget_per_round: int = Field(100, ge=1, description="Comparison tasks selected per round.")
    wait_share: float = Field(
        0.9,
        gt=0.0,
        le=1.0,
        description="Without --simulate, a round goes on once this share of its own pushed "
        "records has all its submissions (annotation.argilla.min_submitted).",
    )
    poll_seconds: float = Field(30.0, gt=0.0, description="How often to check for answers.")
    train_on: Literal["judgements", "all"] = Field(
        "judgements",
        description="Pairs the loop's reward model learns from: annotators' judgements only, "
        "or every exported pair (gold-labelled ones too).",
    )
    evaluate_on: Literal["auto", "gold", "judgements", "export"] = Field(
        "auto",
        description="Pairs the loop's reward model is evaluated on, all of held-out (test) "
        "prompts: 'gold': gold pairs (more of them than judged test pairs); 'judgements': "
        "annotators' pairs; 'auto': gold for each trait that has gold test pairs, annotators' "
        "pairs for the others; 'export': the export's test split as training filters it "
        "(loop.train_on).",
    )
