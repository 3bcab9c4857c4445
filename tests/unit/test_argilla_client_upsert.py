"""What `ArgillaAPI.upsert` sends, over an `httpx.MockTransport`."""

from __future__ import annotations

import json

import httpx

from traitforge.annotators.argilla.client import ArgillaAPI


def test_upsert_asks_for_an_uncompressed_answer() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        items = json.loads(request.content)["items"] if request.content else []
        return httpx.Response(200, json={"items": items})

    with ArgillaAPI("http://argilla", "key", transport=httpx.MockTransport(answer)) as api:
        sent = api.upsert("d1", [{"external_id": "a"}, {"external_id": "b"}])
        api.request("GET", "/api/v1/me")

    assert sent == 2
    upsert, other = seen
    assert (upsert.method, upsert.url.path) == ("PUT", "/api/v1/datasets/d1/records/bulk")
    # Compressing the (large) answer costs the server more than it saves on loopback.
    assert upsert.headers["accept-encoding"] == "identity"
    # Only the upsert: other answers may still come compressed, and the key still travels.
    assert other.headers["accept-encoding"] != "identity"
    assert upsert.headers["x-argilla-api-key"] == "key"
