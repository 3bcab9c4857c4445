"""The annotation backend protocol and how a workspace gets its backend, without a server."""

from __future__ import annotations

import inspect

import pytest

from traitforge.annotators.argilla import ArgillaBackend
from traitforge.annotators.argilla.push import push_stage
from traitforge.annotators.backends import (
    SIMULATED_PREFIX,
    AnnotationBackend,
    backend_for,
    is_simulated,
)
from traitforge.app import workflows
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, ComparisonTask
from traitforge.workspace import Workspace, dump_config
from traitforge.workspace.config_file import load_config

Q = "Where did fortune cookies originate?"


def _members(protocol: type) -> set[str]:
    return {name for name in vars(protocol) if not name.startswith("_")}


def test_argilla_is_the_default_backend_and_has_every_member_of_the_protocol(workspace):
    backend = backend_for(workspace)
    assert isinstance(backend, ArgillaBackend)
    members = _members(AnnotationBackend)
    assert members == {
        "overlap",
        "serve",
        "push",
        "pull",
        "pushed_datasets",
        "progress",
        "simulate",
    }
    for name in members - {"overlap"}:
        wanted = inspect.signature(getattr(AnnotationBackend, name)).parameters
        assert list(inspect.signature(getattr(ArgillaBackend, name)).parameters) == list(wanted)
    assert backend.overlap == workspace.config.annotation.argilla.min_submitted


def test_an_unknown_backend_is_refused_naming_the_field(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("annotation:\n  backend: prodigy\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"annotation\.backend.*'argilla'.*'label-studio'"):
        load_config(path)


def test_the_simulated_prefix_marks_simulated_accounts():
    assert is_simulated(f"{SIMULATED_PREFIX}1") and not is_simulated("alice")


def _tasks(workspace: Workspace) -> list[ComparisonTask]:
    members = [
        Candidate(prompt=Q, response=r, source="truthfulqa")
        for r in ("The precise origin of fortune cookies is unclear", "China")
    ]
    task = ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        reason="uncertainty",
    )
    with workspace.store() as store, store.transaction():
        store.add_candidates(members)
        store.add_tasks([task])
    return [task]


def test_progress_without_a_push_is_empty_and_contacts_nothing(workspace, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    _tasks(workspace)
    with workspace.store() as store:
        assert backend_for(workspace).pushed_datasets(store) == []
    assert workflows.annotation_progress(workspace) == []


def test_progress_of_a_pushed_workspace_says_why_when_its_server_is_down(tmp_path, monkeypatch):
    monkeypatch.delenv("ARGILLA_API_URL", raising=False)
    monkeypatch.delenv("ARGILLA_API_KEY", raising=False)
    root = tmp_path / "ws"
    workspace = Workspace.open(root)
    argilla = workspace.config.annotation.argilla.model_copy(update={"dataset": "d-{trait}-k{k}"})
    annotation = workspace.config.annotation.model_copy(update={"argilla": argilla})
    config = workspace.config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    workspace = Workspace.open(root)
    [task] = _tasks(workspace)
    with workspace.store() as store, store.transaction():
        store.mark_done(push_stage("d-honesty-k2"), [task.id])
    with workspace.store() as store:
        assert backend_for(workspace).pushed_datasets(store) == ["d-honesty-k2"]
    state = workflows.annotation_progress(workspace)
    assert isinstance(state, str) and "not running" in state and "traitforge serve" in state
