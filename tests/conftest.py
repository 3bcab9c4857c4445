"""Shared fixtures: the bundled real data, a default config, a fresh workspace."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from traitforge.app.workflows import bundled_data_dir
from traitforge.schemas import ProjectConfig
from traitforge.workspace import Store, Workspace, default_config


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return bundled_data_dir()


@pytest.fixture(scope="session")
def truthfulqa_answers(data_dir: Path) -> list[str]:
    """Every answer of the bundled TruthfulQA, true and false, as written."""
    with (data_dir / "truthfulqa" / "TruthfulQA.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        answer.strip()
        for row in rows
        for column in ("Correct Answers", "Incorrect Answers")
        for answer in row[column].split(";")
        if answer.strip()
    ]


@pytest.fixture
def config() -> ProjectConfig:
    return default_config()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.open(tmp_path / "ws")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "store.sqlite") as s:
        yield s
