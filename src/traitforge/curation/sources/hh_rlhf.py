"""Anthropic HH-RLHF: each row is a dialogue pair; the last assistant turns are the candidates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from traitforge.curation.sources.base import (
    Parsed,
    RowOutcome,
    Skipped,
    build_candidate,
    outcomes,
    require_file,
    stated_traits,
)
from traitforge.curation.sources.jsonl import jsonl_rows
from traitforge.errors import InputError, short_repr
from traitforge.schemas import ProjectConfig

SOURCE = "hh-rlhf"
TRAIT = "harmlessness"
_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def read_hh_rlhf(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    require_file(path, "hh-rlhf", "HH-RLHF JSONL file", "*.jsonl.gz")
    traits = stated_traits(config, TRAIT)
    return outcomes(jsonl_rows(path), lambda row, line: _parse(row, path, line, traits))


def split_dialogue(text: str) -> list[dict[str, str]] | None:
    """'\\n\\nHuman: ..\\n\\nAssistant: ..' as chat messages; None when it is not a dialogue."""
    parts = _TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        return None
    return [
        {"role": _ROLES[speaker], "content": content.strip()}
        for speaker, content in zip(parts[1::2], parts[2::2], strict=True)
    ]


def _parse(row: dict[str, Any], path: Path, line: int, traits: list[str]) -> Parsed | Skipped:
    dialogues = {}
    for side in ("chosen", "rejected"):
        value = row.get(side)
        turns = split_dialogue(value) if isinstance(value, str) else None
        if turns is None or turns[-1]["role"] != "assistant":
            raise InputError(
                path,
                line,
                side,
                expected="a dialogue of '\\n\\nHuman:' / '\\n\\nAssistant:' turns ending with "
                "the assistant",
                received="a missing field" if side not in row else short_repr(value),
                fix="pass an HH-RLHF JSONL file, or re-run with --skip-invalid",
            )
        dialogues[side] = turns
    chosen, rejected = dialogues["chosen"], dialogues["rejected"]
    if chosen[:-1] != rejected[:-1]:
        return Skipped(line, "chosen and rejected differ before the last assistant turn")
    if chosen[-1] == rejected[-1]:
        return Skipped(line, "chosen and rejected responses are identical")
    if not chosen[-1]["content"] or not rejected[-1]["content"]:
        return Skipped(line, "a last assistant turn is empty")
    candidates = [
        build_candidate(
            path,
            line,
            {
                "prompt": chosen[:-1],
                "response": turns[-1]["content"],
                "source": SOURCE,
                "gold": {TRAIT: 1.0 if side == "chosen" else 0.0},
                "traits": traits,
                "metadata": {"side": side, "row": line},
            },
        )
        for side, turns in dialogues.items()
    ]
    return Parsed(line, candidates)
