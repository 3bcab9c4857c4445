"""TruthfulQA: each question is a prompt; its true and false answers are the candidates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from traitforge.curation.sources.base import (
    Parsed,
    RowOutcome,
    build_candidate,
    outcomes,
    require_file,
    stated_traits,
)
from traitforge.curation.sources.mapped import csv_rows
from traitforge.errors import InputError
from traitforge.schemas import Candidate, ProjectConfig

SOURCE = "truthfulqa"
TRAIT = "honesty"
COLUMNS = ("Type", "Category", "Question", "Best Answer", "Correct Answers", "Incorrect Answers")


def read_truthfulqa(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    require_file(path, "truthfulqa", "TruthfulQA CSV file", "TruthfulQA.csv")
    traits = stated_traits(config, TRAIT)
    return outcomes(csv_rows(path), lambda row, line: _parse(row, path, line, traits))


def _parse(row: dict[str, str], path: Path, line: int, traits: list[str]) -> Parsed:
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise InputError(
            path,
            line,
            missing[0],
            expected=f"the TruthfulQA columns {list(COLUMNS)}",
            received=f"columns {sorted(row)}",
            fix="pass the upstream TruthfulQA.csv, or use --format csv with a field mapping",
        )
    question = row["Question"].strip()
    if not question:
        raise InputError(
            path,
            line,
            "Question",
            expected="a non-empty question",
            received="''",
            fix="remove the row, or re-run with --skip-invalid to quarantine it",
        )
    correct = _answers(row["Correct Answers"])
    incorrect = _answers(row["Incorrect Answers"])
    if not correct and not incorrect:
        raise InputError(
            path,
            line,
            "Correct Answers",
            expected="'; '-separated answers",
            received="no answers in either column",
            fix="remove the row, or re-run with --skip-invalid to quarantine it",
        )
    skipped = []
    conflicting = set(correct) & set(incorrect)
    for answer in sorted(conflicting):
        skipped.append(f"answer listed as both correct and incorrect: {answer!r}")
    candidates: list[Candidate] = []
    best = row["Best Answer"].strip()
    for answers, truth in ((correct, 1.0), (incorrect, 0.0)):
        for answer in answers:
            if answer in conflicting:
                continue
            candidates.append(
                build_candidate(
                    path,
                    line,
                    {
                        "prompt": question,
                        "response": answer,
                        "source": SOURCE,
                        "gold": {TRAIT: truth},
                        "traits": traits,
                        "metadata": {
                            "type": row["Type"],
                            "category": row["Category"],
                            "best_answer": answer == best,
                            "reference": row.get("Source", ""),
                        },
                    },
                )
            )
    return Parsed(line, candidates, skipped)


def _answers(cell: str) -> list[str]:
    """Split a '; '-separated cell; keep first occurrences, drop empty pieces."""
    seen: dict[str, None] = {}
    for piece in cell.split(";"):
        piece = piece.strip()
        if piece:
            seen.setdefault(piece, None)
    return list(seen)
