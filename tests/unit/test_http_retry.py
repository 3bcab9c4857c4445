"""The shared retry helper with a fake clock, and the Argilla client's use of it (against
httpx.MockTransport): nothing here really sleeps."""

from __future__ import annotations

import random

import httpx
import pytest

from traitforge.annotators.argilla.client import ArgillaAPI, ArgillaError
from traitforge.http_retry import Backoff, Retryable, retry_after, retryable_status, retrying


class FakeClock:
    """Records the waits asked for instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _no_jitter(base_s: float = 1.0, cap_s: float = 30.0) -> Backoff:
    # random() == 0.0 scales every delay by exactly 0.5
    class Lowest(random.Random):
        def random(self) -> float:
            return 0.0

    return Backoff(base_s=base_s, cap_s=cap_s, rng=Lowest())


def _failing(times: int, result: str = "ok", retry_after_s: float | None = None):
    calls: list[int] = []

    def attempt() -> str:
        calls.append(len(calls))
        if len(calls) <= times:
            raise Retryable(f"failure {len(calls)}", fix="wait", retry_after_s=retry_after_s)
        return result

    return attempt, calls


def test_retrying_returns_the_first_success_and_waits_only_between_tries():
    clock = FakeClock()
    attempt, calls = _failing(times=3)
    assert retrying(attempt, retries=5, backoff=_no_jitter(), sleep=clock) == "ok"
    assert len(calls) == 4
    assert clock.waits == [0.5, 1.0, 2.0]  # base * 2**n, halved by the fixed jitter


def test_retrying_gives_up_after_retries_plus_one_tries_with_the_last_failure():
    clock = FakeClock()
    attempt, calls = _failing(times=10)
    with pytest.raises(Retryable, match="failure 3") as caught:
        retrying(attempt, retries=2, backoff=_no_jitter(), sleep=clock)
    assert caught.value.fix == "wait"
    assert len(calls) == 3 and len(clock.waits) == 2


def test_retrying_with_no_retries_tries_once_and_never_waits():
    clock = FakeClock()
    attempt, calls = _failing(times=1)
    with pytest.raises(Retryable):
        retrying(attempt, retries=0, backoff=_no_jitter(), sleep=clock)
    assert len(calls) == 1 and clock.waits == []


def test_retrying_lets_other_errors_through_at_once():
    clock = FakeClock()
    calls = []

    def attempt() -> str:
        calls.append(1)
        raise ValueError("the request's own fault")

    with pytest.raises(ValueError, match="own fault"):
        retrying(attempt, retries=5, backoff=_no_jitter(), sleep=clock)
    assert len(calls) == 1 and clock.waits == []


def test_retrying_waits_as_long_as_the_server_asks_up_to_the_cap():
    clock = FakeClock()
    attempt, _ = _failing(times=2, retry_after_s=7.0)
    retrying(attempt, retries=2, backoff=_no_jitter(cap_s=30.0), sleep=clock)
    assert clock.waits == [7.0, 7.0]
    clock = FakeClock()
    attempt, _ = _failing(times=1, retry_after_s=3600.0)
    retrying(attempt, retries=1, backoff=_no_jitter(cap_s=10.0), sleep=clock)
    assert clock.waits == [10.0]


def test_jittered_delays_stay_within_half_and_all_of_the_exponential_delay():
    backoff = Backoff(base_s=1.0, cap_s=10.0, rng=random.Random(7))
    for attempt, full in enumerate([1.0, 2.0, 4.0, 8.0, 10.0, 10.0]):
        delays = {backoff.delay(attempt) for _ in range(20)}
        assert len(delays) > 1 and all(full / 2 <= d < full for d in delays)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (200, False),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
    ],
)
def test_retryable_statuses_are_429_and_5xx(status, retryable):
    assert retryable_status(status) is retryable


def test_retry_after_reads_seconds_and_ignores_dates():
    assert retry_after(httpx.Response(429, headers={"Retry-After": "2.5"})) == 2.5
    assert retry_after(httpx.Response(429, headers={"Retry-After": "-3"})) == 0.0
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after(httpx.Response(503, headers={"Retry-After": date})) is None
    assert retry_after(httpx.Response(503)) is None


# -- the Argilla client --------------------------------------------------------------------
def _api(handler, retries: int = 3) -> tuple[ArgillaAPI, FakeClock]:
    clock = FakeClock()
    api = ArgillaAPI(
        "http://argilla.test",
        "owner-key",
        retries=retries,
        backoff=_no_jitter(),
        sleep=clock,
        transport=httpx.MockTransport(handler),
    )
    return api, clock


def test_argilla_client_retries_a_restarting_server_then_answers():
    answers = [
        httpx.ConnectError("refused"),
        httpx.Response(503, text="starting"),
        httpx.Response(200, json={"items": []}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Argilla-Api-Key"] == "owner-key"
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    api, clock = _api(handler)
    with api:
        assert api.request("GET", "/api/v1/me/workspaces") == {"items": []}
    assert clock.waits == [0.5, 1.0]


def test_argilla_client_gives_up_naming_the_last_failure():
    api, clock = _api(lambda request: httpx.Response(502, json={"detail": "bad gateway"}), 2)
    with api, pytest.raises(ArgillaError, match=r"after 3 tries \(HTTP 502: bad gateway\)"):
        api.request("GET", "/api/v1/me")
    assert len(clock.waits) == 2


def test_argilla_client_refusals_fail_at_once():
    api, clock = _api(lambda request: httpx.Response(422, json={"detail": "bad record"}))
    with api, pytest.raises(ArgillaError, match=r"refused PUT /x \(HTTP 422\): bad record"):
        api.request("PUT", "/x")
    assert clock.waits == []
    api, clock = _api(lambda request: httpx.Response(401))
    with api, pytest.raises(ArgillaError, match=r"refused the API key.*ARGILLA_API_KEY") as e:
        api.request("GET", "/api/v1/me")
    assert "owner-key" not in str(e.value)
    assert clock.waits == []
