"""Where tests find the bundled data and leave what a person should look at."""

from __future__ import annotations

from pathlib import Path

from traitforge.app.workflows import bundled_data_dir

ROOT = Path(__file__).resolve().parents[2]  # the repository
ARTIFACTS = ROOT / "test-artifacts"  # screenshots of rendered reports, kept after the run
TRUTHFULQA = bundled_data_dir() / "truthfulqa" / "TruthfulQA.csv"
