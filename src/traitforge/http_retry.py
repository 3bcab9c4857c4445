"""Retrying HTTP requests: exponential backoff with jitter, and one loop that repeats an
attempt while it fails in a way worth repeating.

Every HTTP client of traitforge shares it (the Argilla API client, the OpenAI-compatible
endpoint generator). A client decides which failures are worth repeating (it raises
`Retryable` for those) and words its own message once the attempts run out; the schedule and
the waiting live here. The clock is injectable (`sleep`), so a test runs a whole schedule
without waiting. Importable from every floor but `schemas`, like `traitforge.errors`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

T = TypeVar("T")
Sleep = Callable[[float], None]  # seconds -> None; time.sleep outside tests


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt k waits base * 2**k (at most `cap_s`), scaled
    by a random factor in [0.5, 1) so that concurrent workers hitting the same overloaded
    server spread their retries out instead of retrying in lock-step."""

    base_s: float = 0.5
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        exponential = min(self.cap_s, self.base_s * 2**attempt)
        delay = exponential * (0.5 + 0.5 * self.rng.random())
        # A server that says how long to wait knows better than our guess (capped: a huge
        # Retry-After would stall the whole run).
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.cap_s))
        return delay


class Retryable(Exception):
    """A failed attempt worth repeating. Its message says what went wrong, `fix` what to do
    if every attempt fails, `retry_after_s` how long the server asked to wait (if it did)."""

    def __init__(self, message: str, fix: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.fix = fix
        self.retry_after_s = retry_after_s


def retrying(
    attempt: Callable[[], T], retries: int, backoff: Backoff, sleep: Sleep = time.sleep
) -> T:
    """The result of the first call of `attempt` that does not raise `Retryable`: at most
    `retries` + 1 calls, sleeping `backoff.delay(n)` before repeat n (0, 1, ...). Any other
    exception propagates at once; when every call failed, the last `Retryable` propagates for
    the caller to word."""
    for n in range(retries):
        try:
            return attempt()
        except Retryable as e:
            sleep(backoff.delay(n, e.retry_after_s))
    return attempt()


def retryable_status(status: int) -> bool:
    """Whether an HTTP status is the server's trouble, which may pass (429 and every 5xx),
    rather than the request's, which repeating cannot mend."""
    return status == 429 or status >= 500


def retry_after(response: httpx.Response) -> float | None:
    """The response's Retry-After in seconds; None when absent or an HTTP date (the backoff's
    own delay then applies)."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None
