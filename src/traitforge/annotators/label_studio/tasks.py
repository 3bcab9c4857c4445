"""A store task as a Label Studio task: its data and the scorers' pre-annotations.

Pure mapping, no I/O (the backend imports and fetches over REST).

- ``data`` holds what the config shows: ``prompt`` and ``response_a`` .. in the task's shown
  order (`presented_order`, the Argilla rule: a hash of the task id, so every copy of a task
  shows the same order to every annotator and overlapping answers stay comparable), the
  `List` items a Ranker places for k > 2 (each the response's letter and its first words), and
  traitforge's keys: the task id, the copy, the trait and the round. Nothing tells gold checks
  apart (see `traitforge.annotators.records`): in Label Studio's open-source edition every user
  can browse the Data Manager, so neither `gold_check` nor the selection reason is sent.
- ``predictions``: one per scorer, `model_version` = the scorer's versioned key, holding the
  ratings it suggests (its probability mapped to the trait's scale, then to stars) and, when
  it scored every shown response on the task trait, the preference those scores imply.
- ``external_id`` (`data.traitforge_id`): Label Studio tasks have no external id of their own,
  so the key the backend looks tasks up by travels in the data: the task id, or for a
  per-annotator copy a hash of the task id and the copy. Re-pushing the same task builds the
  same payload, so a push that lists the ids present first never duplicates one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from traitforge.annotators.label_studio.labeling import (
    LIST,
    TIE,
    TIE_CHOICE,
    LabelingConfig,
    ranker_value,
)
from traitforge.annotators.records import (
    PREFERENCE,
    PROMPT_FIELD,
    RANKING,
    presented_order,
    scale_value,
)
from traitforge.schemas import Candidate, ComparisonTask, Prompt, Suggestion, TraitSpec
from traitforge.schemas.hashing import content_hash

EXTERNAL_ID = "traitforge_id"
EXCERPT = 160  # characters of a response on its Ranker item: enough to tell which one it is
TASK_ID = "traitforge_task_id"
COPY = "traitforge_copy"


def external_id(task_id: str, copy: str | None = None) -> str:
    """The Label Studio task's key: the task id, or one per copy of it."""
    return task_id if copy is None else content_hash("label-studio-copy", task_id, copy)


def plain_prompt(prompt: Prompt) -> str:
    """A prompt as plain text (a `Text` tag shows no markup): chat turns under role names."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n---\n\n".join(f"{m.role.capitalize()}:\n{m.content}" for m in prompt)


@dataclass(frozen=True)
class TaskPayload:
    """One task as Label Studio imports it; `order` is the candidate ids behind
    response_a, response_b, ... (also derivable from the task: see `presented_order`)."""

    external_id: str
    order: list[str]
    data: dict[str, Any]
    predictions: list[dict[str, Any]]

    def as_import(self) -> dict[str, Any]:
        """The item of Label Studio's task import (`POST /api/projects/{id}/import`)."""
        return {"data": self.data, "predictions": self.predictions}


def task_payload(
    task: ComparisonTask,
    candidates: Mapping[str, Candidate],
    traits: Mapping[str, TraitSpec],
    config: LabelingConfig,
    copy: str | None = None,
) -> TaskPayload:
    """The payload of a task (or of its copy for one annotator). Raises KeyError naming a
    candidate the store lacks, ValueError when the task does not fit the config."""
    layout = config.layout
    if task.trait != layout.trait or len(task.candidate_ids) != layout.k:
        raise ValueError(
            f"task {task.id} asks about {task.trait!r} over {len(task.candidate_ids)} "
            f"responses, but project {layout.name} asks about {layout.trait!r} over {layout.k}"
        )
    order = presented_order(task)
    members = [candidates[c] for c in order]
    key = external_id(task.id, copy)
    data: dict[str, Any] = {PROMPT_FIELD: plain_prompt(members[0].prompt)}
    for text, candidate in zip(config.texts, members, strict=True):
        data[text] = candidate.response
    if layout.k > 2:
        data[LIST] = [
            {"id": text, "title": f"Response {text[-1].upper()}", "body": _excerpt(c.response)}
            for text, c in zip(config.texts, members, strict=True)
        ]
    data.update({EXTERNAL_ID: key, TASK_ID: task.id, "trait": task.trait, "round": task.round})
    if copy is not None:
        data[COPY] = copy
    return TaskPayload(key, order, data, predictions(task, order, traits, config))


def _region(
    task: ComparisonTask, scorer: str, control: str, to_name: str, kind: str, value: Any
) -> dict[str, Any]:
    # Stable region ids, so a re-built payload is identical.
    return {
        "id": content_hash("region", task.id, scorer, control, length=10),
        "from_name": control,
        "to_name": to_name,
        "type": kind,
        "value": value,
    }


def predictions(
    task: ComparisonTask,
    order: Sequence[str],
    traits: Mapping[str, TraitSpec],
    config: LabelingConfig,
) -> list[dict[str, Any]]:
    """One prediction per scorer with suggestions for this task, by scorer key."""
    position = {c: i for i, c in enumerate(order)}
    by_scorer: dict[str, list[Suggestion]] = {}
    for s in task.suggestions:
        if s.candidate_id in position and s.trait in traits:
            by_scorer.setdefault(s.scorer, []).append(s)
    ratings = {(c.trait, c.position): c for c in config.controls.values() if c.type == "rating"}
    out = []
    for scorer, suggestions in sorted(by_scorer.items()):
        result = []
        for s in suggestions:
            control = ratings.get((s.trait, position[s.candidate_id]))
            if control is None:  # a trait this project does not rate
                continue
            spec = traits[s.trait]
            star = scale_value(spec, s.value) - spec.scale.min + 1
            (to_name,) = control.to_names
            result.append(_region(task, scorer, control.name, to_name, "rating", {"rating": star}))
        result += _preference(scorer, task, suggestions, position, traits[task.trait], config)
        if result:
            out.append({"model_version": scorer, "result": result})
    return out


def _excerpt(text: str, limit: int = EXCERPT) -> str:
    """The start of a response, for the Ranker's item (the editor shows it as plain text)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _preference(
    scorer: str,
    task: ComparisonTask,
    suggestions: Sequence[Suggestion],
    position: Mapping[str, int],
    trait: TraitSpec,
    config: LabelingConfig,
) -> list[dict[str, Any]]:
    """The preference a scorer's task-trait values imply, when it scored every response."""
    value = {s.candidate_id: s.value for s in suggestions if s.trait == task.trait}
    if set(value) != set(position):
        return []
    shown = sorted(position, key=position.__getitem__)
    preferred = [trait.preference(value[c]) for c in shown]
    if config.layout.k == 2:
        if preferred[0] == preferred[1]:
            return [_region(task, scorer, TIE, PROMPT_FIELD, "choices", {"choices": [TIE_CHOICE]})]
        side = "left" if preferred[0] > preferred[1] else "right"
        return [_region(task, scorer, PREFERENCE, PREFERENCE, "pairwise", {"selected": side})]
    # Most preferred in the first place; equal scores share a place (a tie).
    distinct = sorted(set(preferred), reverse=True)
    ranks = [(text, distinct.index(p) + 1) for text, p in zip(config.texts, preferred, strict=True)]
    return [_region(task, scorer, RANKING, LIST, "ranker", ranker_value(ranks))]
