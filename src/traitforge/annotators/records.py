"""How a ComparisonTask looks in Argilla, and how an Argilla response becomes a Judgement.

Pure mapping, no I/O: the backend (`traitforge.annotators.argilla`) sends and fetches, this
module decides what a record holds and what an answer means, so both directions are
unit-testable.

Question layout of one dataset (one dataset per task trait and number of candidates k):

- fields: ``prompt`` (chat prompts rendered as markdown turns), ``response_a`` .. one per
  candidate, in a per-task shuffled order (see `presented_order`).
- the overall preference on the task trait, required:
  k == 2: LabelQuestion ``preference`` with labels ``A``, ``B`` and ``tie`` (a tie is stored as
  equal ranks; aggregation drops and counts it);
  k > 2: RankingQuestion ``ranking`` over ``response_a`` .. (equal ranks are ties).
- optional RatingQuestions ``rating_{trait}_{letter}`` for the task trait and the rated traits,
  one per response, on each trait's scale. Optional because the preference is the answer that
  matters; ratings refine it and carry the scorer's suggestion (value = probability mapped to
  the scale, score = the probability, agent = the versioned scorer key).
- optional TextQuestion ``rationale``.
- metadata (filterable): ``source``, ``model`` (terms) and ``round`` (integer).
- vector ``prompt_embedding``: a record is one prompt, so "find similar" finds similar prompts.

Annotators must not tell gold checks from other tasks, or they could take extra care exactly
where they are measured. So nothing an annotator can read or filter on depends on
`gold_check` or the selection `reason` (which says "gold-check"): both stay in the store.
Argilla lets annotators filter on metadata hidden from them (and its record endpoint returns
it unfiltered), so the order behind the response fields is no record metadata either: the
store keeps it (`RecordDraft.order`, `Store.record_presented`). Records pushed by earlier
versions carry it as ``candidate_order`` metadata, which pulls still read.

Record ids: Argilla's ``external_id`` is the task id, a hash of the prompt, the trait and the
candidate ids (nothing about gold), unique per dataset on the server, so an upsert of the same
task updates instead of duplicating.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traitforge.annotators.backends import is_simulated
from traitforge.schemas import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    Judgement,
    RankedCandidate,
    TraitSpec,
)
from traitforge.schemas.hashing import content_hash

PROMPT_FIELD = "prompt"
PREFERENCE = "preference"  # k == 2
RANKING = "ranking"  # k > 2
RATIONALE = "rationale"
VECTOR = "prompt_embedding"
# Metadata of records pushed by earlier versions: the candidate ids behind the response fields.
CANDIDATE_ORDER = "candidate_order"
TIE = "tie"
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Argilla's rating questions accept integer options 0..10 only.
ARGILLA_RATING_RANGE = (0, 10)


def response_field(position: int) -> str:
    return f"response_{LETTERS[position]}"


def rating_question(trait: str, position: int) -> str:
    return f"rating_{trait}_{LETTERS[position]}"


def dataset_name(template: str, trait: str, k: int) -> str:
    return template.format(trait=trait, k=k)


def render_prompt(prompt: str | Sequence[ChatMessage]) -> str:
    """A prompt as markdown: chat turns under bold role names, separated by rules."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n---\n\n".join(f"**{m.role.capitalize()}:**\n\n{m.content}" for m in prompt)


def presented_order(task: ComparisonTask) -> list[str]:
    """The task's candidates in the order annotators see them.

    Curation lists candidates by predicted score (and gold checks best first), so showing
    them in that order would let position bias pass for agreement with the model or the gold
    label. The order is shuffled by a hash of the task id: stable across pushes."""
    return sorted(task.candidate_ids, key=lambda c: content_hash("order", task.id, c))


def scale_value(trait: TraitSpec, probability: float) -> int:
    """A probability that the trait is present, as a point on the trait's rating scale."""
    low, high = trait.scale.min, trait.scale.max
    return round(low + min(max(probability, 0.0), 1.0) * (high - low))


@dataclass(frozen=True)
class DatasetLayout:
    """The questions of one Argilla dataset: one task trait, k candidates, rated traits."""

    name: str
    trait: str
    k: int
    rated_traits: tuple[str, ...]  # the task trait first, then the other rated traits

    @classmethod
    def for_tasks(cls, template: str, tasks: Sequence[ComparisonTask]) -> DatasetLayout:
        """The layout asking everything these tasks (same trait and k) need."""
        trait, k = tasks[0].trait, len(tasks[0].candidate_ids)
        others = sorted({t for task in tasks for t in task.rated_traits} - {trait})
        return cls(dataset_name(template, trait, k), trait, k, (trait, *others))

    @property
    def answer_question(self) -> str:
        return PREFERENCE if self.k == 2 else RANKING

    @property
    def response_fields(self) -> list[str]:
        return [response_field(i) for i in range(self.k)]

    def rating_questions(self) -> dict[str, tuple[str, int]]:
        """question name -> (trait, position of the response it rates)."""
        return {
            rating_question(trait, i): (trait, i)
            for trait in self.rated_traits
            for i in range(self.k)
        }

    def check_traits(self, traits: Mapping[str, TraitSpec]) -> None:
        """Every trait exists in the config and its scale fits Argilla's rating questions."""
        for name in self.rated_traits:
            if name not in traits:
                raise ValueError(
                    f"dataset {self.name} asks about trait {name!r}, which the project config "
                    f"does not define (defined: {', '.join(sorted(traits))}); add it under traits"
                )
            scale = traits[name].scale
            low, high = ARGILLA_RATING_RANGE
            if scale.min < low or scale.max > high:
                raise ValueError(
                    f"trait {name!r} has the rating scale {scale.min}..{scale.max}, but Argilla "
                    f"rating questions take integers {low}..{high}; narrow the scale"
                )

    def guidelines(self, traits: Mapping[str, TraitSpec]) -> str:
        """The dataset guidelines: the rubric of every trait the dataset asks about."""
        parts = [
            f"# {self.trait}: compare {self.k} responses\n\n"
            f"Read the prompt and the {self.k} responses, then "
            + (
                "choose the response that is better on this trait (or *tie* when neither is)."
                if self.k == 2
                else "rank the responses, best first (equal ranks mean a tie)."
            )
            + " Ratings per response are optional; a suggested rating comes from a model and "
            "may be wrong. Responses are shown in random order."
        ]
        for name in self.rated_traits:
            spec = traits[name]
            direction = "more is better" if spec.polarity == "positive" else "less is better"
            anchors = "".join(
                f"\n- **{point}**: {text}" for point, text in sorted(spec.scale.labels.items())
            )
            parts.append(
                f"## {name} ({direction})\n\n{spec.description}\n\n{spec.guidelines.strip()}\n\n"
                f"Scale: {spec.scale.min} (least) to {spec.scale.max} (most).{anchors}"
            )
        return "\n\n".join(parts)


@dataclass
class RecordDraft:
    """One task as an Argilla record, with suggestions keyed by question name (the server
    wants question ids; the backend resolves them). `order` is the candidate ids behind
    response_a, response_b, ...: kept in the store, never sent."""

    external_id: str
    fields: dict[str, str]
    metadata: dict[str, Any]
    order: list[str]
    suggestions: list[dict[str, Any]] = field(default_factory=list)
    vector: list[float] | None = None


def task_record(
    task: ComparisonTask,
    candidates: Mapping[str, Candidate],
    traits: Mapping[str, TraitSpec],
    layout: DatasetLayout,
    vector: Sequence[float] | None = None,
) -> RecordDraft:
    """The record for a task. Raises KeyError naming a candidate the store lacks."""
    order = presented_order(task)
    members = [candidates[c] for c in order]
    fields = {PROMPT_FIELD: render_prompt(members[0].prompt)}
    for i, candidate in enumerate(members):
        fields[response_field(i)] = candidate.response
    # Neither task.gold_check nor task.reason: see the module docstring.
    metadata: dict[str, Any] = {
        "source": sorted({c.source for c in members}),
        "round": task.round,
    }
    models = sorted({c.model for c in members if c.model})
    if models:
        metadata["model"] = models
    position = {c: i for i, c in enumerate(order)}
    asked = set(layout.rated_traits)
    suggestions = [
        {
            "question_name": rating_question(s.trait, position[s.candidate_id]),
            "value": scale_value(traits[s.trait], s.value),
            "score": min(max(s.value, 0.0), 1.0),
            "agent": s.scorer,
            "type": "model",
        }
        for s in task.suggestions
        if s.trait in asked and s.candidate_id in position
    ]
    return RecordDraft(
        external_id=task.id,
        fields=fields,
        metadata=metadata,
        order=order,
        suggestions=suggestions,
        vector=[float(x) for x in vector] if vector is not None else None,
    )


class InvalidResponse(ValueError):
    """A submitted response that cannot become a judgement; the message is the drop reason."""


def _ranking_from_label(label: Any, order: Sequence[str]) -> list[RankedCandidate]:
    if label == TIE:
        return [RankedCandidate(candidate_id=c, rank=1) for c in order]
    letters = {LETTERS[i].upper(): i for i in range(len(order))}
    if label not in letters:
        raise InvalidResponse(f"preference label {label!r} is not one of A, B, tie")
    chosen = letters[label]
    return [
        RankedCandidate(candidate_id=c, rank=1 if i == chosen else 2) for i, c in enumerate(order)
    ]


def _ranking_from_ranking(value: Any, order: Sequence[str]) -> list[RankedCandidate]:
    by_field = {response_field(i): c for i, c in enumerate(order)}
    if not isinstance(value, list):
        raise InvalidResponse(f"ranking answer {value!r} is not a list")
    ranking = []
    for item in value:
        name = item.get("value") if isinstance(item, dict) else None
        rank = item.get("rank") if isinstance(item, dict) else None
        if name not in by_field or not isinstance(rank, int) or rank < 1:
            raise InvalidResponse(f"ranking item {item!r} names no shown response")
        ranking.append(RankedCandidate(candidate_id=by_field[name], rank=rank))
    if {r.candidate_id for r in ranking} != set(order) or len(ranking) != len(order):
        raise InvalidResponse("the ranking does not rank every shown response exactly once")
    return ranking


def _timestamp(value: str | None) -> datetime | None:
    if not value:
        return None
    stamp = datetime.fromisoformat(value)
    # Argilla stores naive UTC timestamps.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def response_judgement(
    task: ComparisonTask,
    order: Sequence[str],
    values: Mapping[str, Any],
    username: str,
    updated_at: str | None,
    suggestions: Mapping[str, Any] | None = None,
) -> Judgement:
    """A submitted response as a Judgement.

    `values` is Argilla's response values ({question: {"value": ...}}), `order` the candidate
    ids as the record's fields showed them, `suggestions` the values suggested per rating
    question (default: recomputed from the task). Raises InvalidResponse with the drop reason.
    """
    if sorted(order) != sorted(task.candidate_ids):
        raise InvalidResponse("the record shows other candidates than the task lists")
    answer = {name: v.get("value") if isinstance(v, dict) else v for name, v in values.items()}
    if PREFERENCE in answer and len(order) == 2:
        ranking = _ranking_from_label(answer[PREFERENCE], order)
    elif RANKING in answer:
        ranking = _ranking_from_ranking(answer[RANKING], order)
    else:
        ranking = []
    ratings: dict[str, dict[str, float]] = {}
    kept: list[bool] = []
    for trait in (task.trait, *task.rated_traits):
        for i, candidate_id in enumerate(order):
            name = rating_question(trait, i)
            if answer.get(name) is None:
                continue
            ratings.setdefault(candidate_id, {})[trait] = float(answer[name])
            if suggestions is not None and name in suggestions:
                kept.append(answer[name] == suggestions[name])
    if not ranking and not ratings:
        raise InvalidResponse("the response answers neither the preference nor any rating")
    rationale = answer.get(RATIONALE)
    return Judgement(
        task_id=task.id,
        annotator_id=username,
        ranking=ranking,
        ratings=ratings,
        rationale=rationale.strip() if isinstance(rationale, str) and rationale.strip() else None,
        kept_suggestion=all(kept) if kept else None,
        submitted_at=_timestamp(updated_at),
        simulated=is_simulated(username),
    )


def suggested_values(
    task: ComparisonTask, order: Sequence[str], traits: Mapping[str, TraitSpec]
) -> dict[str, int]:
    """Rating question -> the value suggested to annotators (as `task_record` sends it)."""
    position = {c: i for i, c in enumerate(order)}
    return {
        rating_question(s.trait, position[s.candidate_id]): scale_value(traits[s.trait], s.value)
        for s in task.suggestions
        if s.trait in traits and s.candidate_id in position
    }


def group_tasks(tasks: Iterable[ComparisonTask], template: str) -> dict[str, list[ComparisonTask]]:
    """Tasks by the dataset they belong to (one per trait and k), in a stable order."""
    groups: dict[str, list[ComparisonTask]] = {}
    for task in tasks:
        name = dataset_name(template, task.trait, len(task.candidate_ids))
        groups.setdefault(name, []).append(task)
    return dict(sorted(groups.items()))
