"""Any OpenAI-compatible chat-completions endpoint: vLLM, TGI, llama.cpp server, OpenAI...

The base URL and key come from the environment only (TRAITFORGE_OPENAI_BASE_URL,
TRAITFORGE_OPENAI_API_KEY): flags end up in shell history and process lists. The key is never
put in an error message, a repr or a log line.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from traitforge.curation.generation.base import Sample, SampleRequest
from traitforge.errors import ConfigError, TraitforgeError
from traitforge.http_retry import (
    Backoff,
    Retryable,
    Sleep,
    retry_after,
    retryable_status,
    retrying,
)
from traitforge.schemas import GenerationConfig

BASE_URL_ENV = "TRAITFORGE_OPENAI_BASE_URL"
API_KEY_ENV = "TRAITFORGE_OPENAI_API_KEY"
_URL_EXAMPLE = "http://127.0.0.1:8000/v1"


@dataclass(frozen=True)
class EndpointSettings:
    base_url: str
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EndpointSettings:
        env = os.environ if environ is None else environ
        base_url = env.get(BASE_URL_ENV, "").strip()
        if not base_url:
            raise ConfigError(
                f"curation.generation.backend is 'openai' but {BASE_URL_ENV} is not set; "
                f"export it to the server's base URL including /v1, e.g. {_URL_EXAMPLE} "
                f"(and {API_KEY_ENV} if the server needs a key)"
            )
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL as e:
            raise ConfigError(
                f"{BASE_URL_ENV} is not a valid URL ({e}); e.g. {_URL_EXAMPLE}"
            ) from e
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"{BASE_URL_ENV} must be an http(s) URL with a host, e.g. {_URL_EXAMPLE}; got "
                f"{display_url(base_url)!r}"
            )
        return cls(base_url.rstrip("/"), env.get(API_KEY_ENV) or None)

    @property
    def completions_url(self) -> str:
        return f"{self.base_url}/chat/completions"


def display_url(url: str) -> str:
    """A URL fit for messages: without user:password or query string, which may hold secrets."""
    try:
        parsed = httpx.URL(url)
        return str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    except (httpx.InvalidURL, TypeError):
        return "<invalid URL>"


class EndpointGenerator:
    """Samples responses from an OpenAI-compatible chat-completions endpoint.

    One request per sample (n=1 with the sample's own seed) so each unit of work is
    independent: a re-run asks again for exactly the units that are missing. Connection
    errors, timeouts, 429 and 5xx are retried with backoff (`traitforge.http_retry`); any
    other 4xx is our request's fault and fails at once, since repeating it cannot help.
    """

    backend = "openai"

    def __init__(
        self,
        config: GenerationConfig,
        settings: EndpointSettings | None = None,
        transport: httpx.BaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.config = config
        self.model = config.model
        self.concurrency = config.concurrency
        self._settings = settings
        self._transport = transport
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> EndpointSettings:
        if self._settings is None:
            self._settings = EndpointSettings.from_env()
        return self._settings

    def setup(self) -> None:
        with self._lock:
            if self._client is not None:
                return
            settings = self.settings
            headers = {"Content-Type": "application/json"}
            if settings.api_key:
                headers["Authorization"] = f"Bearer {settings.api_key}"
            self._client = httpx.Client(
                headers=headers,
                timeout=self.config.timeout_s,
                transport=self._transport,
                limits=httpx.Limits(max_connections=self.concurrency),
            )

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def payload(self, request: SampleRequest) -> dict[str, Any]:
        params = request.params
        return {
            "model": self.model,
            "messages": request.messages,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": request.seed,
            "n": 1,
        }

    def generate(self, request: SampleRequest) -> Sample:
        self.setup()
        assert self._client is not None
        url = self.settings.completions_url
        client = self._client
        retries = self.config.retries
        try:
            return retrying(
                lambda: self._attempt(client, url, request), retries, self.backoff, self._sleep
            )
        except Retryable as e:
            raise TraitforgeError(
                f"the chat-completions endpoint {display_url(url)} failed {retries + 1} "
                f"time(s): {e}. Fix: {e.fix}"
            ) from e

    def _attempt(self, client: httpx.Client, url: str, request: SampleRequest) -> Sample:
        try:
            response = client.post(url, content=json.dumps(self.payload(request)))
        except httpx.TimeoutException as e:
            raise Retryable(
                f"no answer within {self.config.timeout_s:g} s ({type(e).__name__})",
                "raise curation.generation.timeout_s, or lower curation.generation.concurrency "
                "or max_new_tokens so the server keeps up",
            ) from e
        except httpx.TransportError as e:
            raise Retryable(
                f"cannot connect ({type(e).__name__}: {e})",
                f"start the server (e.g. `vllm serve MODEL` or `llama-server -m MODEL.gguf`), "
                f"or set {BASE_URL_ENV} to its base URL including /v1, e.g. {_URL_EXAMPLE}",
            ) from e
        status = response.status_code
        if retryable_status(status):
            raise Retryable(
                f"HTTP {status} {_excerpt(response)}",
                "the server is overloaded or failing: check its logs, lower "
                "curation.generation.concurrency, or raise curation.generation.retries",
                retry_after(response),
            )
        if status >= 400:
            raise TraitforgeError(
                f"the chat-completions endpoint {display_url(url)} refused the request for "
                f"model {self.model!r}: HTTP {status} {_excerpt(response)}. Fix: "
                f"{_fix_for(status)}"
            )
        return _parse(response, display_url(url))


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return f"set {API_KEY_ENV} to a key this server accepts"
    if status == 404:
        return (
            f"check that {BASE_URL_ENV} ends with /v1 (e.g. {_URL_EXAMPLE}) and that the server "
            "serves curation.generation.model"
        )
    return (
        "check curation.generation.model and the sampling settings against what the server "
        "accepts (a prompt longer than its context also gives this)"
    )


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    text = " ".join(response.text.split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"({text})" if text else ""


def _parse(response: httpx.Response, url: str) -> Sample:
    try:
        data = response.json()
        choice = data["choices"][0]
        content = choice["message"].get("content") or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
        raise TraitforgeError(
            f"the endpoint {url} answered HTTP {response.status_code} with something that is "
            f"not an OpenAI chat completion {_excerpt(response)}. Fix: point {BASE_URL_ENV} at "
            "an OpenAI-compatible server's /v1 base URL"
        ) from e
    if not isinstance(content, str):
        content = str(content)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = {
        "served_model": data.get("model"),
        "completion_tokens": usage.get("completion_tokens"),
    }
    return Sample(
        text=content,
        finish_reason=choice.get("finish_reason"),
        details={k: v for k, v in details.items() if v is not None},
    )
