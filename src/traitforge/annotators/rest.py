"""One `httpx.Client` with traitforge's retry policy (`traitforge.http_retry`), shared by the
Argilla and Label Studio REST clients; each adds its own calls, credentials header and
messages.

Refused connections, timeouts, 5xx and 429 are retried with exponential backoff (honouring
Retry-After): a server that restarts mid-push costs a pause, not a failed run.
"""

from __future__ import annotations

import time
from typing import Any, Self

import httpx

from traitforge.http_retry import Backoff, Retryable, Sleep, retry_after, retryable_status, retrying


class RetryingAPI:
    """The transport of a REST client: `url`, and `secret` sent only in the headers that
    `_headers` makes of it. `backoff`, `sleep` and `transport` are for tests: a fixed schedule,
    a clock that does not wait, an `httpx.MockTransport` instead of the network."""

    # Jitter takes each wait to between half and all of base * 2**k: 0.5 s, 1 s, ... up to
    # 8 s at least, so five retries outlast a restart of the embedded server (~10 s).
    BACKOFF_BASE_S = 1.0
    BACKOFF_MAX_S = 16.0
    LIMITS: httpx.Limits | None = None  # httpx's default pool when None

    def __init__(
        self,
        url: str,
        secret: str,
        retries: int = 5,
        timeout: float = 120.0,
        backoff: Backoff | None = None,
        sleep: Sleep = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retries = retries
        self.backoff = backoff or Backoff(self.BACKOFF_BASE_S, self.BACKOFF_MAX_S)
        self._sleep = sleep
        # The secret travels only in these headers; never in a message or log line.
        extra: dict[str, Any] = {"limits": self.LIMITS} if self.LIMITS is not None else {}
        self._http = httpx.Client(
            base_url=self.url,
            headers=self._headers(secret),
            timeout=timeout,
            transport=transport,
            **extra,
        )

    def _headers(self, secret: str) -> dict[str, str]:
        raise NotImplementedError

    def _detail(self, response: httpx.Response) -> str:
        """The server's reason for an error answer, shortened."""
        raise NotImplementedError

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tried(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """The answer, after retries; `Retryable` when the server never gave a final one."""
        return retrying(
            lambda: self._send(method, path, kwargs), self.retries, self.backoff, self._sleep
        )

    def _send(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        """One try; `Retryable` when the server may answer the same request next time."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise Retryable(f"{type(e).__name__}: {e}") from e
        if retryable_status(response.status_code):
            raise Retryable(
                f"HTTP {response.status_code}: {self._detail(response)}",
                retry_after_s=retry_after(response),
            )
        return response
