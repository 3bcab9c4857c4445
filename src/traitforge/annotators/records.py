"""How a ComparisonTask looks in Argilla, and how an Argilla response becomes a Judgement.

Pure mapping, no I/O: the backend (`traitforge.annotators.argilla`) sends and fetches, this
module decides what a record holds and what an answer means, so both directions are
unit-testable.

Question layout of one dataset (one dataset per task trait and number of candidates k):

- fields, in one of two layouts (`annotation.layout`):
  stacked: TextFields ``prompt`` (chat prompts rendered as markdown turns) and ``response_a``
  .. one per candidate, shown one under another;
  side-by-side: CustomFields ``prompt`` and ``responses`` (the responses in columns next to
  each other, as plain text; see `side_by_side_template` for why every text is escaped here).
  Either way the candidates come in a per-task shuffled order (see `presented_order`).
- the questions are worded from each trait's polarity and optional adjective
  (`preference_title`, `rating_title`): "Which response is less sycophantic?".
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

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

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
RESPONSES_FIELD = "responses"  # the side-by-side layout's one field holding every response
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
# Longest question title and description argilla-server accepts.
ARGILLA_TITLE_MAX, ARGILLA_DESCRIPTION_MAX = 500, 1000
Layout = Literal["stacked", "side-by-side"]


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


def _letter(position: int) -> str:
    return LETTERS[position].upper()


def _noun(trait: TraitSpec) -> str:
    return trait.name.replace("_", " ").replace("-", " ")


def _more(trait: TraitSpec) -> str:
    return "more" if trait.polarity == "positive" else "less"


def preference_title(trait: TraitSpec, k: int) -> str:
    """The overall question, in the trait's preferred direction. Arbitrary trait names cannot
    be inflected, so without an adjective the name is used as a noun."""
    if k == 2:
        if trait.adjective:
            return f"Which response is {_more(trait)} {trait.adjective}?"
        return f"Which response shows {_more(trait)} {_noun(trait)}?"
    first = "most" if trait.polarity == "positive" else "least"
    if trait.adjective:
        return f"Rank the responses, {first} {trait.adjective} first"
    return f"Rank the responses by {_noun(trait)}, {first} first"


def preference_description(trait: TraitSpec) -> str:
    better = f"{_more(trait).capitalize()} {trait.adjective or _noun(trait)} is better."
    return _clip(f"{trait.description} {better}", ARGILLA_DESCRIPTION_MAX)


def rating_ask(trait: TraitSpec, position: int) -> str:
    """The rating question alone, in the trait's own direction: "How sycophantic is response A?"."""
    letter = _letter(position)
    if trait.adjective:
        return f"How {trait.adjective} is response {letter}?"
    return f"How much {_noun(trait)} does response {letter} show?"


def rating_title(trait: TraitSpec, position: int) -> str:
    """A rating question that says what its ends mean: Argilla shows a rating's options as
    bare numbers and its description only as a tooltip, so the title carries the anchors."""
    asked = rating_ask(trait, position)
    scale = trait.scale
    low = scale.labels.get(scale.min, "least")
    high = scale.labels.get(scale.max, "most")
    titled = f"{asked} ({scale.min} = {low} … {scale.max} = {high})"
    if len(titled) <= ARGILLA_TITLE_MAX:
        return titled
    return f"{asked} ({scale.min} = least … {scale.max} = most)"


def rating_description(trait: TraitSpec) -> str:
    anchors = "; ".join(f"{p}: {text}" for p, text in sorted(trait.scale.labels.items()))
    return _clip(anchors or trait.description, ARGILLA_DESCRIPTION_MAX)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Argilla 2.8's web UI renders a custom field by pasting the whole record, as JSON, into a
# <script> tag of the field's iframe (`const record = ...`, via String.replace, which also
# expands `$&`, `$'`, ...), then pastes the template after it at a `#TEMPLATE#` marker. That
# iframe is same-origin with the app. So a record of a dataset with a custom field must hold
# no text that could end that script (`</script`, `<!--`), expand in the replace (`$`) or
# fake the marker (`#`): every text we send is HTML-escaped here, and the template inserts it
# with Handlebars' triple braces, which show the escaped text literally.
_SCRIPT_SAFE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "$": "&#36;", "#": "&#35;"})


def script_safe(text: str) -> str:
    """`text` as HTML that shows it literally: no `<` or `$`, and `#` only in `&#NN;`."""
    return text.translate(_SCRIPT_SAFE)


def side_by_side_template(k: int) -> str:
    """The Handlebars template of the ``responses`` field: k columns, one per response."""
    return (
        "<style>"
        ".tf-columns{display:grid;grid-template-columns:repeat("
        f"{k},minmax(0,1fr));gap:16px;align-items:start}}"
        ".tf-response{border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:8px 12px}"
        ".tf-response h4{margin:0 0 8px}"
        ".tf-text{white-space:pre-wrap;overflow-wrap:anywhere}"
        "</style>"
        '<div class="tf-columns">'
        "{{#each record.fields.responses.items}}"
        '<section class="tf-response"><h4>{{this.title}}</h4>'
        '<div class="tf-text">{{{this.text}}}</div></section>'
        "{{/each}}"
        "</div>"
    )


PROMPT_TEMPLATE = (
    "<style>.tf-text{white-space:pre-wrap;overflow-wrap:anywhere}</style>"
    '<div class="tf-text">{{{record.fields.prompt.text}}}</div>'
)


def shown_responses(fields: Mapping[str, Any], k: int) -> list[str | None]:
    """The response texts a record shows, in its order, in either layout."""
    items = fields.get(RESPONSES_FIELD)
    if isinstance(items, dict):
        texts = [item.get("text") for item in items.get("items") or []]
        texts += [None] * (k - len(texts))
        return [html.unescape(t) if isinstance(t, str) else None for t in texts[:k]]
    return [fields.get(response_field(i)) for i in range(k)]


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


def trait_rubric(spec: TraitSpec) -> str:
    """One trait's part of the guidelines (markdown): direction, definition, rubric, scale."""
    direction = "more is better" if spec.polarity == "positive" else "less is better"
    anchors = "".join(
        f"\n- **{point}**: {text}" for point, text in sorted(spec.scale.labels.items())
    )
    return (
        f"## {spec.name} ({direction})\n\n{spec.description}\n\n{spec.guidelines.strip()}\n\n"
        f"Scale: {spec.scale.min} (least) to {spec.scale.max} (most).{anchors}"
    )


@dataclass(frozen=True)
class DatasetLayout:
    """The questions of one Argilla dataset: one task trait, k candidates, rated traits."""

    name: str
    trait: str
    k: int
    rated_traits: tuple[str, ...]  # the task trait first, then the other rated traits
    display: Layout = "stacked"

    @classmethod
    def for_tasks(
        cls, template: str, tasks: Sequence[ComparisonTask], display: Layout = "stacked"
    ) -> DatasetLayout:
        """The layout asking everything these tasks (same trait and k) need."""
        trait, k = tasks[0].trait, len(tasks[0].candidate_ids)
        others = sorted({t for task in tasks for t in task.rated_traits} - {trait})
        return cls(dataset_name(template, trait, k), trait, k, (trait, *others), display)

    @property
    def field_names(self) -> list[str]:
        """The record fields this layout shows."""
        if self.display == "side-by-side":
            return [PROMPT_FIELD, RESPONSES_FIELD]
        return [PROMPT_FIELD, *self.response_fields]

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

    def guidelines(self, traits: Mapping[str, TraitSpec], min_submitted: int = 1) -> str:
        """The dataset guidelines: the rubric of every trait the dataset asks about, and what
        the team progress bar counts."""
        spec = traits[self.trait]
        asked = preference_title(spec, self.k)
        parts = [
            f"# {self.trait}: compare {self.k} responses\n\n"
            f"Read the prompt and the {self.k} responses, then answer *{asked}* "
            + (
                "(or *tie* when you cannot tell them apart)."
                if self.k == 2
                else "(equal ranks mean a tie)."
            )
            + " Ratings per response are optional; a suggested rating comes from a model and "
            "may be wrong. Responses are shown in random order."
        ]
        if min_submitted > 1:
            # Argilla's team progress counts completed records only: it reads 0% until
            # some record has all its answers, however many answers were submitted.
            parts[0] += (
                f"\n\nEach record is answered by {min_submitted} annotators. The team progress "
                f"counts a record as completed once {min_submitted} answers are submitted; your "
                "own submitted count is shown beside it."
            )
        parts += [trait_rubric(traits[name]) for name in self.rated_traits]
        return "\n\n".join(parts)


@dataclass
class RecordDraft:
    """One task as an Argilla record, with suggestions keyed by question name (the server
    wants question ids; the backend resolves them). `order` is the candidate ids behind
    response_a, response_b, ...: kept in the store, never sent."""

    external_id: str
    fields: dict[str, Any]  # str per field when stacked, a JSON object per field side by side
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
    fields: dict[str, Any]
    if layout.display == "side-by-side":
        # Plain escaped text, never markup: see `script_safe`.
        fields = {
            PROMPT_FIELD: {"text": script_safe(render_prompt(members[0].prompt))},
            RESPONSES_FIELD: {
                "items": [
                    {"title": f"Response {_letter(i)}", "text": script_safe(c.response)}
                    for i, c in enumerate(members)
                ]
            },
        }
    else:
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
    if layout.display == "side-by-side":
        # Metadata travels in the same record JSON as the fields.
        metadata["source"] = [script_safe(v) for v in metadata["source"]]
        if models:
            metadata["model"] = [script_safe(v) for v in models]
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
