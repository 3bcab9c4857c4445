"""Bundled TruthfulQA repeated under numbered question variants: benchmark-sized real data."""

from __future__ import annotations

import csv
from pathlib import Path

from traitforge.app.workflows import bundled_data_dir


def truthfulqa_rows() -> list[dict[str, str]]:
    source = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
    with source.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def tiled_truthfulqa(folder: Path, copies: int) -> Path:
    """A TruthfulQA CSV with every question `copies` times ("... [0]", "... [1]", ...)."""
    rows = truthfulqa_rows()
    path = folder / "TruthfulQA-x.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for copy in range(copies):
            for row in rows:
                writer.writerow({**row, "Question": f"{row['Question']} [{copy}]"})
    return path
