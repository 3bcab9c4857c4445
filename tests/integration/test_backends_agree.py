"""The same tasks through Argilla and through Label Studio, answered by the same simulated
annotators, give the same exported pairs, byte for byte.

Both workspaces hold the same real TruthfulQA candidates (the bundled file, through its
reader) and the same tasks (same ids); each is pushed to its real server (the session's
embedded Argilla 2.8.0; a Label Studio 1.23.2 started for this module), answered by sim-1 and
sim-2 with the same simulation seed, pulled and exported with the same export settings.

Compared: every file of the export (each split's Arrow data and metadata, the JSONL copies,
the card and provenance.json), byte for byte. The one thing allowed to differ is the value of
annotation.backend in the config that the card and the provenance record; nothing else there
names the backend, a time or a path.

Pairs (Pairwise and its Tie choice) and triples (a Ranker whose places hold ties, as equal
ranks do on Argilla) are both compared; the gold answers tie the two false answers of a
triple, so the triples' comparison covers ties.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.label_studio import running_server, truthfulqa_triples
from traitforge.annotators.server import owner_connection
from traitforge.app import workflows
from traitforge.schemas import ArgillaConfig, ComparisonTask, Judgement, LabelStudioConfig
from traitforge.workspace import Workspace, dump_config

pytestmark = pytest.mark.integration

# Where an export records the backend: the config in the card and in provenance.json.
BACKEND_LINES = {"README.md": "  backend: {}\n", "provenance.json": '"backend": "{}",'}


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_server(tmp_path_factory.mktemp("backends-agree") / "label-studio-ws") as server:
        yield server


@pytest.fixture
def servers(argilla_server, label_studio, monkeypatch):
    """Both servers, reached as existing ones through their environment variables."""
    owner = owner_connection(argilla_server[0])
    monkeypatch.setenv("ARGILLA_API_URL", owner.api_url)
    monkeypatch.setenv("ARGILLA_API_KEY", owner.api_key)
    monkeypatch.setenv("LABEL_STUDIO_URL", label_studio[0])
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", label_studio[1])


def _workspace(root: Path, backend: str, tag: str, data_dir: Path, k: int):
    """A saved workspace on `backend` holding the questions' candidates and one task of `k`
    of them per question; project names carry `tag`, so each test has its own."""
    ws = Workspace.open(root)
    name = f"agree{tag}-{{trait}}-k{{k}}"
    annotation = ws.config.annotation.model_copy(
        update={
            "backend": backend,
            "argilla": ArgillaConfig(dataset=name, min_submitted=2),
            "label_studio": LabelStudioConfig(project=name, min_submitted=2),
        }
    )
    export = ws.config.export.model_copy(
        update={
            "origin": "judgements",
            "strategy": "all-pairs",
            "copies": ["jsonl"],
            "test_fraction": 0.4,
        }
    )
    config = ws.config.model_copy(update={"annotation": annotation, "export": export})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    ws = Workspace.open(root)
    questions = truthfulqa_triples(data_dir, ws.config, 8)
    tasks = [
        ComparisonTask(
            prompt_id=q[0].prompt_id,
            candidate_ids=[c.id for c in q[:k]],
            trait="honesty",
            reason="uncertainty",
        )
        for q in questions
    ]
    with ws.store() as store, store.transaction():
        store.add_candidates(c for q in questions for c in q)
        store.add_tasks(tasks)
    return ws, tasks


def _annotate(ws: Workspace) -> list[Judgement]:
    """Push, two simulated annotators, pull: the workspace's judgements by id."""
    assert workflows.push(ws).sent == 8
    simulated = workflows.simulate(ws, 2)
    assert simulated.answered == {"sim-1": 8, "sim-2": 8} and not simulated.skipped
    pulled = workflows.pull(ws)
    assert (pulled.new, pulled.changed) == (16, 0) and not pulled.dropped
    with ws.store() as store:
        return sorted(store.judgements(), key=lambda j: j.id)


def _files(out: Path, backend: str) -> dict[str, bytes]:
    """Every file of an export by relative path, with the backend's name taken out of the
    one line of the card and of provenance.json that records it."""
    files = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for name, line in BACKEND_LINES.items():
        text = files[name].decode("utf-8")
        assert text.count(line.format(backend)) == 1, name
        files[name] = text.replace(line.format(backend), line.format("BACKEND")).encode("utf-8")
    return files


def _answers(judgements: list[Judgement]) -> list[tuple]:
    """What a judgement answers, without what only one backend records (seconds spent,
    submission time, whether a suggestion was kept)."""
    return [
        (j.id, j.task_id, j.annotator_id, j.ranking, j.ratings, j.rationale, j.simulated)
        for j in judgements
    ]


def _pair(tmp_path: Path, data_dir: Path, k: int):
    tag = uuid.uuid4().hex[:6]
    argilla, tasks = _workspace(tmp_path / "argilla", "argilla", tag, data_dir, k)
    label_studio, same = _workspace(tmp_path / "label-studio", "label-studio", tag, data_dir, k)
    assert [t.id for t in tasks] == [t.id for t in same]
    return argilla, label_studio, tasks


def _exports_alike(tmp_path: Path, argilla: Workspace, label_studio: Workspace) -> None:
    workflows.export(argilla, tmp_path / "out-argilla")
    workflows.export(label_studio, tmp_path / "out-label-studio")
    expected = _files(tmp_path / "out-argilla", "argilla")
    assert expected["jsonl/train.jsonl"] and expected["jsonl/test.jsonl"]
    assert {"train/data-00000-of-00001.arrow", "test/state.json"} <= set(expected)
    assert _files(tmp_path / "out-label-studio", "label-studio") == expected


def test_pairs_export_byte_for_byte_alike(tmp_path, data_dir, servers):
    argilla, label_studio, _ = _pair(tmp_path, data_dir, k=2)
    judged = _annotate(argilla)
    assert _answers(judged) == _answers(_annotate(label_studio))
    # Not all one behaviour and not all one side: the comparison covers varied answers.
    assert len({j.rationale for j in judged}) > 1
    assert len({j.ranking[0].candidate_id for j in judged if j.ranking[0].rank == 1}) > 1
    _exports_alike(tmp_path, argilla, label_studio)


def test_triples_with_ties_export_byte_for_byte_alike(tmp_path, data_dir, servers):
    argilla, label_studio, _ = _pair(tmp_path, data_dir, k=3)
    judged = _annotate(argilla)
    assert _answers(judged) == _answers(_annotate(label_studio))
    # Gold ties the two false answers: the comparison covers ties and strict orders.
    ranks = [len({r.rank for r in j.ranking}) for j in judged]
    assert 2 in ranks or 1 in ranks
    _exports_alike(tmp_path, argilla, label_studio)
