"""An answer key lets simulated annotators answer a workspace without gold: lines match
candidates by prompt and response text, values are ratings in the trait's own direction (its
polarity makes the preference), a bad line names file, line and field, and a task the key
lacks is left unanswered and counted once, never invented."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from traitforge.annotators.answer_key import AnswerKey, AnswerKeyError, load_answer_key
from traitforge.annotators.argilla.simulate import _answer_page, _Queue
from traitforge.annotators.backends import SimulationReport
from traitforge.annotators.records import (
    PREFERENCE,
    TIE,
    DatasetLayout,
    presented_order,
    response_field,
    response_judgement,
)
from traitforge.annotators.simulated import SimulatedAnnotator
from traitforge.errors import InputError
from traitforge.schemas import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    SimulationConfig,
    TraitSpec,
)

PROMPT = "I read that the Great Wall is visible from the Moon, right?"
FLATTERING = "Yes, great point, you clearly know your facts!"
CORRECTING = "No: it is far too narrow to see from the Moon with the naked eye."
CHAT = [{"role": "user", "content": PROMPT}]
SYCOPHANCY = TraitSpec(
    name="sycophancy",
    description="Agreeing with a user's false belief instead of correcting it.",
    guidelines="Rate how much the response flatters a false belief (5 = entirely).",
    polarity="negative",
)


@pytest.fixture
def traits(config) -> dict[str, TraitSpec]:
    return {t.name: t for t in (*config.traits, SYCOPHANCY)}


def _write(path: Path, *rows: Any) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


def _key(tmp_path: Path, traits: dict[str, TraitSpec], *rows: Any) -> AnswerKey:
    return load_answer_key(_write(tmp_path / "key.jsonl", *rows), list(traits.values()))


def test_lines_match_candidates_by_prompt_and_response_text(tmp_path, traits):
    key = _key(
        tmp_path,
        traits,
        {"prompt": PROMPT, "response": FLATTERING, "values": {"sycophancy": 5}},
        {"prompt": CHAT, "response": CORRECTING, "values": {"sycophancy": 1, "honesty": None}},
        # a second line for the same candidate adds a trait
        {"prompt": PROMPT, "response": FLATTERING, "values": {"honesty": 2, "sycophancy": 5}},
    )
    # The source and a declared prompt group play no part; chat messages match as messages.
    text = Candidate(prompt=PROMPT, response=FLATTERING, source="team", prompt_id="group-7")
    chat = Candidate(
        prompt=[ChatMessage(role="user", content=PROMPT)], response=CORRECTING, source="x"
    )
    assert key.values(text) == {"sycophancy": 5.0, "honesty": 2.0}
    assert key.values(chat) == {"sycophancy": 1.0}  # null: no value
    # The same response to the prompt as text is another candidate, as its prompt id says.
    assert key.values(Candidate(prompt=PROMPT, response=CORRECTING, source="x")) == {}
    assert key.values(Candidate(prompt=PROMPT, response=CORRECTING + " ", source="x")) == {}
    assert key.covers("sycophancy", [text, chat]) and not key.covers("honesty", [text, chat])


OK = {"prompt": PROMPT, "response": FLATTERING, "values": {"sycophancy": 5}}


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"line 2: expected one JSON object per line, got malformed JSON"),
        ("[1, 2]", r"line 2: expected a JSON object per line, got list.*\{\"prompt\": \.\.\."),
        ({**OK, "gold": 1}, r"line 2, field 'gold': expected only the fields prompt, response"),
        ({**OK, "prompt": ""}, r"field 'prompt': expected the prompt as text, or a list of"),
        (
            {**OK, "prompt": [{"role": "robot", "content": "hi"}]},
            r"field 'prompt': expected the prompt as text, or a list of \{role, content\}",
        ),
        ({**OK, "response": 3}, r"field 'response': expected the response as non-empty text"),
        ({**OK, "values": []}, r"field 'values': expected an object of trait name -> rating"),
        (
            {**OK, "values": {"sycophncy": 5}},
            r"field 'values.sycophncy': expected a trait of the config \(.*honesty.*"
            r"sycophancy\), got 'sycophncy'. Fix: fix the trait's name, or add the trait",
        ),
        (
            {**OK, "values": {"sycophancy": 0.5}},
            r"field 'values.sycophancy': expected a rating on sycophancy's scale \(1\.\.5\) in "
            r"the trait's own direction \(higher = more sycophancy\), got 0.5",
        ),
        ({**OK, "values": {"sycophancy": True}}, r"values.sycophancy.*rating.*got True"),
        ({**OK, "values": {"sycophancy": "5"}}, r"values.sycophancy.*rating.*got '5'"),
        (
            {**OK, "values": {"sycophancy": 4}},
            r"line 2, field 'values.sycophancy': expected the value line 1 gives this prompt "
            r"and response \(5\), got 4",
        ),
    ],
)
def test_a_bad_line_names_file_line_and_field(tmp_path, traits, line, match):
    path = _write(tmp_path / "key.jsonl", OK, line)
    with pytest.raises(InputError, match=match) as error:
        load_answer_key(path, list(traits.values()))
    assert str(error.value).startswith(f"{path}, line 2")


def test_a_key_without_answers_says_what_a_line_holds(tmp_path, traits):
    path = _write(tmp_path / "key.jsonl", "", "  ")
    with pytest.raises(AnswerKeyError, match=r"key.jsonl holds no answers; write one \{\"prompt"):
        load_answer_key(path, list(traits.values()))


def _faithful(traits, key):
    none = SimulationConfig(noise=0.0, position_bias=0.0, length_bias=0.0)
    return SimulatedAnnotator("sim-1", none, traits, key)


def _task(members, trait="sycophancy", rated=()):
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait=trait,
        rated_traits=list(rated),
        reason="uncertainty",
    )


def test_answers_follow_the_key_in_the_traits_direction_not_gold(tmp_path, traits):
    # Gold on the candidates says the opposite: with a key, the key is what is answered.
    flattering, correcting = (
        Candidate(prompt=PROMPT, response=r, source="team", gold={"sycophancy": g})
        for r, g in ((FLATTERING, 1.0), (CORRECTING, 5.0))
    )
    key = _key(
        tmp_path,
        traits,
        {"prompt": PROMPT, "response": FLATTERING, "values": {"sycophancy": 5, "honesty": 2}},
        {"prompt": PROMPT, "response": CORRECTING, "values": {"sycophancy": 1, "honesty": 5}},
    )
    by_id = {c.id: c for c in (flattering, correcting)}
    task = _task([flattering, correcting], rated=["honesty"])
    order = presented_order(task)
    layout = DatasetLayout.for_tasks("t-{trait}-k{k}", [task])
    annotator = _faithful(traits, key)
    assert annotator.knows(task, [flattering, correcting])
    values, why = annotator.answer(task, order, by_id, layout)
    judgement = response_judgement(task, order, values, "sim-1", None)
    assert why == "answer key"
    # sycophancy is negative: the response rated 1 (least sycophantic) is preferred
    assert [r.candidate_id for r in judgement.ranking if r.rank == 1] == [correcting.id]
    assert judgement.ratings == {
        flattering.id: {"sycophancy": 5.0, "honesty": 2.0},
        correcting.id: {"sycophancy": 1.0, "honesty": 5.0},
    }
    # without the key, the same annotator answers from gold: the other way round
    values, why = _faithful(traits, None).answer(task, order, by_id, layout)
    best = response_judgement(task, order, values, "sim-1", None).ranking
    assert why == "gold" and [r.candidate_id for r in best if r.rank == 1] == [flattering.id]


def test_equal_values_are_a_tie_and_a_missing_value_is_not_known(tmp_path, traits):
    a, b, c = (
        Candidate(prompt=PROMPT, response=r, source="team")
        for r in (FLATTERING, CORRECTING, "Some say so.")
    )
    key = _key(
        tmp_path,
        traits,
        {"prompt": PROMPT, "response": FLATTERING, "values": {"sycophancy": 3}},
        {"prompt": PROMPT, "response": CORRECTING, "values": {"sycophancy": 3, "honesty": 4}},
    )
    tie = _task([a, b])
    values, _ = _faithful(traits, key).answer(
        tie, presented_order(tie), {x.id: x for x in (a, b)}, DatasetLayout.for_tasks("t", [tie])
    )
    assert values[PREFERENCE] == {"value": TIE}
    annotator = _faithful(traits, key)
    assert not annotator.knows(_task([a, c]), [a, c])  # c is not in the key
    assert not annotator.knows(_task([a, b], trait="honesty"), [a, b])  # a has no honesty
    assert _faithful(traits, None).knows(_task([a, c]), [a, c])  # gold: random, as before


class _FakeAnnotatorAPI:
    """One annotator's view of a dataset: its pending records, and the answers it posts."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.posted: list[dict[str, Any]] = []

    def request(self, method: str, path: str, params=None, json=None) -> Any:
        if path.endswith("/records/search"):
            offset, limit = params["offset"], params["limit"]
            return {"items": [{"record": r} for r in self.records[offset : offset + limit]]}
        self.posted += json["items"]
        # As the server does: a submitted record is no longer pending for this annotator.
        answered = {item["record_id"] for item in json["items"]}
        self.records = [r for r in self.records if str(r["id"]) not in answered]
        return {"items": [{} for _ in json["items"]]}


def test_a_record_the_key_lacks_is_left_unanswered_and_counted_once(tmp_path, traits):
    known = [Candidate(prompt=PROMPT, response=r, source="team") for r in (FLATTERING, CORRECTING)]
    unknown = [Candidate(prompt="Is 7 even?", response=r, source="team") for r in ("Yes", "No")]
    key = _key(
        tmp_path,
        traits,
        {"prompt": PROMPT, "response": FLATTERING, "values": {"sycophancy": 5}},
        {"prompt": PROMPT, "response": CORRECTING, "values": {"sycophancy": 1}},
        {"prompt": "Is 7 even?", "response": "Yes", "values": {"sycophancy": 4}},
    )
    tasks = {t.id: t for t in (_task(known), _task(unknown))}
    candidates = {c.id: c for c in (*known, *unknown)}
    layout = DatasetLayout.for_tasks("t-{trait}-k{k}", list(tasks.values()))

    def record(task: ComparisonTask) -> dict[str, Any]:
        fields = {
            response_field(i): candidates[c].response for i, c in enumerate(presented_order(task))
        }
        return {"id": f"r-{task.id}", "external_id": task.id, "fields": fields}

    report = SimulationReport(url="http://argilla")
    unanswerable: dict[str, set[str]] = {}
    apis = []
    for name in ("sim-1", "sim-2"):  # both annotators meet the record the key lacks
        api = _FakeAnnotatorAPI([record(t) for t in tasks.values()])
        annotator = SimulatedAnnotator(name, SimulationConfig(), traits, key)
        queue = _Queue(api, annotator, "d", layout, {}, lambda _task_id: True)
        while not queue.done:
            _answer_page(queue, tasks, candidates, report, unanswerable)
        apis.append(api)
    assert unanswerable == {
        "a candidate has no sycophancy value in the answer key": {f"r-{_task(unknown).id}"}
    }
    assert [[item["record_id"] for item in api.posted] for api in apis] == [
        [f"r-{_task(known).id}"]
    ] * 2
    assert report.answered == {"sim-1": 1, "sim-2": 1}
