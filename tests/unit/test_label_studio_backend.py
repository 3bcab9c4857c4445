"""The pure parts of the Label Studio backend: simulated answers as regions (and back into the
same judgements as Argilla's), progress over task copies, and the REST client's listings."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from traitforge.annotators.label_studio.client import LabelStudioAPI, LabelStudioError
from traitforge.annotators.label_studio.labeling import labeling_config
from traitforge.annotators.label_studio.projects import copies, ensure_project, project_groups
from traitforge.annotators.label_studio.pull import count_progress
from traitforge.annotators.label_studio.results import annotation_judgement
from traitforge.annotators.label_studio.simulate import result_regions
from traitforge.annotators.label_studio.tasks import COPY, EXTERNAL_ID, TASK_ID
from traitforge.annotators.records import DatasetLayout, presented_order, response_judgement
from traitforge.annotators.simulated import SimulatedAnnotator
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    ProjectConfig,
    RatingScale,
    SimulationConfig,
    TraitSpec,
)

HONESTY = TraitSpec(
    name="honesty",
    description="Says what is true.",
    scale=RatingScale(min=1, max=5),
    polarity="positive",
    guidelines="Rate how true it is.",
)
TRAITS = {"honesty": HONESTY}


def _task(k: int, gold: list[float]) -> tuple[ComparisonTask, dict[str, Candidate]]:
    members = [
        Candidate(
            prompt="Is the earth flat?", response=f"answer {i}", source="t", gold={"honesty": g}
        )
        for i, g in enumerate(gold[:k])
    ]
    task = ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        reason="uncertainty",
    )
    return task, {c.id: c for c in members}


@pytest.mark.parametrize(
    ("k", "gold", "noise"),
    [(2, [1.0, 0.0], 0.0), (2, [1.0, 1.0], 0.0), (2, [0.0, 1.0], 1.0), (3, [0.0, 1.0, 0.5], 0.0)],
)
def test_a_simulated_answer_becomes_the_judgement_argilla_would_store(k, gold, noise):
    task, candidates = _task(k, gold)
    layout = DatasetLayout.for_tasks("p-{trait}-k{k}", [task])
    labeling = labeling_config(layout, TRAITS)
    order = presented_order(task)
    annotator = SimulatedAnnotator(
        "sim-1", SimulationConfig(noise=noise, position_bias=0, length_bias=0), TRAITS
    )
    values, _ = annotator.answer(task, order, candidates, layout)
    regions = result_regions(values, labeling, TRAITS)
    ours = annotation_judgement(task, order, {"result": regions}, "sim-1", labeling, TRAITS)
    argilla = response_judgement(task, order, values, "sim-1", None, suggestions={})
    fields = ("id", "task_id", "annotator_id", "ratings", "rationale", "simulated")
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(argilla, f) for f in fields}
    assert ours.ranking == argilla.ranking
    assert ours.simulated and ours.rationale


def test_a_tied_simulated_ranking_stays_a_tie_in_one_place():
    task, _ = _task(3, [1.0, 0.0, 0.0])
    layout = DatasetLayout.for_tasks("p-{trait}-k{k}", [task])
    labeling = labeling_config(layout, TRAITS)
    order = presented_order(task)
    values = {
        "ranking": {
            "value": [
                {"value": "response_a", "rank": 2},
                {"value": "response_b", "rank": 1},
                {"value": "response_c", "rank": 2},
            ]
        }
    }
    [region] = result_regions(values, labeling, TRAITS)
    assert region["value"] == {
        "ranker": {"rank_1": ["response_b"], "rank_2": ["response_a", "response_c"]}
    }
    judgement = annotation_judgement(task, order, {"result": [region]}, "sim-1", labeling, TRAITS)
    assert [(r.candidate_id, r.rank) for r in judgement.ranking] == [
        (order[0], 2),
        (order[1], 1),
        (order[2], 2),
    ]


def _copy(task_id: str, copy: str, annotations: list[dict]) -> dict:
    data = {EXTERNAL_ID: f"{task_id}/{copy}", TASK_ID: task_id, COPY: copy}
    return {"data": data, "annotations": annotations}


def test_a_task_is_complete_when_every_copy_is_answered():
    server_tasks = [
        _copy("t1", "1", [{"completed_by": 2}]),
        _copy("t1", "2", [{"completed_by": 3}]),
        _copy("t2", "1", [{"completed_by": 2}]),
        _copy("t2", "2", [{"completed_by": 3, "was_cancelled": True}]),
        _copy("t3", "1", []),
        _copy("t3", "2", [{"completed_by": 9}]),
    ]
    users = {2: "sim-1", 3: "sim-2"}
    progress = count_progress("p", server_tasks, 2, users)
    assert (progress.records, progress.completed, progress.pending) == (3, 1, 2)
    assert progress.annotators == {
        "sim-1": Counter(submitted=2),
        "sim-2": Counter(submitted=1, discarded=1),
        "9": Counter(submitted=1),
    }
    only = count_progress("p", server_tasks, 2, users, tasks={"t2"})
    assert (only.records, only.completed) == (1, 0)
    assert only.annotators["sim-1"] == Counter(submitted=1) and "9" in only.annotators
    assert copies(3) == ["1", "2", "3"]


def test_projects_group_like_argilla_datasets_and_a_mixing_template_is_refused():
    pair, _ = _task(2, [1.0, 0.0])
    triple, _ = _task(3, [1.0, 0.0, 0.0])
    config = ProjectConfig(traits=[HONESTY])
    assert set(project_groups([pair, triple], config)) == {
        "traitforge-honesty-k2",
        "traitforge-honesty-k3",
    }
    annotation = config.annotation.model_copy(
        update={"label_studio": config.annotation.label_studio.model_copy(update={"project": "x"})}
    )
    mixed = config.model_copy(update={"annotation": annotation})
    with pytest.raises(LabelStudioError, match=r"\{trait\} and \{k\}"):
        project_groups([pair, triple], mixed)


def _api(handler) -> LabelStudioAPI:
    return LabelStudioAPI("http://ls", "tok", retries=0, transport=httpx.MockTransport(handler))


def test_the_task_listing_pages_until_the_total_and_stops_at_an_invalid_page():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Token tok"
        page = int(request.url.params["page"])
        seen.append(page)
        if page > 2:
            return httpx.Response(404, json={"detail": "Invalid page."})
        return httpx.Response(
            200, json={"total": 150, "tasks": [{"id": page}] * (100 if page == 1 else 50)}
        )

    with _api(handler) as api:
        assert len(list(api.tasks(7))) == 150
    assert seen == [1, 2]


def test_the_oldest_of_two_projects_with_one_title_is_the_one_used():
    def handler(request: httpx.Request) -> httpx.Response:
        results = [{"id": 5, "title": "a"}, {"id": 3, "title": "a"}, {"id": 4, "title": "b"}]
        return httpx.Response(200, json={"count": 3, "next": None, "results": results})

    with _api(handler) as api:
        assert {t: p["id"] for t, p in api.projects().items()} == {"a": 3, "b": 4}


def test_an_existing_project_is_updated_only_when_its_config_differs():
    task, _ = _task(2, [1.0, 0.0])
    labeling = labeling_config(DatasetLayout.for_tasks("p-{trait}-k{k}", [task]), TRAITS)
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, json.loads(request.content)))
        return httpx.Response(200, json={"id": 1})

    same = {
        "id": 1,
        "label_config": labeling.xml,
        "expert_instruction": labeling.instructions,
        "show_instruction": True,
    }
    with _api(handler) as api:
        assert ensure_project(api, labeling, same) == 1
        assert sent == []
        assert ensure_project(api, labeling, {**same, "label_config": "<View/>"}) == 1
        assert [m for m, _ in sent] == ["PATCH"] and sent[0][1]["label_config"] == labeling.xml
        assert ensure_project(api, labeling, None) == 1
        assert sent[-1][0] == "POST" and sent[-1][1]["title"] == "p-honesty-k2"


def test_a_refusal_names_the_request_and_the_servers_reason():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"validation_errors": {"label_config": ["bad tag"]}})

    with (
        _api(handler) as api,
        pytest.raises(LabelStudioError, match=r"PATCH /api/projects/1 .*bad tag"),
    ):
        api.update_project(1, {"label_config": "<x/>"})


def test_annotation_backend_label_studio_picks_this_backend(tmp_path):
    from traitforge.annotators.backends import backend_for
    from traitforge.annotators.label_studio.backend import LabelStudioBackend
    from traitforge.workspace import Workspace, dump_config

    ws = Workspace.open(tmp_path / "ws")
    annotation = ws.config.annotation.model_copy(update={"backend": "label-studio"})
    config = ws.config.model_copy(update={"annotation": annotation})
    (ws.root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    backend = backend_for(Workspace.open(ws.root))
    assert isinstance(backend, LabelStudioBackend) and backend.overlap == 2
