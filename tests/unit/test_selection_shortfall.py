"""Why a round got fewer tasks than its budget: the prompts left open, counted from what
selection is given, or the selector's own reason; carried by `curate`'s report and printed."""

from __future__ import annotations

import numpy as np
import pytest

from traitforge.curation import pipeline
from traitforge.curation.pipeline import CurationState, SelectStage
from traitforge.curation.scorers import CandidateFeatures
from traitforge.schemas import Candidate, ComparisonTask, Flag, SelectionConfig

PROMPTS = ("Can pigs fly?", "Is the Earth flat?", "Do vaccines cause autism?")
ANSWERS = ("No, they cannot.", "Yes, in winter.", "Only in cartoons.")
EXHAUSTED = (
    "no open prompt left: of the 3 prompts with eligible candidates, 3 have "
    "curation.selection.tasks_per_prompt (1) tasks already; ingest or generate more "
    "candidates, or raise curation.selection.tasks_per_prompt"
)


def _candidates(per_prompt: tuple[int, ...]) -> list[list[Candidate]]:
    return [
        [Candidate(prompt=p, response=a, source="t") for a in ANSWERS[:n]]
        for p, n in zip(PROMPTS, per_prompt, strict=True)
    ]


def _task(members: list[Candidate], round_: int = 1) -> ComparisonTask:
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        reason="uncertainty",
        round=round_,
    )


def _state(groups: list[list[Candidate]], flags: list[Flag] | None = None) -> CurationState:
    candidates = [c for g in groups for c in g]
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2, len(candidates), 8))
    vectors /= np.linalg.norm(vectors, axis=-1, keepdims=True)
    features = CandidateFeatures(
        candidates=candidates,
        prompt_vectors=vectors[0],
        response_vectors=vectors[1],
        embedding_model="test",
    )
    return CurationState(
        candidates=candidates, features=features, flags=flags or [], duplicates=[], scores=[]
    )


def _stage(config, existing, budget, round_=2, **selection) -> SelectStage:
    curation = config.curation.model_copy(update={"selection": SelectionConfig(**selection)})
    return SelectStage(config.model_copy(update={"curation": curation}), existing, budget, round_)


def test_an_exhausted_pool_says_no_open_prompt_is_left(config):
    groups = _candidates((2, 2, 2))
    state = _state(groups)
    _stage(config, [_task(g) for g in groups], budget=5).process(state)
    assert state.tasks == []
    assert state.selection_note == EXHAUSTED


def test_each_reason_that_closes_a_prompt_is_counted_once(config):
    asked, flagged, full = _candidates((2, 2, 3))
    # every pair of the first prompt asked; the second has one eligible candidate left; the
    # third has its tasks_per_prompt (2) tasks already, with one of its pairs still unasked
    existing = [_task(asked), _task(full[:2]), _task(full[1:])]
    state = _state([asked, flagged, full], [Flag(candidate_id=flagged[0].id, reason="language")])
    _stage(config, existing, budget=3, tasks_per_prompt=2).process(state)
    assert state.tasks == []
    assert state.selection_note == (
        "no open prompt left: of the 3 prompts with eligible candidates, 1 has fewer than k (2) "
        "eligible candidates, 1 has curation.selection.tasks_per_prompt (2) tasks already and "
        "1 has every group of 2 candidates asked already; ingest or generate more candidates, "
        "or raise curation.selection.tasks_per_prompt"
    )


def test_a_short_round_says_how_many_prompts_are_open(config):
    groups = _candidates((2, 2, 2))
    state = _state(groups)
    _stage(config, [_task(groups[0])], budget=5).process(state)
    assert len(state.tasks) == 2
    assert state.selection_note == (
        "only 2 prompts open for 5 tasks wanted: of the 3 prompts with eligible candidates, "
        "1 has curation.selection.tasks_per_prompt (1) tasks already"
    )


def test_a_round_that_fills_its_budget_has_no_note(config):
    groups = _candidates((2, 2, 2))
    state = _state(groups)
    # a task already in round 2 counts toward its budget of 3: two more fill it
    _stage(config, [_task(groups[0], round_=2)], budget=3).process(state)
    assert len(state.tasks) == 2
    assert state.selection_note is None


class _Unconvinced:
    """A selector whose strategy finds every open option uninformative."""

    def __init__(self, note: str | None) -> None:
        if note is not None:
            self.note = note

    def process(self, inputs, budget, round_):
        return []


def test_the_selectors_own_reason_is_passed_on(config):
    state = _state(_candidates((2, 2, 2)))
    stage = _stage(config, [], budget=2)
    stage.selector = _Unconvinced("nothing scores above chance: the models agree on every answer")
    stage.process(state)
    assert state.selection_note == "nothing scores above chance: the models agree on every answer"


def test_a_selector_without_a_note_still_gets_a_reason(config):
    state = _state(_candidates((2, 2, 2)))
    stage = _stage(config, [], budget=2)
    stage.selector = _Unconvinced(None)  # no `note` attribute at all
    stage.process(state)
    assert state.selection_note == "0 of the 2 tasks wanted were selected from 3 open prompts"


@pytest.mark.slow  # the real embedding model
def test_curate_reports_the_note_and_the_command_prints_it(store, config, tmp_path, capsys):
    from traitforge.cli.render import print_curation

    with store.transaction():
        store.add_candidates(c for g in _candidates((2, 2, 2)) for c in g)

    def curate(round_: int) -> pipeline.CurationReport:
        return pipeline.curate(
            store, config, tmp_path / "classifiers", tmp_path / "e.sqlite", 5, round_
        )

    first = curate(1)
    assert first.tasks_in_round == 3
    assert first.selection_note == "only 3 prompts open for 5 tasks wanted"
    second = curate(2)
    assert second.tasks_in_round == 0 and second.new_tasks == {}
    assert second.selection_note == EXHAUSTED
    print_curation(second)
    assert f"Fewer tasks than wanted: {EXHAUSTED}" in " ".join(capsys.readouterr().out.split())
