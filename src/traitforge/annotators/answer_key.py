"""An answer key: what simulated annotators answer on a workspace without gold labels.

A JSON Lines file kept outside the workspace (so the workspace stays gold-free), one
candidate per line, its values per trait:

    {"prompt": "...", "response": "...", "values": {"sycophancy": 1, "honesty": 4}}

A line matches a candidate by prompt and response text: the prompt as text or as chat
messages, compared the way candidates' prompt ids hash it (a declared prompt group plays no
part), the response exactly. Values are ratings on the trait's own scale, in the trait's own
direction like `Candidate.gold`: for a negative-polarity trait a high value is the unwanted
end, and polarity turns it into a preference. Simulated annotators answer from these values
with the same noise and biases as from gold (`traitforge.annotators.simulated`); a task with a
candidate the key has no value for is left unanswered, never invented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from traitforge.curation.sources.jsonl import jsonl_rows
from traitforge.errors import InputError, TraitforgeError, short_repr
from traitforge.schemas import Candidate, ChatMessage, TraitSpec
from traitforge.schemas.records import Prompt, prompt_hash

EXAMPLE = '{"prompt": ..., "response": ..., "values": {"<trait>": <rating>}}'
_HINT = "or remove the line"


class AnswerKeyError(TraitforgeError):
    """An answer key file cannot be used as a whole."""


@dataclass(frozen=True)
class AnswerKey:
    path: Path
    entries: Mapping[tuple[str, str], Mapping[str, float]]  # (prompt id, response) -> values

    def values(self, candidate: Candidate) -> Mapping[str, float]:
        """The key's values for a candidate; empty when the key does not hold it."""
        return self.entries.get((prompt_hash(candidate.prompt), candidate.response), {})

    def covers(self, trait: str, candidates: Sequence[Candidate]) -> bool:
        """Whether the key holds a value on `trait` for every one of `candidates`."""
        return all(trait in self.values(c) for c in candidates)


def rating(trait: TraitSpec, value: float) -> int:
    """A key's value as the point on the trait's scale an annotator clicks (values are
    checked to lie on the scale when the key is read)."""
    return int(min(max(round(value), trait.scale.min), trait.scale.max))


def load_answer_key(path: Path, traits: Sequence[TraitSpec]) -> AnswerKey:
    """Read and check an answer key against the config's traits. Raises InputError naming the
    file, line and field of the first bad line, AnswerKeyError for a file without answers."""
    specs = {t.name: t for t in traits}
    entries: dict[tuple[str, str], dict[str, float]] = {}
    lines: dict[tuple[str, str], int] = {}  # first line of each candidate, for conflicts
    for number, row in jsonl_rows(path, hint=_HINT, example=EXAMPLE):
        if isinstance(row, InputError):
            raise row
        key, values = _line(row, path, number, specs)
        held = entries.setdefault(key, {})
        first = lines.setdefault(key, number)
        for name, value in values.items():
            if name in held and held[name] != value:
                raise InputError(
                    path,
                    number,
                    f"values.{name}",
                    expected=f"the value line {first} gives this prompt and response "
                    f"({held[name]:g})",
                    received=f"{value:g}",
                    fix="keep one value per candidate and trait",
                )
            held[name] = value
    if not entries:
        raise AnswerKeyError(f"{path} holds no answers; write one {EXAMPLE} per line")
    return AnswerKey(path=path, entries=entries)


def _line(
    row: Mapping[str, Any], path: Path, number: int, specs: Mapping[str, TraitSpec]
) -> tuple[tuple[str, str], dict[str, float]]:
    def fail(field: str, expected: str, received: object, fix: str) -> InputError:
        return InputError(path, number, field, expected, short_repr(received), fix)

    unknown = sorted(set(row) - {"prompt", "response", "values"})
    if unknown:
        raise fail(
            unknown[0],
            "only the fields prompt, response and values",
            row[unknown[0]],
            f"remove '{unknown[0]}' (a line is {EXAMPLE})",
        )
    prompt = _prompt(row.get("prompt"))
    if prompt is None:
        raise fail(
            "prompt",
            "the prompt as text, or a list of {role, content} chat messages",
            row.get("prompt"),
            "write the prompt exactly as the candidates were ingested or generated with",
        )
    response = row.get("response")
    if not isinstance(response, str) or not response.strip():
        raise fail(
            "response", "the response as non-empty text", response, "write the response text"
        )
    raw = row.get("values")
    if not isinstance(raw, dict) or not raw:
        raise fail(
            "values",
            'an object of trait name -> rating, e.g. {"honesty": 4}',
            raw,
            "give at least one trait's value",
        )
    values: dict[str, float] = {}
    for name, value in raw.items():
        spec = specs.get(name)
        if spec is None:
            raise fail(
                f"values.{name}",
                f"a trait of the config ({', '.join(sorted(specs))})",
                name,
                "fix the trait's name, or add the trait to the config's traits",
            )
        if value is None:
            continue  # no value for this trait: its tasks stay unanswered
        low, high = spec.scale.min, spec.scale.max
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or not low <= value <= high
        ):
            raise fail(
                f"values.{name}",
                f"a rating on {name}'s scale ({low}..{high}) in the trait's own direction "
                f"(higher = more {name})",
                value,
                "write the rating an annotator would give, or null when it is not known",
            )
        values[name] = float(value)
    return (prompt_hash(prompt), response), values


def _prompt(value: Any) -> Prompt | None:
    if isinstance(value, str):
        return value if value.strip() else None
    if not isinstance(value, list) or not value:
        return None
    try:
        return [ChatMessage.model_validate(m) for m in value]
    except ValidationError:
        return None
