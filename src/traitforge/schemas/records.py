"""The records that flow between stages: candidates, scores, tasks, judgements and pairs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from traitforge.schemas.hashing import content_hash

JsonValue = Any
# Records are stored as JSON, which has no NaN or infinity: refuse them at the door.
_RECORD = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ChatMessage(BaseModel):
    """One turn of a conversation, in the role/content shape chat templates read."""

    model_config = _RECORD

    role: Literal["system", "user", "assistant"]
    content: str


Prompt = str | list[ChatMessage]


def prompt_text(prompt: Prompt) -> str:
    """A prompt flattened to text, for lengths and hashing."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(f"{m.role}: {m.content}" for m in prompt)


def _prompt_key(prompt: Prompt | list[dict[str, str]]) -> JsonValue:
    if isinstance(prompt, str):
        return prompt
    return [m.model_dump() if isinstance(m, ChatMessage) else m for m in prompt]


def prompt_hash(prompt: Prompt | list[dict[str, str]], group: str | None = None) -> str:
    """The prompt id: the same prompt (or the same declared group) gets the same id everywhere."""
    return content_hash("prompt", group if group is not None else _prompt_key(prompt))


class Candidate(BaseModel):
    """One model output for one prompt. Its id hashes prompt, response and source."""

    model_config = _RECORD

    id: str = Field(description="Content hash of prompt + response + source (computed).")
    prompt_id: str = Field(description="Groups the candidates that answer the same prompt.")
    prompt: Prompt = Field(description="Plain text, or a list of chat messages.")
    response: str = Field(description="The candidate response; never empty.")
    source: str = Field(description="Where the candidate came from, e.g. 'truthfulqa'.")
    model: str | None = Field(None, description="The model that wrote the response, if known.")
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    gold: dict[str, float] = Field(
        default_factory=dict,
        description="Known trait values from the source, in each trait's own direction.",
    )
    traits: list[str] = Field(
        default_factory=list,
        description="The traits the row is for, as the source states them; empty: not stated. "
        "Not part of the id, so restating a row's traits keeps its candidate.",
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and "prompt" in data:
            data = dict(data)
            key = _prompt_key(data["prompt"])
            data.setdefault("prompt_id", prompt_hash(data["prompt"]))
            data.setdefault(
                "id", content_hash("candidate", key, data.get("response"), data.get("source"))
            )
        return data

    @field_validator("response")
    @classmethod
    def _check_response(cls, response: str) -> str:
        if not response.strip():
            raise ValueError("response is empty or only whitespace")
        return response

    @field_validator("traits")
    @classmethod
    def _check_traits(cls, traits: list[str]) -> list[str]:
        if any(not t.strip() for t in traits):
            raise ValueError("a trait name is empty or only whitespace")
        return list(dict.fromkeys(traits))  # a name stated twice is stated once

    @field_validator("prompt")
    @classmethod
    def _check_prompt(cls, prompt: Prompt) -> Prompt:
        if isinstance(prompt, str) and not prompt.strip():
            raise ValueError("prompt is empty or only whitespace")
        if isinstance(prompt, list) and not prompt:
            raise ValueError("chat prompt has no messages")
        return prompt

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.prompt, str)


class Scores(BaseModel):
    """One scorer's score of one candidate on one trait."""

    model_config = _RECORD

    candidate_id: str
    scorer: str = Field(description="Versioned scorer key, e.g. 'embedding-logreg.v1'.")
    trait: str
    score: float = Field(description="Raw score, higher means more of the trait.")
    probability: float | None = Field(
        None, ge=0.0, le=1.0, description="Calibrated probability that the trait is present."
    )
    embedding_ref: str | None = Field(
        None, description="Key of the embedding the score was computed from, if any."
    )


class Suggestion(BaseModel):
    """A pre-filled answer shown to annotators, with the scorer that produced it."""

    model_config = _RECORD

    candidate_id: str
    trait: str
    value: float
    scorer: str


# "recheck": an exported pair the label audit doubted, sent back to annotators (see
# `curation/recheck.py`).
SelectionReason = Literal[
    "random", "uncertainty", "diversity", "disagreement", "epistemic", "gold-check", "recheck"
]


class ComparisonTask(BaseModel):
    """A prompt with 2..k candidates chosen for annotation, and why."""

    model_config = _RECORD

    id: str = Field(description="Hash of the prompt id and the candidate ids (computed).")
    prompt_id: str
    candidate_ids: list[str] = Field(min_length=2)
    trait: str = Field(description="The trait the overall preference question asks about.")
    rated_traits: list[str] = Field(
        default_factory=list, description="Traits annotators also rate per candidate."
    )
    reason: SelectionReason
    reason_detail: str = ""
    suggestions: list[Suggestion] = Field(default_factory=list)
    gold_check: bool = Field(False, description="True when the answer is known from gold labels.")
    round: int = Field(0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data:
            data = dict(
                data,
                id=content_hash(
                    "task",
                    data.get("prompt_id"),
                    data.get("trait"),
                    sorted(data.get("candidate_ids") or []),
                ),
            )
        return data

    @field_validator("candidate_ids")
    @classmethod
    def _check_unique(cls, ids: list[str]) -> list[str]:
        if len(set(ids)) != len(ids):
            raise ValueError("a task lists the same candidate twice")
        return ids


class RankedCandidate(BaseModel):
    """A candidate's place in one annotator's ranking; 1 is best, equal ranks are ties."""

    model_config = _RECORD

    candidate_id: str
    rank: int = Field(ge=1)


class Judgement(BaseModel):
    """One annotator's submitted answer to one task."""

    model_config = _RECORD

    id: str = Field(description="Hash of task id and annotator id (computed): one per pair.")
    task_id: str
    annotator_id: str
    ranking: list[RankedCandidate] = Field(default_factory=list)
    ratings: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="candidate id -> trait -> rating on the trait's scale."
    )
    rationale: str | None = None
    seconds: float | None = Field(None, ge=0)
    kept_suggestion: bool | None = None
    submitted_at: datetime | None = None
    simulated: bool = Field(False, description="True for answers from simulated annotators.")

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data:
            data = dict(
                data, id=content_hash("judgement", data.get("task_id"), data.get("annotator_id"))
            )
        return data

    @model_validator(mode="after")
    def _check_answer(self) -> Judgement:
        if not self.ranking and not self.ratings:
            raise ValueError("a judgement needs a ranking or ratings")
        ranked = [r.candidate_id for r in self.ranking]
        if len(set(ranked)) != len(ranked):
            raise ValueError("a ranking lists the same candidate twice")
        return self

    @property
    def is_tie(self) -> bool:
        """Whether the ranking puts every candidate it names level: an answer of its own
        ("neither is better"), not missing data. A partial tie (ranks 1, 1, 2) is not one."""
        return len(self.ranking) >= 2 and len({r.rank for r in self.ranking}) == 1


class Provenance(BaseModel):
    """Where a pair came from, so a reward model trained on it can be audited."""

    model_config = _RECORD

    sources: list[str] = Field(
        default_factory=list, description="Datasets the candidates came from."
    )
    task_ids: list[str] = Field(default_factory=list)
    annotators: list[str] = Field(default_factory=list)
    guideline_version: str | None = None
    scorer_versions: list[str] = Field(
        default_factory=list, description="Versioned keys of the scorers annotators saw."
    )
    simulated: bool = False


class PreferencePair(BaseModel):
    """A chosen and a rejected response to the same prompt, for one trait."""

    model_config = _RECORD

    id: str = Field(description="Hash of trait, prompt id, chosen id and rejected id (computed).")
    prompt_id: str
    prompt: Prompt
    chosen: str
    rejected: str
    chosen_id: str
    rejected_id: str
    trait: str
    margin: float = Field(ge=0.0, description="How much more the chosen shows the trait.")
    confidence: float | None = Field(None, ge=0.0, le=1.0)
    votes: int = Field(0, ge=0, description="Annotator votes behind the pair; 0 for gold pairs.")
    agreement: float | None = Field(None, ge=0.0, le=1.0)
    origin: Literal["gold", "judgements", "ai-feedback"] = Field(
        description="'gold': labels shipped with the data; 'judgements': annotators; "
        "'ai-feedback': the trait judge's ratings (export.ai_feedback), never annotators'."
    )
    provenance: Provenance = Field(default_factory=Provenance)

    @model_validator(mode="before")
    @classmethod
    def _derive_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "id" not in data:
            data = dict(
                data,
                id=content_hash(
                    "pair",
                    data.get("trait"),
                    data.get("prompt_id"),
                    data.get("chosen_id"),
                    data.get("rejected_id"),
                ),
            )
        return data

    @model_validator(mode="after")
    def _check_distinct(self) -> PreferencePair:
        if self.chosen_id == self.rejected_id or self.chosen.strip() == self.rejected.strip():
            raise ValueError("chosen and rejected are the same response")
        if not self.chosen.strip() or not self.rejected.strip():
            raise ValueError("a pair side is empty")
        return self


class Flag(BaseModel):
    """A candidate set aside from scoring and selection, with the reason."""

    model_config = _RECORD

    candidate_id: str
    reason: Literal["empty", "language", "too-long"]
    detail: str = ""


class DuplicateMark(BaseModel):
    """A candidate whose response nearly repeats another's (never deleted, only marked).

    scope 'prompt': same prompt; such a candidate is never paired for annotation.
    scope 'corpus': the same response given to different prompts (boilerplate), reported only.
    """

    model_config = _RECORD

    candidate_id: str
    representative_id: str
    similarity: float = Field(ge=-1.0, le=1.0001)
    scope: Literal["prompt", "corpus"]
