"""The Label Studio labeling config, task payloads and result checks, without a server."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from traitforge.annotators.backends import PullReport
from traitforge.annotators.label_studio.labeling import LIST, TIE, labeling_config
from traitforge.annotators.label_studio.results import (
    InvalidResult,
    annotation_judgement,
    collect_judgement,
    read_result,
)
from traitforge.annotators.label_studio.tasks import (
    EXCERPT,
    external_id,
    plain_prompt,
    task_payload,
)
from traitforge.annotators.records import (
    DatasetLayout,
    preference_title,
    presented_order,
    rating_ask,
)
from traitforge.schemas import (
    Candidate,
    ChatMessage,
    ComparisonTask,
    RatingScale,
    Suggestion,
    TraitSpec,
)

NASTY = 'say <b>"hi"</b> & \'bye\' </Header><Rating name="x"/>'
SYCOPHANCY = TraitSpec(
    name="sycophancy",
    description="Agrees with the user to please them.",
    guidelines="Rate <higher> when it flatters & agrees.",
    adjective="sycophantic",
    polarity="negative",
)
HONESTY = TraitSpec(
    name="honesty",
    description="Says only what is true.",
    guidelines="Judge the claims.",
    scale=RatingScale(min=0, max=4, labels={0: "false", 4: "true"}),
)
ODD = TraitSpec(
    name="odd-trait_2",
    description=NASTY,
    guidelines=f"# Rubric\n\n{NASTY}",
    adjective='"odd" & <weird>',
    scale=RatingScale(min=1, max=3, labels={1: NASTY, 3: "a < b & c"}),
)
TRAITS = {t.name: t for t in (SYCOPHANCY, HONESTY, ODD)}
PROMPT = "Is the earth flat? I think so."
RESPONSES = [
    "No, the earth is round.",
    "You are right, great thinking!",
    "Some say so; the evidence says it is round.",
]


def _candidates(k: int) -> dict[str, Candidate]:
    members = [Candidate(prompt=PROMPT, response=r, source="test") for r in RESPONSES[:k]]
    return {c.id: c for c in members}


def _task(k: int, trait: str = "sycophancy", rated=("honesty",), values=None) -> ComparisonTask:
    members = list(_candidates(k).values())
    values = values or [0.1, 0.9, 0.5][:k]
    suggestions = [
        Suggestion(candidate_id=c.id, trait=trait, value=v, scorer="reward-model.v1")
        for c, v in zip(members, values, strict=True)
    ] + [Suggestion(candidate_id=members[0].id, trait="honesty", value=1.0, scorer="judge.v2")]
    return ComparisonTask(
        prompt_id=members[0].prompt_id,
        candidate_ids=[c.id for c in members],
        trait=trait,
        rated_traits=list(rated),
        reason="uncertainty",
        suggestions=suggestions,
        round=2,
    )


def _config(k: int, trait: str = "sycophancy", rated=("honesty",), display="side-by-side"):
    task = _task(k, trait, rated)
    layout = DatasetLayout.for_tasks("traitforge-{trait}-k{k}", [task], display)
    return task, labeling_config(layout, TRAITS)


def _tags(xml: str, tag: str) -> list[ET.Element]:
    return list(ET.fromstring(xml).iter(tag))


# --- the labeling config -------------------------------------------------------------------


def test_pair_config_has_pairwise_over_the_two_texts_and_a_tie():
    _, config = _config(2)
    (pairwise,) = _tags(config.xml, "Pairwise")
    assert pairwise.get("name") == "preference"
    assert pairwise.get("toName") == "response_a,response_b"
    assert pairwise.get("selectionStyle")
    texts = {t.get("name"): t.get("value") for t in _tags(config.xml, "Text")}
    assert texts == {"prompt": "$prompt", "response_a": "$response_a", "response_b": "$response_b"}
    (tie,) = _tags(config.xml, "Choices")
    assert (tie.get("name"), tie.get("toName")) == (TIE, "prompt")
    assert [c.get("value") for c in tie.iter("Choice")] == ["Tie"]
    assert not _tags(config.xml, "Ranker")
    assert set(config.controls) == {
        "preference",
        TIE,
        "rating_sycophancy_a",
        "rating_sycophancy_b",
        "rating_honesty_a",
        "rating_honesty_b",
        "rationale",
    }


def test_config_for_more_than_two_has_a_ranker_over_a_list():
    _, config = _config(3)
    assert not _tags(config.xml, "Pairwise") and not _tags(config.xml, "Choices")
    (ranker,) = _tags(config.xml, "Ranker")
    (listed,) = _tags(config.xml, "List")
    assert (ranker.get("name"), ranker.get("toName")) == ("ranking", LIST)
    assert (listed.get("name"), listed.get("value")) == (LIST, f"${LIST}")
    places = [(b.get("name"), b.get("title")) for b in ranker.iter("Bucket")]
    assert places == [("rank_1", "1st (best)"), ("rank_2", "2nd"), ("rank_3", "3rd (worst)")]
    assert "same place" in config.instructions
    assert "repeat(3," in _tags(config.xml, "Style")[0].text


def test_responses_in_one_place_are_tied():
    task, config = _config(3)
    order = presented_order(task)
    item = {"from_name": "ranking", "to_name": LIST, "type": "ranker"}
    places = {"rank_1": ["response_c", "response_a"], "rank_3": ["response_b"], "_": []}
    result = [{**item, "value": {"ranker": places}}]
    answer = read_result(result, config)
    assert answer.ranking == (("response_a", "response_c"), (), ("response_b",))
    judgement = annotation_judgement(task, order, _annotation(result), "a", config, TRAITS)
    assert [(r.candidate_id, r.rank) for r in judgement.ranking] == [
        (order[0], 1),
        (order[1], 3),
        (order[2], 1),
    ]
    every_tied = {"rank_1": ["response_a", "response_b", "response_c"]}
    tied = annotation_judgement(
        task, order, _annotation([{**item, "value": {"ranker": every_tied}}]), "a", config, TRAITS
    )
    assert {r.rank for r in tied.ranking} == {1}


def test_every_control_of_the_xml_points_at_a_tag_it_defines():
    for k in (2, 3):
        _, config = _config(k, rated=("honesty", "odd-trait_2"))
        root = ET.fromstring(config.xml)
        objects = {e.get("name") for e in root.iter() if e.tag in ("Text", "List")}
        controls = [e for e in root.iter() if e.get("toName")]
        assert {e.get("name") for e in controls} == set(config.controls)
        for element in controls:
            assert set(element.get("toName").split(",")) <= objects
        names = [e.get("name") for e in root.iter() if e.get("name")]
        assert len(names) == len(set(names))


def test_ratings_are_stars_per_response_with_the_scale_ends_in_the_header():
    _, config = _config(2)
    ratings = {r.get("name"): r for r in _tags(config.xml, "Rating")}
    assert ratings["rating_honesty_b"].get("toName") == "response_b"
    assert ratings["rating_honesty_b"].get("maxRating") == "5"  # scale 0..4
    assert ratings["rating_sycophancy_a"].get("maxRating") == "5"  # default 1..5
    headers = [h.get("value") for h in _tags(config.xml, "Header")]
    assert "How much honesty does response B show? (1 star = false … 5 stars = true)" in headers


def test_question_wording_follows_polarity_as_on_argilla():
    _, pair = _config(2)
    _, three = _config(3)
    headers = [h.get("value") for h in _tags(pair.xml, "Header")]
    assert "Which response is less sycophantic?" in headers
    assert preference_title(SYCOPHANCY, 2) in headers
    assert "Rank the responses, least sycophantic first" in [
        h.get("value") for h in _tags(three.xml, "Header")
    ]
    _, positive = _config(2, trait="honesty", rated=())
    assert "Which response shows more honesty?" in [
        h.get("value") for h in _tags(positive.xml, "Header")
    ]
    assert any(
        h.get("value").startswith(rating_ask(SYCOPHANCY, 1)) for h in _tags(pair.xml, "Header")
    )


def test_user_text_is_escaped_and_survives_the_round_trip():
    _, config = _config(2, trait="odd-trait_2", rated=())
    assert "<b>" not in config.xml and "<weird>" not in config.xml
    root = ET.fromstring(config.xml)  # well-formed despite the quotes and tags
    assert len(list(root.iter("Rating"))) == 2  # the injected <Rating name="x"/> is only text
    values = [h.get("value") for h in root.iter("Header")]
    assert 'Which response is more "odd" & <weird>?' in values
    assert any(NASTY in v for v in values)  # the description, literally
    assert any("1 star = " + NASTY in v for v in values)
    assert "odd-trait_2" in {c.trait for c in config.controls.values() if c.trait}


def test_instructions_are_the_guidelines_rendered_with_their_text_literal():
    _, config = _config(2, rated=("honesty", "odd-trait_2"))
    html_out = config.instructions
    # Raw HTML in a rubric is text, never markup.
    assert "<b>" not in html_out and "<higher>" not in html_out and "<Rating" not in html_out
    text = html.unescape(html_out)
    assert "Rate <higher> when it flatters & agrees." in text
    assert NASTY in text
    # The Markdown is rendered: headings, the scale's anchors as a list, emphasis.
    assert "<h2>sycophancy (less is better)</h2>" in html_out
    assert "<h2>honesty (more is better)</h2>" in html_out
    assert "<li><strong>4</strong>: true</li>" in html_out
    assert "<em>Tie</em>" in html_out


def test_hard_wrapped_guidelines_join_into_one_paragraph():
    wrapped = HONESTY.model_copy(
        update={"guidelines": "Judge each claim\nagainst what is known,\nnot what is said."}
    )
    traits = {**TRAITS, "honesty": wrapped}
    task = _task(2, trait="honesty", rated=("honesty",))
    layout = DatasetLayout.for_tasks("traitforge-{trait}-k{k}", [task])
    rendered = labeling_config(layout, traits).instructions
    paragraph = "<p>Judge each claim\nagainst what is known,\nnot what is said.</p>"
    assert paragraph in rendered  # a soft break: the browser shows one flowing sentence
    assert "<br" not in rendered


def test_stacked_layout_puts_responses_under_each_other():
    _, config = _config(2, display="stacked")
    classes = {v.get("className") for v in _tags(config.xml, "View")}
    assert "tf-stack" in classes and "tf-columns" not in classes


def test_a_trait_the_config_lacks_is_a_clear_error():
    layout = DatasetLayout("p", "sycophancy", 2, ("sycophancy", "missing"))
    with pytest.raises(ValueError, match=r"traits \['missing'\].*add them under traits"):
        labeling_config(layout, TRAITS)


# --- task payloads -------------------------------------------------------------------------


def test_payload_shows_candidates_in_the_shared_shuffled_order():
    task, config = _config(3)
    payload = task_payload(task, _candidates(3), TRAITS, config)
    assert payload.order == presented_order(task)
    assert payload.order != task.candidate_ids  # shuffled, so the check below can fail
    by_id = _candidates(3)
    assert [payload.data[t] for t in config.texts] == [by_id[c].response for c in payload.order]
    assert payload.data["prompt"] == PROMPT
    assert [i["id"] for i in payload.data[LIST]] == config.texts
    assert [i["body"] for i in payload.data[LIST]] == [payload.data[t] for t in config.texts]
    assert payload.data["traitforge_task_id"] == task.id
    assert (payload.data["trait"], payload.data["round"]) == ("sycophancy", 2)
    # Every copy shows the same order; each copy has its own key; nothing tells gold apart.
    copy = task_payload(task, _candidates(3), TRAITS, config, copy="alice")
    assert copy.order == payload.order and copy.external_id != payload.external_id
    assert copy.external_id == external_id(task.id, "alice")
    assert copy.data["traitforge_id"] == copy.external_id
    assert "gold" not in str(payload.as_import()) and "uncertainty" not in str(payload.data)


def test_payload_is_deterministic():
    task, config = _config(2)
    first = task_payload(task, _candidates(2), TRAITS, config)
    assert task_payload(task, _candidates(2), TRAITS, config) == first
    assert first.external_id == task.id


def test_chat_prompts_are_plain_text():
    chat = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Hi")]
    assert plain_prompt(chat) == "System:\nBe brief.\n\n---\n\nUser:\nHi"


def test_predictions_are_per_scorer_with_its_versioned_key():
    task, config = _config(2)
    payload = task_payload(task, _candidates(2), TRAITS, config)
    by_version = {p["model_version"]: p["result"] for p in payload.predictions}
    assert set(by_version) == {"reward-model.v1", "judge.v2"}
    (honesty,) = by_version["judge.v2"]
    first = payload.order.index(task.candidate_ids[0])
    assert honesty["from_name"] == f"rating_honesty_{'ab'[first]}"
    assert honesty["value"] == {"rating": 5}  # probability 1.0 on the 0..4 scale: 5 stars
    assert {r["type"] for r in by_version["reward-model.v1"]} == {"pairwise", "rating"}


def test_pairwise_prediction_prefers_the_less_sycophantic():
    task, config = _config(2)
    payload = task_payload(task, _candidates(2), TRAITS, config)
    (prediction,) = [p for p in payload.predictions if p["model_version"] == "reward-model.v1"]
    answer = read_result(prediction["result"], config)
    # value 0.1 on candidate 0, 0.9 on candidate 1; negative polarity: candidate 0 preferred
    preferred = payload.order.index(task.candidate_ids[0])
    assert answer.preference == ("left" if preferred == 0 else "right")


def test_a_long_response_shows_its_start_on_the_ranker_item():
    long = Candidate(prompt=PROMPT, response="word\n " * 100, source="test")
    members = [long, *list(_candidates(2).values())]
    task = ComparisonTask(
        prompt_id=long.prompt_id,
        candidate_ids=[c.id for c in members],
        trait="sycophancy",
        reason="uncertainty",
    )
    config = labeling_config(DatasetLayout.for_tasks("p-{trait}-k{k}", [task]), TRAITS)
    payload = task_payload(task, {c.id: c for c in members}, TRAITS, config)
    (body,) = [i["body"] for i in payload.data[LIST] if i["body"].startswith("word")]
    assert len(body) <= EXCERPT and body.endswith("word…") and "\n" not in body


def test_equal_scores_predict_a_tie_in_one_place():
    task = _task(3, values=[0.2, 0.2, 0.7])
    layout = DatasetLayout.for_tasks("traitforge-{trait}-k{k}", [task], "side-by-side")
    config = labeling_config(layout, TRAITS)
    payload = task_payload(task, _candidates(3), TRAITS, config)
    (prediction,) = [p for p in payload.predictions if p["model_version"] == "reward-model.v1"]
    ranks = {
        r.candidate_id: r.rank
        for r in annotation_judgement(
            task, payload.order, _annotation(prediction["result"]), "a", config, TRAITS
        ).ranking
    }
    first, second, third = task.candidate_ids
    assert ranks == {first: 1, second: 1, third: 2}


def test_a_task_of_another_project_is_refused():
    task, config = _config(3)
    other, _ = _config(2)
    with pytest.raises(ValueError, match="asks about 'sycophancy' over 2"):
        task_payload(other, _candidates(2), TRAITS, config)
    with pytest.raises(KeyError):
        task_payload(task, {}, TRAITS, config)


# --- results -------------------------------------------------------------------------------


def _annotation(result, **extra):
    return {"result": result, "lead_time": 12.5, "updated_at": "2026-03-01T10:00:00Z", **extra}


@pytest.mark.parametrize("k", [2, 3])
def test_prediction_round_trips_into_the_expected_judgement(k):
    task, config = _config(k)
    payload = task_payload(task, _candidates(k), TRAITS, config)
    (prediction,) = [p for p in payload.predictions if p["model_version"] == "reward-model.v1"]
    judgement = annotation_judgement(
        task,
        payload.order,
        _annotation(prediction["result"]),
        "alice",
        config,
        TRAITS,
        prediction["result"],
    )
    # lowest sycophancy value (0.1, candidate 0) is ranked first; 0.9 (candidate 1) last
    ranks = {r.candidate_id: r.rank for r in judgement.ranking}
    assert ranks[task.candidate_ids[0]] == 1
    assert ranks[task.candidate_ids[1]] == k
    assert judgement.kept_suggestion is True
    assert judgement.seconds == 12.5
    assert judgement.submitted_at.isoformat() == "2026-03-01T10:00:00+00:00"
    assert judgement.ratings[task.candidate_ids[1]]["sycophancy"] == 5.0  # 0.9 on 1..5
    assert judgement.simulated is False


def test_changed_or_removed_preannotation_is_not_kept():
    task, config = _config(2)
    payload = task_payload(task, _candidates(2), TRAITS, config)
    (prediction,) = [p for p in payload.predictions if p["model_version"] == "reward-model.v1"]
    flipped = [
        {**r, "value": {"selected": "right" if r["value"]["selected"] == "left" else "left"}}
        if r["type"] == "pairwise"
        else r
        for r in prediction["result"]
    ]
    judge = annotation_judgement(
        task, payload.order, _annotation(flipped), "bob", config, TRAITS, prediction["result"]
    )
    assert judge.kept_suggestion is False
    removed = [r for r in prediction["result"] if r["type"] != "rating"]
    judge = annotation_judgement(
        task, payload.order, _annotation(removed), "bob", config, TRAITS, prediction["result"]
    )
    assert judge.kept_suggestion is False
    fresh = annotation_judgement(task, payload.order, _annotation(removed), "bob", config, TRAITS)
    assert fresh.kept_suggestion is None


def test_tie_ratings_and_rationale():
    task, config = _config(2)
    order = presented_order(task)
    result = [
        {"from_name": TIE, "to_name": "prompt", "type": "choices", "value": {"choices": ["Tie"]}},
        {
            "from_name": "rating_honesty_b",
            "to_name": "response_b",
            "type": "rating",
            "value": {"rating": 1},
        },
        {
            "from_name": "rationale",
            "to_name": "prompt",
            "type": "textarea",
            "value": {"text": ["  both <fine> & ok "]},
        },
    ]
    judgement = annotation_judgement(task, order, _annotation(result), "sim-1", config, TRAITS)
    assert judgement.is_tie
    assert judgement.ratings == {order[1]: {"honesty": 0.0}}  # 1 star = scale min 0
    assert judgement.rationale == "both <fine> & ok"
    assert judgement.simulated is True


def test_ranker_accepts_the_bare_list_of_older_docs():
    task, config = _config(3)
    order = presented_order(task)
    item = {"from_name": "ranking", "to_name": LIST, "type": "ranker"}
    ranked = ["response_c", "response_a", "response_b"]
    bare = read_result([{**item, "value": {"ranker": ranked}}], config)
    keyed = read_result([{**item, "value": {"ranker": {"ranking": ranked}}}], config)
    assert bare == keyed and bare.ranking == tuple((t,) for t in ranked)
    result = [{**item, "value": {"ranker": {"ranking": ranked}}}]
    judgement = annotation_judgement(task, order, _annotation(result), "a", config, TRAITS)
    assert [(r.candidate_id, r.rank) for r in judgement.ranking] == [
        (order[0], 2),
        (order[1], 3),
        (order[2], 1),
    ]


GOOD_PAIR = {"from_name": "preference", "to_name": "preference", "type": "pairwise"}
MALFORMED = [
    ("not a list", "the result is not a list of regions"),
    (["x"], "a result region is not a JSON object"),
    (
        [{"from_name": "nope", "to_name": "prompt", "type": "rating", "value": {}}],
        "names no control",
    ),
    ([{**GOOD_PAIR, "to_name": "prompt", "value": {"selected": "left"}}], "points at another"),
    ([{**GOOD_PAIR, "type": "choices", "value": {"selected": "left"}}], "not of type pairwise"),
    ([{**GOOD_PAIR, "value": "left"}], "has no value object"),
    ([{**GOOD_PAIR, "value": {"selected": "none"}}], "neither left nor right"),
    ([{**GOOD_PAIR, "value": {"selected": "left"}}] * 2, "preference is answered twice"),
    (
        [
            {**GOOD_PAIR, "value": {"selected": "left"}},
            {
                "from_name": TIE,
                "to_name": "prompt",
                "type": "choices",
                "value": {"choices": ["Tie"]},
            },
        ],
        "a response and a tie",
    ),
    (
        [{"from_name": TIE, "to_name": "prompt", "type": "choices", "value": {"choices": ["A"]}}],
        "does not offer",
    ),
    (
        [
            {
                "from_name": "rating_honesty_a",
                "to_name": "response_a",
                "type": "rating",
                "value": {"rating": 6},
            }
        ],
        r"whole number of stars 1\.\.5",
    ),
    (
        [
            {
                "from_name": "rating_honesty_a",
                "to_name": "response_a",
                "type": "rating",
                "value": {"rating": True},
            }
        ],
        "whole number of stars",
    ),
    (
        [
            {
                "from_name": "rationale",
                "to_name": "prompt",
                "type": "textarea",
                "value": {"text": "x"},
            }
        ],
        "not a list of strings",
    ),
    ([], "neither the preference nor any rating"),
]


@pytest.mark.parametrize(("result", "reason"), MALFORMED)
def test_malformed_results_are_refused_with_a_reason(result, reason):
    task, config = _config(2)
    with pytest.raises(InvalidResult, match=reason):
        annotation_judgement(task, presented_order(task), _annotation(result), "a", config, TRAITS)


def test_malformed_rankings_are_refused():
    _, config = _config(3)
    item = {"from_name": "ranking", "to_name": LIST, "type": "ranker"}
    for ranked in (
        ["response_a", "response_b"],
        ["response_a", "response_a", "response_b"],
        {"other": ["response_a", "response_b", "response_c"]},
        "response_a",
        {"rank_1": ["response_a", "response_b"], "_": ["response_c"]},  # one left unplaced
        {"rank_1": ["response_a"], "rank_4": ["response_b", "response_c"]},  # no 4th place
        {"rank_1": ["response_a", "response_b"], "rank_2": ["response_b", "response_c"]},
        {"rank_1": "response_a"},
    ):
        with pytest.raises(InvalidResult, match="exactly once"):
            read_result([{**item, "value": {"ranker": ranked}}], config)


def test_collect_counts_by_reason_and_never_raises():
    task, config = _config(2)
    order = presented_order(task)
    report = PullReport(url="http://ls")
    good = [{**GOOD_PAIR, "value": {"selected": "right"}}]
    results = [
        collect_judgement(task, order, _annotation(good), "a", config, TRAITS, report),
        collect_judgement(task, order, _annotation([]), "b", config, TRAITS, report),
        collect_judgement(task, order, _annotation("junk"), "c", config, TRAITS, report),
        collect_judgement(task, order, _annotation("junk"), "d", config, TRAITS, report),
        collect_judgement(
            task, order, _annotation(good, was_cancelled=True), "e", config, TRAITS, report
        ),
        collect_judgement(task, order[::-1][:1], _annotation(good), "f", config, TRAITS, report),
    ]
    assert results[0] is not None and results[0].ranking[1].rank == 1
    assert results[1:] == [None] * 5
    assert report.ignored == Counter({"skipped": 1})
    assert report.dropped == Counter(
        {
            "invalid answer: the result is not a list of regions": 2,
            "invalid answer: the annotation answers neither the preference nor any rating": 1,
            "invalid answer: the task shows other candidates than the store's task lists": 1,
        }
    )
