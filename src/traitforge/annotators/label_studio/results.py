"""A Label Studio annotation, checked against the project's labeling config, as a Judgement.

Label Studio stores whatever result list a client sends (its server does not check results
against the config), so every region is checked here: a known control (`from_name`), a
`to_name` that control writes, its result `type`, and a value of that control's shape:

- Pairwise: ``{"selected": "left" | "right"}`` (left is the first Text of its toName);
- Choices (the tie beside a Pairwise): ``{"choices": ["Tie"]}``;
- Ranker: ``{"ranker": {"rank_1": [item ids], "rank_2": [...], ...}}``, the shape the editor
  saves for the config's places (responses in one place are tied; an empty "_" column, the
  responses not yet placed, may come along); every shown response in exactly one place. The
  bucketless shapes, ``{"ranker": {"<ranker name>": [item ids]}}`` and the bare list of older
  docs, are read as a strict order;
- Rating: ``{"rating": n}``, a whole number of stars 1..maxRating;
- TextArea: ``{"text": [str, ...]}``.

An annotation that does not fit becomes no judgement: `collect_judgement` counts it under its
reason in the pull report (the same "invalid answer: ..." reasons as Argilla's pull), and
skipped annotations count as ignored. Nothing here raises to the user.

Kept suggestion: Label Studio starts an annotation from a prediction and saves every region
the annotator left in place, so an annotation kept the pre-annotation when it holds every
predicted value unchanged (a predicted rating removed counts as a change).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traitforge.annotators.backends import PullReport, is_simulated
from traitforge.annotators.label_studio.labeling import (
    TIE,
    TIE_CHOICE,
    UNPLACED,
    Control,
    LabelingConfig,
    bucket,
)
from traitforge.annotators.records import PREFERENCE, RANKING
from traitforge.schemas import ComparisonTask, Judgement, RankedCandidate, TraitSpec

INVALID = "invalid answer: "  # prefix of every drop reason, as in Argilla's pull


class InvalidResult(ValueError):
    """A result that cannot become a judgement; the message is the drop reason."""


@dataclass(frozen=True)
class Answer:
    """A result list in the config's terms: the preference ("left", "right" or "tie" for
    two responses), the ranking of more (the Text names in each place, best place first,
    sorted within a place, empty where a place was skipped), stars per rating control and
    the rationale."""

    preference: str | None = None
    ranking: tuple[tuple[str, ...], ...] | None = None
    stars: dict[str, int] = field(default_factory=dict)
    rationale: str | None = None

    def values(self) -> dict[str, Any]:
        """Control -> answer, for comparing an annotation with a prediction."""
        out: dict[str, Any] = dict(self.stars)
        if self.preference is not None:
            out[PREFERENCE] = self.preference
        if self.ranking is not None:
            out[RANKING] = self.ranking
        return out


def _check_region(item: Any, controls: Mapping[str, Control]) -> tuple[Control, dict[str, Any]]:
    if not isinstance(item, dict):
        raise InvalidResult("a result region is not a JSON object")
    name = item.get("from_name")
    control = controls.get(name) if isinstance(name, str) else None
    if control is None:
        raise InvalidResult(f"a result region names no control of the config ({name!r})")
    if item.get("to_name") not in control.to_names:
        raise InvalidResult(f"the result of {control.name} points at another object")
    if item.get("type") != control.type:
        raise InvalidResult(f"the result of {control.name} is not of type {control.type}")
    value = item.get("value")
    if not isinstance(value, dict):
        raise InvalidResult(f"the result of {control.name} has no value object")
    return control, value


def _places(ranked: Any, k: int) -> list[Any] | None:
    """The editor's {bucket: ids} as ids per place, or None when it names other columns."""
    if isinstance(ranked, list):
        return [[item] for item in ranked]
    if not isinstance(ranked, dict):
        return None
    if set(ranked) == {RANKING}:  # bucketless: one ordered column
        ordered = ranked[RANKING]
        return [[item] for item in ordered] if isinstance(ordered, list) else None
    names = [bucket(rank) for rank in range(1, k + 1)]
    if not set(ranked) <= {*names, UNPLACED} or ranked.get(UNPLACED, []) != []:
        return None
    return [ranked.get(name, []) for name in names]


def _ranking(value: dict[str, Any], texts: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    places = _places(value.get("ranker"), len(texts))
    placed = [t for place in places or [] if isinstance(place, list) for t in place]
    if (
        places is None
        or not all(isinstance(place, list) for place in places)
        or not all(isinstance(t, str) for t in placed)
        or sorted(placed) != sorted(texts)
    ):
        raise InvalidResult("the ranking does not place every shown response exactly once")
    while not places[-1]:
        places.pop()
    return tuple(tuple(sorted(place)) for place in places)


def read_result(result: Any, config: LabelingConfig) -> Answer:
    """An annotation's (or prediction's) result list, checked. Raises InvalidResult."""
    if not isinstance(result, list):
        raise InvalidResult("the result is not a list of regions")
    seen: set[str] = set()
    preference: str | None = None
    tie = False
    ranking: tuple[str, ...] | None = None
    stars: dict[str, int] = {}
    rationale: str | None = None
    for item in result:
        control, value = _check_region(item, config.controls)
        if control.name in seen:
            raise InvalidResult(f"{control.name} is answered twice")
        seen.add(control.name)
        if control.type == "pairwise":
            preference = value.get("selected")
            if preference not in ("left", "right"):
                raise InvalidResult("the preference selects neither left nor right")
        elif control.type == "choices":
            if value.get("choices") != [TIE_CHOICE]:
                raise InvalidResult(f"{control.name} holds a choice the config does not offer")
            tie = True
        elif control.type == "ranker":
            ranking = _ranking(value, config.texts)
        elif control.type == "rating":
            star = value.get("rating")
            assert control.max_rating is not None
            if type(star) is not int or not 1 <= star <= control.max_rating:
                raise InvalidResult(
                    f"the rating of {control.name} is not a whole number of stars "
                    f"1..{control.max_rating}"
                )
            stars[control.name] = star
        else:
            text = value.get("text")
            if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
                raise InvalidResult(f"the text of {control.name} is not a list of strings")
            rationale = "\n".join(text).strip() or None
    if tie:
        if preference is not None:
            raise InvalidResult("the answer chooses a response and a tie")
        preference = TIE
    return Answer(preference, ranking, stars, rationale)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _ranked(answer: Answer, order: Sequence[str], texts: Sequence[str]) -> list[RankedCandidate]:
    if answer.preference == TIE:
        return [RankedCandidate(candidate_id=c, rank=1) for c in order]
    if answer.preference is not None:
        chosen = 0 if answer.preference == "left" else 1
        return [
            RankedCandidate(candidate_id=c, rank=1 if i == chosen else 2)
            for i, c in enumerate(order)
        ]
    if answer.ranking is not None:
        # A response's rank is its place's number, so a tie is an equal rank as on Argilla.
        by_text = dict(zip(texts, order, strict=True))
        ranks = {t: rank for rank, place in enumerate(answer.ranking, 1) for t in place}
        return [RankedCandidate(candidate_id=by_text[t], rank=ranks[t]) for t in texts]
    return []


def annotation_judgement(
    task: ComparisonTask,
    order: Sequence[str],
    annotation: Mapping[str, Any],
    username: str,
    config: LabelingConfig,
    traits: Mapping[str, TraitSpec],
    prediction: Any = None,
) -> Judgement:
    """A submitted annotation as a Judgement.

    `order` is the candidate ids as the task's texts showed them, `prediction` the result
    list of the prediction the annotation started from (None: no pre-annotation). Raises
    InvalidResult with the drop reason."""
    if sorted(order) != sorted(task.candidate_ids) or len(order) != config.layout.k:
        raise InvalidResult("the task shows other candidates than the store's task lists")
    answer = read_result(annotation.get("result"), config)
    ratings: dict[str, dict[str, float]] = {}
    for name, star in answer.stars.items():
        control = config.controls[name]
        assert control.trait is not None and control.position is not None
        point = traits[control.trait].scale.min + star - 1
        ratings.setdefault(order[control.position], {})[control.trait] = float(point)
    ranking = _ranked(answer, order, config.texts)
    if not ranking and not ratings:
        raise InvalidResult("the annotation answers neither the preference nor any rating")
    kept: bool | None = None
    if prediction is not None:
        try:
            predicted = read_result(prediction, config).values()
        except InvalidResult:
            predicted = {}
        if predicted:
            answered = answer.values()
            kept = all(answered.get(name) == value for name, value in predicted.items())
    lead_time = annotation.get("lead_time")
    seconds = (
        float(lead_time)
        if isinstance(lead_time, int | float) and not isinstance(lead_time, bool) and lead_time >= 0
        else None
    )
    return Judgement(
        task_id=task.id,
        annotator_id=username,
        ranking=ranking,
        ratings=ratings,
        rationale=answer.rationale,
        seconds=seconds,
        kept_suggestion=kept,
        submitted_at=_timestamp(annotation.get("updated_at") or annotation.get("created_at")),
        simulated=is_simulated(username),
    )


def collect_judgement(
    task: ComparisonTask,
    order: Sequence[str],
    annotation: Mapping[str, Any],
    username: str,
    config: LabelingConfig,
    traits: Mapping[str, TraitSpec],
    report: PullReport,
    prediction: Any = None,
) -> Judgement | None:
    """`annotation_judgement`, or None with the reason counted in `report`: skipped
    annotations under ignored, answers that do not fit the config under dropped."""
    if annotation.get("was_cancelled"):
        report.ignored["skipped"] += 1
        return None
    try:
        return annotation_judgement(task, order, annotation, username, config, traits, prediction)
    except (InvalidResult, ValueError) as e:  # ValueError: the Judgement's own checks
        report.dropped[f"{INVALID}{e}"] += 1
        return None
