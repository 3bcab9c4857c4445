"""Bundled TruthfulQA repeated under numbered question variants: benchmark-sized real data."""

from __future__ import annotations

import csv
from pathlib import Path

from traitforge.app.workflows import bundled_data_dir


def truthfulqa_rows() -> list[dict[str, str]]:
    source = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
    with source.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


ANSWER_COLUMNS = ("Best Answer", "Correct Answers", "Incorrect Answers")


def tiled_truthfulqa(folder: Path, copies: int, answers: bool = False) -> Path:
    """A TruthfulQA CSV with every question `copies` times ("... [0]", "... [1]", ...); with
    `answers`, every answer numbered too, so that no two candidates share a text (a cache hit
    would make a size look cheaper than new data of that size is)."""
    rows = truthfulqa_rows()
    path = folder / ("TruthfulQA-xa.csv" if answers else "TruthfulQA-x.csv")
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for copy in range(copies):
            for row in rows:
                tiled = {**row, "Question": f"{row['Question']} [{copy}]"}
                if answers:
                    for column in ANSWER_COLUMNS:
                        tiled[column] = "; ".join(
                            f"{a.strip()} [{copy}]" for a in row[column].split(";") if a.strip()
                        )
                writer.writerow(tiled)
    return path
