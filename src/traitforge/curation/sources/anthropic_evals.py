"""Anthropic advanced-ai-risk evals: the two answer options become two candidates."""

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

SOURCE = "anthropic-evals"
TRAIT = "corrigibility"
FIELDS = ("question", "answer_matching_behavior", "answer_not_matching_behavior")
# Options appear as lines "(A) text"; some questions repeat the block, and the last one counts.
_FIRST_OPTION = re.compile(r"\n[ \t]*\(A\)[ \t]?")
_NEXT_OPTION = re.compile(r"\n[ \t]*\(([B-H])\)[ \t]?")
_LETTER = re.compile(r"^\s*\(([A-H])\)\s*$")
_CHOICES_HEADER = re.compile(r"\s*Choices:\s*$")


def read_anthropic_evals(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    require_file(path, "anthropic-evals", "evals JSONL file", "*.jsonl")
    polarity = config.ingest.anthropic_evals_polarity.get(path.stem)
    if polarity is None:
        raise InputError(
            path,
            None,
            None,
            expected="a file whose corrigible answer is known",
            received=f"file name '{path.stem}' with no polarity in the config",
            fix=f"add `{path.stem}: matching` (or `not-matching`) under "
            "ingest.anthropic_evals_polarity in the config: 'matching' when "
            "answer_matching_behavior is the corrigible answer",
        )
    traits = stated_traits(config, TRAIT)
    return outcomes(jsonl_rows(path), lambda row, line: _parse(row, path, line, polarity, traits))


def _parse(
    row: dict[str, Any], path: Path, line: int, polarity: str, traits: list[str]
) -> Parsed | Skipped:
    for field in FIELDS:
        if not isinstance(row.get(field), str):
            raise InputError(
                path,
                line,
                field,
                expected="a string",
                received="a missing field" if field not in row else short_repr(row[field]),
                fix="pass an advanced-ai-risk evals JSONL file, or re-run with --skip-invalid",
            )
    prompt, options = split_options(row["question"])
    if len(options) < 2:
        raise InputError(
            path,
            line,
            "question",
            expected="a question with '(A) ...' and '(B) ...' options",
            received=f"{len(options)} option(s)",
            fix="correct the question, or re-run with --skip-invalid to quarantine it",
        )
    if not prompt:
        return Skipped(line, "the question has no text before its options")
    letters = {}
    for field in FIELDS[1:]:
        match = _LETTER.match(row[field])
        if not match or match.group(1) not in options:
            raise InputError(
                path,
                line,
                field,
                expected=f"one of the option letters {sorted(options)} like ' (A)'",
                received=short_repr(row[field]),
                fix="correct the answer letter, or re-run with --skip-invalid to quarantine it",
            )
        letters[field] = match.group(1)
    corrigible_field = FIELDS[1] if polarity == "matching" else FIELDS[2]
    candidates = [
        build_candidate(
            path,
            line,
            {
                "prompt": prompt,
                "response": options[letter],
                "source": SOURCE,
                "gold": {TRAIT: 1.0 if field == corrigible_field else 0.0},
                "traits": traits,
                "metadata": {
                    "file": path.stem,
                    "option": letter,
                    "matches_behavior": field == FIELDS[1],
                },
            },
        )
        for field, letter in letters.items()
    ]
    return Parsed(line, candidates)


def split_options(question: str) -> tuple[str, dict[str, str]]:
    """('question without the options block', {'A': text, 'B': text, ...})."""
    starts = list(_FIRST_OPTION.finditer(question))
    if not starts:
        return question.strip(), {}
    start = starts[-1]
    prompt = _CHOICES_HEADER.sub("", question[: start.start()]).strip()
    parts = _NEXT_OPTION.split(question[start.end() :])
    options = {"A": parts[0].strip()}
    for letter, text in zip(parts[1::2], parts[2::2], strict=True):
        options[letter] = text.strip()
    return prompt, options
