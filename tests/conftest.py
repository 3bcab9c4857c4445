"""Shared fixtures: the bundled real data, a default config, a fresh workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from traitforge.schemas import ProjectConfig
from traitforge.workflows import bundled_data_dir
from traitforge.workspace import Store, Workspace, default_config


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return bundled_data_dir()


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
