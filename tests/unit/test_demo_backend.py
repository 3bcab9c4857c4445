"""`demo --backend`: the chosen annotation backend is saved in the workspace's config before any
work, keeping every other setting; without the option the config's own backend stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from traitforge.app import workflows
from traitforge.cli import app
from traitforge.errors import ConfigError, TraitforgeError
from traitforge.workspace import Workspace

runner = CliRunner()


def _workspace(root: Path, extra: str = "") -> Workspace:
    config = root / "project.yaml"
    config.write_text(f"annotation:\n  label_studio:\n    min_submitted: 3\n{extra}")
    return Workspace.open(root / "ws", config)


def test_use_backend_saves_the_backend_and_keeps_the_rest(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    assert ws.config.annotation.backend == "argilla"
    chosen = workflows.use_backend(ws, "label-studio")
    assert chosen.config.annotation.backend == "label-studio"
    reopened = Workspace.open(ws.root)  # what every later command reads
    assert reopened.config.annotation.backend == "label-studio"
    assert reopened.config.annotation.label_studio.min_submitted == 3
    assert reopened.config.traits == ws.config.traits


def test_use_backend_with_the_same_backend_writes_nothing(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    saved = ws.root / Workspace.CONFIG_FILE
    before = saved.stat().st_mtime_ns
    assert workflows.use_backend(ws, "argilla") is ws
    assert saved.stat().st_mtime_ns == before


def test_use_backend_refuses_an_unknown_name_and_keeps_the_config(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    saved = ws.root / Workspace.CONFIG_FILE
    before = saved.read_text()
    with pytest.raises(ConfigError, match=r"field 'annotation\.backend'.*'nope'"):
        workflows.use_backend(ws, "nope")
    assert saved.read_text() == before


def _stop_at_ingest(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo stops at its first ingest: what it did before (the backend) is on disk."""

    def stop(*args: object, **kwargs: object) -> None:
        raise TraitforgeError("stopped at ingest")

    monkeypatch.setattr(workflows, "ingest", stop)


@pytest.mark.parametrize(
    ("args", "extra", "expected"),
    [
        (["--backend", "label-studio"], "", "label-studio"),
        (["--backend", "argilla"], "  backend: label-studio\n", "argilla"),
        ([], "  backend: label-studio\n", "label-studio"),  # no option: the config's own
        ([], "", "argilla"),  # the default
    ],
)
def test_demo_saves_the_chosen_backend_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], extra: str, expected: str
) -> None:
    ws = _workspace(tmp_path, extra)
    _stop_at_ingest(monkeypatch)
    result = runner.invoke(app, ["demo", "-w", str(ws.root), *args])
    assert result.exit_code == 1 and "stopped at ingest" in result.stderr, result.output
    assert Workspace.open(ws.root).config.annotation.backend == expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", True),  # per-trait models: the demo adds the shared model's matrix row
        ("reward:\n  models: shared\n", False),  # one model already: no row to add
    ],
)
def test_demo_saves_the_shared_row_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, expected: bool
) -> None:
    ws = _workspace(tmp_path, extra)
    assert ws.config.reward.shared_row is False
    _stop_at_ingest(monkeypatch)
    result = runner.invoke(app, ["demo", "-w", str(ws.root)])
    assert result.exit_code == 1 and "stopped at ingest" in result.stderr, result.output
    reopened = Workspace.open(ws.root)
    assert reopened.config.reward.shared_row is expected
    assert reopened.config.annotation.label_studio.min_submitted == 3  # the rest is kept
    assert ("reward.shared_row: true" in result.stdout) is expected
    # seconds a round: linear rewards on frozen vectors, and nothing to warm-start
    assert reopened.config.reward.method == "frozen-linear"
    assert reopened.config.reward.warm_start is False
    assert "reward.method: frozen-linear" in " ".join(result.stdout.split())


def test_demo_fine_tune_saves_the_method_and_the_warm_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path)
    _stop_at_ingest(monkeypatch)
    result = runner.invoke(app, ["demo", "-w", str(ws.root), "--fine-tune"])
    assert result.exit_code == 1 and "stopped at ingest" in result.stderr, result.output
    reward = Workspace.open(ws.root).config.reward
    assert reward.method == "fine-tune"  # the default already: nothing said about it
    assert "reward.method" not in result.stdout
    assert reward.warm_start is True  # round 2 continues round 1's models
    assert "reward.warm_start: true" in result.stdout


def test_update_config_refuses_a_bad_value_and_keeps_the_config(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    saved = ws.root / Workspace.CONFIG_FILE
    before = saved.read_text()
    with pytest.raises(ConfigError, match=r"reward\.max_length"):
        workflows.update_config(ws, "reward", max_length=3)
    assert saved.read_text() == before
