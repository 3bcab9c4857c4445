"""The embedded search engine's pure rules (`search_rows`), without argilla_server: how stored
values flatten, compare, sort and score. The engine's SQL side is covered by the integration
tests against the real server."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import pytest

from traitforge.annotators.server.embedded.search_rows import (
    RecordRow,
    ResponseRow,
    as_datetime,
    as_list,
    comparable,
    in_range,
    response_value,
    seeded_random,
    shuffles_per_user,
    similarity_scores,
    term_equals,
    text_score,
    text_terms,
)

RECORD = UUID("00000000-0000-0000-0000-000000000001")
USER = UUID("00000000-0000-0000-0000-0000000000aa")


def _row(**fields) -> RecordRow:
    moment = datetime(2026, 1, 1, 12, 0, 0)
    return RecordRow(RECORD, "task-1", "pending", moment, moment, {}, fields=fields)


def test_stored_values_flatten_to_lists():
    assert as_list(None) == []
    assert as_list("honesty") == ["honesty"]
    assert as_list(["a", ["b", "c"]]) == ["a", "b", "c"]
    ranking = [{"value": "response_b", "rank": 1}, {"value": "response_a", "rank": 2}]
    assert as_list(ranking) == ["response_b", "response_a"]
    assert as_list({"value": 3}) == [3]


def test_a_response_value_is_read_from_its_question():
    response = ResponseRow(USER, "submitted", {"preference": {"value": "A"}, "odd": "bare"})
    assert response_value(response, "preference") == "A"
    assert response_value(response, "rationale") is None
    assert response_value(response, "odd") is None


@pytest.mark.parametrize(
    ("value", "term", "equal"),
    [
        (True, "true", True),
        (False, "True", False),
        (3, "3", True),
        (3, "3.0", True),
        (2.5, "2.50", True),
        (3, "three", False),
        ("truthfulqa", "truthfulqa", True),
        ("truthfulqa", "TruthfulQA", False),
        (datetime(2026, 1, 1, 12), "2026-01-01T12:00:00Z", True),
        (datetime(2026, 1, 1, 12), "2026-01-01T13:00:00+01:00", True),
        (datetime(2026, 1, 1, 12), "2026-01-01T12:00:01Z", False),
    ],
)
def test_terms_compare_by_the_stored_value_type(value, term, equal):
    assert term_equals(value, term) is equal


def test_ranges_compare_numbers_dates_and_text_with_open_ends():
    assert in_range(5, 1, 10) and in_range(5, None, 5) and in_range(5, "5", None)
    assert not in_range(11, 1, 10) and not in_range(0, 1, None)
    assert in_range("b", "a", "c") and not in_range("d", "a", "c")
    noon = datetime(2026, 1, 1, 12)
    assert in_range(noon, "2026-01-01T00:00:00Z", "2026-01-02")
    noon_ms = (noon - datetime(1970, 1, 1)).total_seconds() * 1000  # epoch ms, as in UTC
    assert in_range(noon, noon_ms, noon_ms)
    assert not in_range(noon, noon_ms + 1, None)


def test_date_bounds_become_naive_utc():
    assert as_datetime(None) is None
    assert as_datetime("2026-01-01T12:00:00Z") == datetime(2026, 1, 1, 12)
    assert as_datetime("2026-01-01T14:00:00+02:00") == datetime(2026, 1, 1, 12)
    assert as_datetime(0) == datetime(1970, 1, 1)
    assert as_datetime("86400000") == datetime(1970, 1, 2)  # a number in a string: epoch ms


def test_sort_keys_order_numbers_before_dates_before_text():
    values = ["b", datetime(2026, 1, 1), 2, True, "a", 0.5]
    ordered = sorted(values, key=comparable)
    assert ordered == [0.5, True, 2, datetime(2026, 1, 1), "a", "b"]


def test_each_annotator_gets_a_stable_shuffle_of_its_own():
    first = seeded_random(USER, RECORD)
    assert first == seeded_random(str(USER), RECORD)
    assert 0.0 <= first < 1.0
    others = {seeded_random(f"user-{i}", RECORD) for i in range(20)}
    assert len(others) == 20 and all(0.0 <= v < 1.0 for v in others)


def test_annotators_share_one_queue_when_records_need_several_answers():
    # One answer completes a record: shuffles keep annotators apart, as Elasticsearch does.
    assert shuffles_per_user({"strategy": "overlap", "min_submitted": 1})
    assert shuffles_per_user(None)
    # Overlap: the same queue for everyone, so their answers meet on the same records.
    assert not shuffles_per_user({"strategy": "overlap", "min_submitted": 2})


def test_similarity_scores_follow_elasticsearch_cosine():
    vectors = [[1.0, 0.0], [-2.0, 0.0], [0.0, 3.0], [0.0, 0.0]]
    assert similarity_scores([1.0, 0.0], vectors).tolist() == pytest.approx([1.0, 0.0, 0.5, 0.5])
    least = similarity_scores([1.0, 0.0], vectors, least_similar=True)
    assert least.tolist() == pytest.approx([0.0, 1.0, 0.5, 0.5])


def test_text_terms_keep_quoted_phrases_and_drop_operators():
    assert text_terms('Fortune "Cookies Originated" +china *') == [
        "fortune",
        "cookies originated",
        "china",
    ]
    assert text_terms("*") == []


def test_text_scores_need_every_term_and_count_occurrences():
    chat = [{"role": "user", "content": "Where did fortune cookies originate?"}]
    row = _row(prompt=chat, response_a="Fortune cookies: fortune tellers.", meta={"k": "Kyoto"})
    searched = ["prompt", "response_a"]
    assert text_score(row, searched, []) == 1.0
    assert text_score(row, searched, ["fortune"]) == 3.0
    assert text_score(row, searched, ["fortune", "originate"]) == 4.0
    assert text_score(row, searched, ["fortune", "china"]) == 0.0
    assert text_score(row, searched, ["kyoto"]) == 0.0  # a field not searched
    assert text_score(row, ["meta"], ["kyoto"]) == 1.0  # strings inside a custom field's JSON
