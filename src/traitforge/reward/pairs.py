"""Preference pairs as the reward stage reads them: from an exported dataset, a JSONL file
or the workspace store.

Every form reduces to `RewardPair`: text or chat prompt, the two responses as text, the trait
and the pair's confidence. A conversational export stores each response as a one-message list;
it is unwrapped here so every later step sees plain response text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitforge.curation.sources.jsonl import jsonl_rows
from traitforge.errors import InputError, TraitforgeError, short_repr
from traitforge.reporting import fmt_counts

if TYPE_CHECKING:
    from traitforge.schemas import PreferencePair

Prompt = str | tuple[tuple[str, str], ...]  # text, or (role, content) messages
SAME_TEXT = "chosen == rejected"
_PAIR_EXAMPLE = '{"prompt": ..., "chosen": ..., "rejected": ...}'


class PairsError(TraitforgeError):
    """Pairs cannot be read from where the user pointed."""


@dataclass(frozen=True)
class RewardPair:
    prompt: Prompt
    chosen: str
    rejected: str
    trait: str | None = None
    confidence: float | None = None
    pair_id: str | None = None
    origin: str | None = None  # 'gold' or 'judgements' in traitforge exports


def prompt_as_text(prompt: Prompt) -> str:
    """A chat rendered as 'role: content' lines, for tokenizers without a chat template."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{role}: {content}" for role, content in prompt)


def as_reward_prompt(prompt: str | Sequence[Any]) -> Prompt:
    """A candidate's prompt (text, or ChatMessage records) in the form the encoder reads."""
    if isinstance(prompt, str):
        return prompt
    return tuple((m.role, m.content) for m in prompt)


def from_preference_pairs(pairs: Iterable[PreferencePair]) -> list[RewardPair]:
    """Pairs of the workspace store (e.g. its held-out gold pairs) as reward pairs."""
    return [
        RewardPair(
            prompt=as_reward_prompt(p.prompt),
            chosen=p.chosen,
            rejected=p.rejected,
            trait=p.trait,
            confidence=p.confidence,
            pair_id=p.id,
            origin=p.origin,
        )
        for p in pairs
    ]


def load_pairs(location: Path, split: str = "test") -> list[RewardPair]:
    """A JSONL file of prompt/chosen/rejected (optional trait), a saved DatasetDict (its
    `split`), or a saved Dataset."""
    if location.is_file():
        return _read_jsonl(location)
    if not location.is_dir():
        raise PairsError(
            f"{location}: no such file or folder. Give a JSONL file of prompt/chosen/rejected "
            "rows or a dataset folder written by `traitforge export`"
        )
    dataset = _load_from_disk(location)
    if not hasattr(dataset, "keys"):
        pairs = dataset_pairs(dataset, str(location))
        if not pairs:
            raise PairsError(
                f"{location} holds no pairs; export more judgements, or give a JSONL file of "
                "prompt/chosen/rejected rows"
            )
        return pairs
    if split not in dataset:
        raise PairsError(
            f"{location} has no split {split!r}; it has {sorted(dataset)}. Pass --split"
        )
    pairs = dataset_pairs(dataset[split], f"{location}[{split}]")
    if not pairs:
        sizes = {name: len(dataset[name]) for name in dataset}
        others = [name for name, size in sizes.items() if size]
        fix = f"pass --split {others[0]}" if others else "point at a folder that holds pairs"
        raise empty_split_error(location, split, sizes, f"export more judgements, or {fix}")
    return pairs


def empty_split_error(location: Path, split: str, sizes: Mapping[str, int], fix: str) -> PairsError:
    """The error for a split that is missing or has no rows; `sizes` are the splits there are."""
    there = fmt_counts(sizes, empty="")
    return PairsError(
        f"{location} has no pairs in its {split!r} split (pairs per split: {there}): {fix}"
    )


def load_splits(location: Path) -> dict[str, list[RewardPair]]:
    """Every split of an exported DatasetDict, e.g. {'train': [...], 'test': [...]}; a split
    without rows is an empty list."""
    dataset = _load_from_disk(location)
    if not hasattr(dataset, "keys"):
        raise PairsError(
            f"{location} holds a single Dataset; training needs the train/test DatasetDict "
            "that `traitforge export` writes"
        )
    return {name: dataset_pairs(dataset[name], f"{location}[{name}]") for name in dataset}


def _load_from_disk(location: Path) -> Any:
    from datasets import load_from_disk

    try:
        return load_from_disk(str(location))
    except FileNotFoundError as e:
        raise PairsError(
            f"{location} is not a saved dataset ({e}). Point at the folder `traitforge export` "
            "printed (e.g. WORKSPACE/exports/latest) or at a JSONL file"
        ) from e
    except IndexError:
        # `datasets` saves a split without rows as zero shards unless told `num_shards`, and
        # then fails to concatenate zero tables when it loads them: read those splits as empty
        return _load_with_empty_splits(location)


def _load_with_empty_splits(location: Path) -> Any:
    from datasets import DatasetDict

    listing = location / "dataset_dict.json"
    if not listing.is_file():
        return _load_split(location)
    names = json.loads(listing.read_text(encoding="utf-8"))["splits"]
    return DatasetDict({name: _load_split(location / name) for name in names})


def _load_split(folder: Path) -> Any:
    from datasets import Dataset, DatasetInfo

    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    if state.get("_data_files"):
        return Dataset.load_from_disk(str(folder))
    features = DatasetInfo.from_directory(str(folder)).features
    return Dataset.from_dict({name: [] for name in features or {}}, features=features)


def dataset_pairs(dataset: Any, where: str) -> list[RewardPair]:
    missing = {"prompt", "chosen", "rejected"} - set(dataset.column_names)
    if missing:
        raise PairsError(
            f"{where}: columns {sorted(missing)} are missing; a preference dataset needs "
            "prompt, chosen and rejected (TRL's explicit-prompt format)"
        )
    return [_pair(row, where, f"row {i}") for i, row in enumerate(dataset)]


def _read_jsonl(path: Path) -> list[RewardPair]:
    pairs = []
    for number, row in jsonl_rows(path, hint="or remove the line", example=_PAIR_EXAMPLE):
        if isinstance(row, InputError):
            raise row
        pairs.append(_pair(row, str(path), number))
    if not pairs:
        raise PairsError(f"{path} holds no pairs; write one JSON object per line")
    return pairs


def _pair(row: dict[str, Any], where: str, line: int | str) -> RewardPair:
    def fail(field: str, expected: str, fix: str) -> InputError:
        return InputError(where, line, field, expected, short_repr(row.get(field)), fix)

    prompt = _prompt(row.get("prompt"))
    if prompt is None:
        raise fail("prompt", "a string or a list of {role, content} messages", "add the prompt")
    sides = []
    for field in ("chosen", "rejected"):
        text = _response(row.get(field))
        if text is None:
            raise fail(field, "a non-empty string or one assistant message", f"fill '{field}'")
        sides.append(text)
    trait = row.get("trait")
    if trait is not None and not (isinstance(trait, str) and trait):
        raise fail("trait", "a trait name", "write the trait's name or leave the field out")
    confidence = row.get("confidence")
    if confidence is not None and (
        isinstance(confidence, bool)
        or not (isinstance(confidence, int | float) and 0.0 <= confidence <= 1.0)
    ):
        raise fail("confidence", "a number in [0, 1]", "fix the value or leave the field out")
    pair_id = row.get("pair_id")
    if pair_id is not None and not isinstance(pair_id, str):
        raise fail("pair_id", "a string", "write the id as a string or leave the field out")
    return RewardPair(
        prompt=prompt,
        chosen=sides[0],
        rejected=sides[1],
        trait=trait,
        confidence=None if confidence is None else float(confidence),
        pair_id=pair_id,
        origin=row.get("origin") if isinstance(row.get("origin"), str) else None,
    )


def _prompt(value: Any) -> Prompt | None:
    if isinstance(value, str):
        return value
    messages = _messages(value)
    return tuple(messages) if messages else None


def _response(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    messages = _messages(value)
    if messages and len(messages) == 1 and messages[0][0] == "assistant" and messages[0][1].strip():
        return messages[0][1]
    return None


def _messages(value: Any) -> list[tuple[str, str]] | None:
    if not isinstance(value, list) or not value:
        return None
    out = []
    for message in value:
        if not isinstance(message, dict):
            return None
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            return None
        out.append((role, content))
    return out


def traits_of(pairs: Sequence[RewardPair]) -> list[str]:
    return sorted({p.trait for p in pairs if p.trait})


def usable_pairs(pairs: Sequence[RewardPair]) -> tuple[list[RewardPair], dict[str, int]]:
    """The pairs a reward can be trained or scored on, and how many were skipped, by reason.

    A pair whose sides are the same text (up to surrounding whitespace, as the exporter
    compares them) has no preferred side: any reward ties on it, so it would only pull
    accuracy toward 50% and teach nothing.
    """
    kept = [p for p in pairs if p.chosen.strip() != p.rejected.strip()]
    skipped = len(pairs) - len(kept)
    return kept, {SAME_TEXT: skipped} if skipped else {}


def no_usable_pairs(pairs: int, skipped: Mapping[str, int], task: str) -> PairsError:
    """The error when skipping left nothing to `task` (e.g. 'evaluate')."""
    if not pairs:
        return PairsError(f"no pairs to {task}")
    reasons = fmt_counts(skipped, "{n} {name}", empty="")
    which = "the only pair was" if pairs == 1 else f"all {pairs} were"
    return PairsError(
        f"no pairs to {task}: {which} skipped ({reasons}); a pair needs two different "
        "responses. Fix or drop those rows, or export the pairs again with `traitforge export`"
    )
