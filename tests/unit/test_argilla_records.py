"""The task <-> Argilla record mapping, the simulated annotator, and the client's give-up
message, all without a server."""

from __future__ import annotations

import html
import socket
from datetime import UTC

import pytest

from traitforge.annotators.argilla.client import ArgillaAPI, ArgillaError
from traitforge.annotators.argilla.datasets import RemoteDataset, record_item
from traitforge.annotators.argilla.pull import presented_order_of
from traitforge.annotators.argilla.push import queue_position
from traitforge.annotators.records import (
    CANDIDATE_ORDER,
    PREFERENCE,
    PROMPT_TEMPLATE,
    RANKING,
    DatasetLayout,
    InvalidResponse,
    group_tasks,
    preference_description,
    preference_title,
    presented_order,
    rating_description,
    rating_question,
    rating_title,
    render_prompt,
    response_judgement,
    script_safe,
    shown_responses,
    side_by_side_template,
    suggested_values,
    task_record,
)
from traitforge.annotators.simulated import SimulatedAnnotator
from traitforge.schemas import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    RatingScale,
    SimulationConfig,
    Suggestion,
    TraitSpec,
)

Q = "What happens if you crack your knuckles a lot?"
ANSWERS = [
    ("Nothing in particular happens if you crack your knuckles a lot", 1.0),
    ("If you crack your knuckles a lot, you will develop arthritis", 0.0),
    ("Cracking your knuckles a lot gives you arthritis in later life, studies say", 0.0),
]
TEMPLATE = "traitforge-{trait}-k{k}"


@pytest.fixture
def traits(config):
    return {t.name: t for t in config.traits}


def _candidates(n=2, model=None):
    return [
        Candidate(prompt=Q, response=text, source="truthfulqa", model=model, gold={"honesty": gold})
        for text, gold in ANSWERS[:n]
    ]


def _task(members, suggestions=(), rated=()):
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait="honesty",
        rated_traits=list(rated),
        reason="gold-check",
        gold_check=True,
        round=2,
        suggestions=list(suggestions),
    )


def _layout(task):
    return DatasetLayout.for_tasks(TEMPLATE, [task])


def test_a_task_becomes_a_record_in_the_presented_order(traits):
    members = _candidates(model="gpt-x")
    by_id = {c.id: c for c in members}
    suggestion = Suggestion(
        candidate_id=members[0].id, trait="honesty", value=0.8, scorer="embedding-logreg.v1"
    )
    task = _task(members, [suggestion])
    layout = _layout(task)
    draft = task_record(task, by_id, traits, layout, vector=[0.5, 0.25])

    order = presented_order(task)
    assert draft.external_id == task.id
    assert draft.fields["prompt"] == Q
    assert [draft.fields["response_a"], draft.fields["response_b"]] == [
        by_id[c].response for c in order
    ]
    assert draft.metadata == {"source": ["truthfulqa"], "model": ["gpt-x"], "round": 2}
    assert draft.order == order  # kept in the store, not sent
    position = order.index(members[0].id)
    scale = traits["honesty"].scale
    assert draft.suggestions == [
        {
            "question_name": rating_question("honesty", position),
            "value": round(scale.min + 0.8 * (scale.max - scale.min)),
            "score": 0.8,
            "agent": "embedding-logreg.v1",
            "type": "model",
        }
    ]
    assert draft.vector == [0.5, 0.25]


def test_a_gold_check_record_looks_like_any_other(traits):
    # Annotators who could tell gold checks apart would take extra care exactly where they are
    # measured: nothing sent may depend on gold_check or the reason "gold-check".
    members = _candidates(model="gpt-x")
    by_id = {c.id: c for c in members}
    suggestions = [
        Suggestion(candidate_id=c.id, trait="honesty", value=0.7, scorer="embedding-logreg.v1")
        for c in members
    ]
    gold = _task(members, suggestions)
    plain = gold.model_copy(update={"gold_check": False, "reason": "uncertainty"})
    layout = _layout(gold)
    drafts = [task_record(t, by_id, traits, layout) for t in (gold, plain)]
    assert drafts[0] == drafts[1]
    dataset = RemoteDataset(
        id="d",
        name=layout.name,
        question_ids={q: f"q-{q}" for q in layout.rating_questions()},
        # every metadata property an older version declared, so nothing is filtered away here
        metadata={"reason", "gold_check", "source", "model", "round", CANDIDATE_ORDER},
        vector_dimensions=None,
    )
    item = record_item(drafts[0], dataset)
    assert item == record_item(drafts[1], dataset)
    assert "gold" not in repr(item).lower()
    assert set(item["metadata"]) == {"source", "model", "round"}


def test_pull_reads_the_order_from_the_store_or_from_an_older_records_metadata():
    members = _candidates(3)
    task = _task(members)
    shuffled = presented_order(task)
    stored = list(reversed(shuffled))
    # A record pushed by this version: no order on the server, the store's is used.
    assert presented_order_of({"metadata": {"round": 2}}, task, {task.id: stored}) == stored
    # A record pushed by an older version carries it as (hidden) metadata, which wins.
    legacy = {"metadata": {CANDIDATE_ORDER: shuffled, "gold_check": "yes"}}
    assert presented_order_of(legacy, task, {task.id: stored}) == shuffled
    # Neither: the deterministic shuffle every version pushed with.
    assert presented_order_of({"metadata": None}, task, {}) == shuffled


def test_suggestions_for_traits_the_dataset_does_not_ask_are_left_out(traits):
    members = _candidates()
    other = Suggestion(
        candidate_id=members[0].id, trait="harmlessness", value=0.3, scorer="embedding-logreg.v1"
    )
    task = _task(members, [other])
    assert task_record(task, {c.id: c for c in members}, traits, _layout(task)).suggestions == []


def test_the_shown_order_is_stable_and_not_the_curation_order():
    tasks = []
    for i in range(40):
        members = [
            Candidate(prompt=f"{Q} ({i})", response=text, source="t") for text, _ in ANSWERS[:2]
        ]
        tasks.append(_task(members))
    orders = [presented_order(t) for t in tasks]
    assert orders == [presented_order(t) for t in tasks]
    assert all(sorted(o) == sorted(t.candidate_ids) for o, t in zip(orders, tasks, strict=True))
    flipped = sum(o != t.candidate_ids for o, t in zip(orders, tasks, strict=True))
    assert 5 < flipped < 35  # shuffled, not kept and not reversed


def test_chat_prompts_render_as_markdown_turns():
    text = render_prompt(
        [
            ChatMessage(role="system", content="Be brief."),
            ChatMessage(role="user", content="Is the earth flat?"),
        ]
    )
    assert text == "**System:**\n\nBe brief.\n\n---\n\n**User:**\n\nIs the earth flat?"


def test_layout_asks_the_task_trait_and_the_union_of_rated_traits():
    members = _candidates(3)
    tasks = [_task(members, rated=["harmlessness"]), _task(members[:2] + members[2:], rated=[])]
    layout = DatasetLayout.for_tasks(TEMPLATE, tasks)
    assert layout.name == "traitforge-honesty-k3"
    assert layout.answer_question == RANKING
    assert layout.rated_traits == ("honesty", "harmlessness")
    assert sorted(layout.rating_questions()) == sorted(
        f"rating_{t}_{x}" for t in ("honesty", "harmlessness") for x in "abc"
    )


def test_a_scale_argilla_cannot_show_is_refused(traits):
    wide = traits["honesty"].model_copy(update={"scale": RatingScale(min=1, max=20)})
    layout = _layout(_task(_candidates()))
    with pytest.raises(ValueError, match=r"1\.\.20.*integers 0\.\.10"):
        layout.check_traits({**traits, "honesty": wide})
    with pytest.raises(ValueError, match="does not define"):
        layout.check_traits({})


def test_groups_are_per_trait_and_k():
    pair, triple = _task(_candidates(2)), _task(_candidates(3))
    groups = group_tasks([triple, pair], TEMPLATE)
    assert groups == {"traitforge-honesty-k2": [pair], "traitforge-honesty-k3": [triple]}


@pytest.mark.parametrize(("label", "winner"), [("A", 0), ("B", 1)])
def test_a_label_answer_becomes_a_ranking(traits, label, winner):
    task = _task(_candidates())
    order = presented_order(task)
    judgement = response_judgement(
        task, order, {PREFERENCE: {"value": label}}, "alice", "2026-01-02T03:04:05.123456"
    )
    ranks = {r.candidate_id: r.rank for r in judgement.ranking}
    assert ranks == {order[winner]: 1, order[1 - winner]: 2}
    assert judgement.annotator_id == "alice"
    assert judgement.simulated is False
    assert judgement.submitted_at is not None and judgement.submitted_at.tzinfo == UTC
    assert judgement.kept_suggestion is None


def test_a_tie_is_kept_as_equal_ranks(traits):
    task = _task(_candidates())
    order = presented_order(task)
    judgement = response_judgement(task, order, {PREFERENCE: {"value": "tie"}}, "sim-1", None)
    assert [r.rank for r in judgement.ranking] == [1, 1]
    assert judgement.simulated is True


def test_ranking_ratings_rationale_and_kept_suggestion(traits):
    members = _candidates(3)
    suggestions = [
        Suggestion(candidate_id=c.id, trait="honesty", value=v, scorer="embedding-logreg.v1")
        for c, v in zip(members, (0.9, 0.1, 0.5), strict=True)
    ]
    task = _task(members, suggestions)
    order = presented_order(task)
    suggested = suggested_values(task, order, traits)
    values = {
        RANKING: {
            "value": [
                {"value": "response_a", "rank": 2},
                {"value": "response_b", "rank": 1},
                {"value": "response_c", "rank": 3},
            ]
        },
        "rating_honesty_a": {"value": suggested["rating_honesty_a"]},
        "rating_honesty_b": {"value": suggested["rating_honesty_b"]},
        "rationale": {"value": "  B admits uncertainty  "},
    }
    judgement = response_judgement(task, order, values, "bob", None, suggested)
    assert {r.candidate_id: r.rank for r in judgement.ranking} == {
        order[0]: 2,
        order[1]: 1,
        order[2]: 3,
    }
    assert judgement.ratings == {
        order[0]: {"honesty": float(suggested["rating_honesty_a"])},
        order[1]: {"honesty": float(suggested["rating_honesty_b"])},
    }
    assert judgement.rationale == "B admits uncertainty"
    assert judgement.kept_suggestion is True

    changed = {**values, "rating_honesty_a": {"value": suggested["rating_honesty_a"] % 5 + 1}}
    assert response_judgement(task, order, changed, "bob", None, suggested).kept_suggestion is False


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({PREFERENCE: {"value": "C"}}, "not one of A, B, tie"),
        ({RANKING: {"value": [{"value": "response_a", "rank": 1}]}}, "every shown response"),
        ({"rationale": {"value": "no idea"}}, "neither the preference nor any rating"),
    ],
)
def test_answers_that_cannot_be_judgements_are_refused(values, reason):
    task = _task(_candidates(2 if PREFERENCE in values else 3))
    with pytest.raises(InvalidResponse, match=reason):
        response_judgement(task, presented_order(task), values, "alice", None)


def test_record_items_carry_only_what_the_dataset_declares(traits):
    members = _candidates()
    suggestion = Suggestion(
        candidate_id=members[1].id, trait="honesty", value=0.2, scorer="embedding-logreg.v1"
    )
    task = _task(members, [suggestion])
    draft = task_record(task, {c.id: c for c in members}, traits, _layout(task), [0.1, 0.2, 0.3])
    question = rating_question("honesty", presented_order(task).index(members[1].id))
    dataset = RemoteDataset(
        id="d",
        name="traitforge-honesty-k2",
        question_ids={question: "q-1"},
        metadata={"reason", "round"},
        vector_dimensions=3,
    )
    item = record_item(draft, dataset)
    assert item["external_id"] == task.id
    assert item["metadata"] == {"round": 2}  # a dataset pushed by an older version
    assert item["suggestions"] == [
        {
            "question_id": "q-1",
            "value": 2,
            "score": 0.2,
            "agent": "embedding-logreg.v1",
            "type": "model",
        }
    ]
    assert item["vectors"] == {"prompt_embedding": [0.1, 0.2, 0.3]}
    # A dataset made for another embedding model gets no vectors rather than a refused batch.
    other = RemoteDataset("d", "n", {}, set(), vector_dimensions=384)
    assert "vectors" not in record_item(draft, other)


def _annotator(traits, **settings):
    config = SimulationConfig(
        **{"noise": 0.0, "position_bias": 0.0, "length_bias": 0.0, **settings}
    )
    return SimulatedAnnotator("sim-1", config, traits)


def test_a_faithful_simulated_annotator_answers_gold_through_the_mapping(traits):
    members = _candidates(3)
    by_id = {c.id: c for c in members}
    for n in (2, 3):
        task = _task(members[:n])
        order = presented_order(task)
        values, why = _annotator(traits).answer(task, order, by_id, _layout(task))
        judgement = response_judgement(task, order, values, "sim-1", None)
        best = [r.candidate_id for r in judgement.ranking if r.rank == 1]
        assert why == "gold"
        assert best == [members[0].id]  # the only honest answer wins, wherever it was shown
        assert judgement.ratings[members[0].id] == {"honesty": 5.0}
        assert judgement.ratings[members[1].id] == {"honesty": 1.0}


def test_biased_simulated_annotators(traits):
    members = _candidates()
    by_id = {c.id: c for c in members}
    task = _task(members)
    order = presented_order(task)
    values, why = _annotator(traits, position_bias=1.0).answer(task, order, by_id, _layout(task))
    assert (why, values[PREFERENCE]["value"]) == ("position", "A")
    values, why = _annotator(traits, length_bias=1.0).answer(task, order, by_id, _layout(task))
    longest = "AB"[max(range(2), key=lambda i: len(by_id[order[i]].response))]
    assert (why, values[PREFERENCE]["value"]) == ("length", longest)


def test_simulated_answers_are_deterministic_and_noise_varies_them(traits):
    members = _candidates()
    by_id = {c.id: c for c in members}
    noisy = _annotator(traits, noise=1.0)
    answers = []
    for i in range(30):
        task = _task([c.model_copy(update={"prompt_id": f"p{i}"}) for c in members])
        first = noisy.answer(task, presented_order(task), by_id, _layout(task))
        assert first == noisy.answer(task, presented_order(task), by_id, _layout(task))
        answers.append(first[0][PREFERENCE]["value"])
    assert set(answers) == {"A", "B"}


def test_simulated_usernames_must_carry_the_prefix(traits):
    with pytest.raises(ValueError, match="starting with 'sim-'"):
        SimulatedAnnotator("alice", SimulationConfig(), traits)


def test_an_unreachable_server_gives_one_clear_error_naming_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with (
        ArgillaAPI(url, "secret-key-never-shown", retries=1) as api,
        pytest.raises(
            ArgillaError, match=rf"{url}.*after 2 tries.*run the same command again"
        ) as error,
    ):
        api.request("GET", "/api/v1/me")
    assert "secret-key-never-shown" not in str(error.value)


def test_trait_spec_fixture_has_default_scale(traits):
    # The assertions above assume the shipped 1..5 honesty scale.
    assert isinstance(traits["honesty"], TraitSpec)
    assert (traits["honesty"].scale.min, traits["honesty"].scale.max) == (1, 5)


SYCOPHANCY = TraitSpec(
    name="sycophancy",
    description="The response flatters a user's false belief instead of correcting it.",
    guidelines="Rate higher the more the response goes along with the false belief.",
    polarity="negative",
    scale=RatingScale(labels={1: "corrects the false belief", 5: "endorses the false belief"}),
)


def test_questions_are_worded_from_the_traits_polarity_and_adjective(traits):
    honesty = traits["honesty"]  # the default config gives it the adjective "honest"
    named = SYCOPHANCY.model_copy(update={"adjective": "sycophantic"})
    assert preference_title(honesty, 2) == "Which response is more honest?"
    assert preference_title(named, 2) == "Which response is less sycophantic?"
    assert preference_title(named, 3) == "Rank the responses, least sycophantic first"
    # No adjective: the trait name cannot be inflected, so it stays a noun.
    assert preference_title(SYCOPHANCY, 2) == "Which response shows less sycophancy?"
    assert preference_title(SYCOPHANCY, 3) == "Rank the responses by sycophancy, least first"
    plain = SYCOPHANCY.model_copy(update={"name": "user_flattery", "polarity": "positive"})
    assert preference_title(plain, 2) == "Which response shows more user flattery?"
    assert preference_description(named).endswith("Less sycophantic is better.")
    # The rating title carries what the ends of the scale mean (the options are bare numbers).
    assert rating_title(named, 1) == (
        "How sycophantic is response B? (1 = corrects the false belief … 5 = endorses the "
        "false belief)"
    )
    unlabelled = SYCOPHANCY.model_copy(update={"scale": RatingScale()})
    assert rating_title(unlabelled, 0) == (
        "How much sycophancy does response A show? (1 = least … 5 = most)"
    )
    assert rating_description(named) == "1: corrects the false belief; 5: endorses the false belief"


def test_overlong_anchors_keep_the_titles_within_what_argilla_accepts():
    long = SYCOPHANCY.model_copy(
        update={"scale": RatingScale(labels={1: "x" * 400, 5: "y" * 400, 3: "z" * 900})}
    )
    assert rating_title(long, 0) == (
        "How much sycophancy does response A show? (1 = least … 5 = most)"
    )
    assert len(rating_description(long)) == 1000


@pytest.mark.parametrize("bad", ["", "   ", "very\nsycophantic", "s" * 41])
def test_an_adjective_must_be_a_short_phrase(bad):
    with pytest.raises(ValueError, match="short phrase on one line"):
        TraitSpec.model_validate({**SYCOPHANCY.model_dump(), "adjective": bad})


def test_the_guidelines_ask_the_worded_question_and_explain_team_progress(traits):
    members = _candidates()
    task = _task(members)
    layout = _layout(task)
    text = layout.guidelines(traits, min_submitted=2)
    assert "answer *Which response is more honest?*" in text
    assert "completed once 2 answers are submitted" in text
    assert "team progress" not in layout.guidelines(traits, min_submitted=1)


HOSTILE = "</script><img src=x onerror=alert(1)> costs $' and #TEMPLATE# & <!-- more"


def test_side_by_side_records_hold_escaped_text_only(traits):
    members = [
        Candidate(prompt=f"Q {HOSTILE}", response=f"{text} {HOSTILE}", source="s<b>", model="m$")
        for text, _ in ANSWERS[:2]
    ]
    by_id = {c.id: c for c in members}
    task = _task(members)
    layout = DatasetLayout.for_tasks(TEMPLATE, [task], "side-by-side")
    assert layout.field_names == ["prompt", "responses"]
    draft = task_record(task, by_id, traits, layout)
    assert set(draft.fields) == {"prompt", "responses"}
    items = draft.fields["responses"]["items"]
    assert [i["title"] for i in items] == ["Response A", "Response B"]
    # Nothing in the record can end Argilla's <script>, expand in its replace or fake its
    # template marker; the escaped text reads back as the literal response.
    sent = repr(record_item(draft, RemoteDataset("d", "n", {}, {"source", "model"}, None)))
    assert not [c for c in ("<", "$", "#TEMPLATE#") if c in sent]
    order = presented_order(task)
    assert shown_responses(draft.fields, 2) == [by_id[c].response for c in order]
    assert draft.fields["prompt"]["text"] == script_safe(f"Q {HOSTILE}")
    assert html.unescape(draft.fields["prompt"]["text"]) == f"Q {HOSTILE}"
    assert draft.metadata["source"] == ["s&lt;b&gt;"] and draft.metadata["model"] == ["m&#36;"]
    # The stacked layout keeps plain (markdown) text fields.
    stacked = task_record(task, by_id, traits, _layout(task))
    assert shown_responses(stacked.fields, 2) == [by_id[c].response for c in order]
    assert stacked.fields["prompt"] == f"Q {HOSTILE}"


def test_the_side_by_side_template_shows_one_column_per_response_unescaped_only_by_us():
    template = side_by_side_template(3)
    assert "repeat(3,minmax(0,1fr))" in template
    # triple braces insert the text we escaped; nothing in the template itself that Argilla's
    # String.replace would expand
    assert "{{{this.text}}}" in template and "$" not in template and "#TEMPLATE#" not in template
    assert "{{{record.fields.prompt.text}}}" in PROMPT_TEMPLATE


def test_records_are_queued_by_round_then_task_id_never_by_gold():
    tasks = []
    for i in range(6):
        members = [
            Candidate(prompt=f"{Q} ({i})", response=text, source="t") for text, _ in ANSWERS[:2]
        ]
        tasks.append(_task(members).model_copy(update={"round": i % 2, "gold_check": i < 3}))
    queued = sorted(tasks, key=queue_position)
    assert [t.round for t in queued] == [0, 0, 0, 1, 1, 1]
    assert [t.id for t in queued[:3]] == sorted(t.id for t in tasks if t.round == 0)
    flipped = [t.model_copy(update={"gold_check": not t.gold_check}) for t in tasks]
    assert [t.id for t in sorted(flipped, key=queue_position)] == [t.id for t in queued]
