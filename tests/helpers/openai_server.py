"""A minimal OpenAI-compatible chat-completions server for tests, backed by a real model.

It serves POST /v1/chat/completions on 127.0.0.1 from a thread, counts every request, records
what each asked for, can fail its first requests with HTTP 503 (to exercise retries), and can
require a bearer key (to check that the client sends one).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from traitforge.curation.generation import Generator, SampleRequest, SamplingParams


class OpenAIServer:
    def __init__(
        self, generator: Generator, fail_first: int = 0, api_key: str | None = None
    ) -> None:
        self.generator = generator
        self.fail_first = fail_first
        self.api_key = api_key
        self.requests = 0  # every POST to the completions path, failed ones included
        self.bodies: list[dict[str, Any]] = []  # bodies of the requests that were answered
        self.answers: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> OpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _complete(self, body: dict[str, Any]) -> dict[str, Any]:
        request = SampleRequest(
            key="",
            messages=body["messages"],
            params=SamplingParams(body["temperature"], body["top_p"], body["max_tokens"]),
            sample_index=0,
            seed=body["seed"],
        )
        sample = self.generator.generate(request)
        with self._lock:
            self.bodies.append(body)
            self.answers.append(sample.text)
        return {
            "id": f"chatcmpl-{len(self.bodies)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": sample.text},
                    "finish_reason": sample.finish_reason,
                }
            ],
            "usage": {"completion_tokens": sample.details.get("completion_tokens", 0)},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/chat/completions":
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with server._lock:
                    server.requests += 1
                    fail = server.requests <= server.fail_first
                if server.api_key and self.headers.get("Authorization") != (
                    f"Bearer {server.api_key}"
                ):
                    self._reply(401, {"error": {"message": "invalid api key"}})
                    return
                if fail:
                    self._reply(503, {"error": {"message": "model is loading"}})
                    return
                self._reply(200, server._complete(body))

        return Handler
