"""Argilla's REST API, through one `httpx.Client` shared by every thread of a command.

httpx's client is thread-safe (the SDK's resources are not documented to be), so a push runs
its bulk upserts concurrently through this one client. Every request shares one retry policy
(`traitforge.http_retry`): a server that restarts mid-push costs a pause, not a failed run, and
a server that stays down gives one clear error. The API key travels only in a header.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

import httpx

from traitforge.annotators.rest import RetryingAPI
from traitforge.errors import TraitforgeError
from traitforge.http_retry import Retryable

# Server limits (argilla-server 2.8): records per bulk upsert, records per list page.
MAX_UPSERT = 500
LIST_PAGE = 1000

_RECORD_ID = {"entity": "record", "property": "id"}
_RECORD_UPDATED_AT = {"entity": "record", "property": "updated_at"}


class ArgillaError(TraitforgeError):
    """The Argilla server refused a request, or could not be reached."""


class Connection(Protocol):
    """Where the server is and whose key to use (the embedded server's Connection fits)."""

    @property
    def api_url(self) -> str: ...

    @property
    def api_key(self) -> str: ...


class ArgillaAPI(RetryingAPI):
    """Argilla's REST API with retries: ArgillaAPI(api_url, api_key, retries, ...). Safe to
    share between threads."""

    LIMITS = httpx.Limits(max_connections=64, max_keepalive_connections=64)

    @property
    def api_url(self) -> str:
        return self.url

    def _headers(self, secret: str) -> dict[str, str]:
        return {"X-Argilla-Api-Key": secret}

    def _detail(self, response: httpx.Response) -> str:
        return _detail(response)

    @classmethod
    def connect(cls, connection: Connection, retries: int = 5) -> ArgillaAPI:
        return cls(connection.api_url, connection.api_key, retries)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of the answer. Retries refused connections, timeouts, 5xx and 429 with
        exponential backoff; raises ArgillaError with the server's reason otherwise."""
        try:
            response = self._tried(method, path, kwargs)
        except Retryable as e:
            raise ArgillaError(
                f"the Argilla server at {self.api_url} did not answer {method} {path} after "
                f"{self.retries + 1} tries ({e}). Check that it is running (for the embedded "
                "server, that the workspace's server started; for your own, ARGILLA_API_URL), "
                "then run the same command again: it resumes where it stopped"
            ) from e
        if response.status_code == 401:
            raise ArgillaError(
                f"the Argilla server at {self.api_url} refused the API key (HTTP 401); set "
                "ARGILLA_API_KEY to the key of an owner account of that server"
            )
        if response.is_error:
            raise ArgillaError(
                f"Argilla at {self.api_url} refused {method} {path} "
                f"(HTTP {response.status_code}): {_detail(response)}"
            )
        return response.json() if response.content else None

    # -- lookups -------------------------------------------------------------------------------
    def workspace_id(self, name: str, create: bool = False) -> str | None:
        for item in self.request("GET", "/api/v1/me/workspaces")["items"]:
            if item["name"] == name:
                return str(item["id"])
        if not create:
            return None
        return str(self.request("POST", "/api/v1/workspaces", json={"name": name})["id"])

    def datasets(self, workspace_id: str) -> dict[str, dict[str, Any]]:
        items = self.request("GET", "/api/v1/me/datasets")["items"]
        return {d["name"]: d for d in items if str(d["workspace_id"]) == workspace_id}

    def question_ids(self, dataset_id: str) -> dict[str, str]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
        return {q["name"]: str(q["id"]) for q in items}

    def field_names(self, dataset_id: str) -> set[str]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/fields")["items"]
        return {f["name"] for f in items}

    def metadata_names(self, dataset_id: str) -> set[str]:
        path = f"/api/v1/me/datasets/{dataset_id}/metadata-properties"
        return {m["name"] for m in self.request("GET", path)["items"]}

    def vector_dimensions(self, dataset_id: str) -> dict[str, int]:
        items = self.request("GET", f"/api/v1/datasets/{dataset_id}/vectors-settings")["items"]
        return {v["name"]: int(v["dimensions"]) for v in items}

    def records(self, dataset_id: str, include: str | None = None) -> Iterator[dict[str, Any]]:
        """Every record of a dataset (owner endpoint; reads the database, not the search
        engine), oldest first, page by page."""
        for page in self.record_pages(dataset_id, include):
            yield from page

    def record_pages(
        self, dataset_id: str, include: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """`records`, one list page (at most LIST_PAGE records) at a time."""
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": LIST_PAGE}
            if include:
                params["include"] = include
            page = self.request("GET", f"/api/v1/datasets/{dataset_id}/records", params=params)
            if page["items"]:
                yield page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def changed_record_pages(
        self, dataset_id: str, since: datetime, include: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The records whose `updated_at`, as the search engine keeps it, is `since` or later,
        by record id, one page at a time. Pages go by id (each asks for ids from the last one
        on), not by offset, so a record that joins or leaves the match meanwhile shifts none
        of the others past a page boundary."""
        path = f"/api/v1/datasets/{dataset_id}/records/search"
        params: dict[str, Any] = {"limit": LIST_PAGE}
        if include:
            params["include"] = include
        last: str | None = None
        while True:
            conditions: list[dict[str, Any]] = [
                {"type": "range", "scope": _RECORD_UPDATED_AT, "ge": since.isoformat()}
            ]
            if last is not None:
                conditions.append({"type": "range", "scope": _RECORD_ID, "ge": last})
            body = {"filters": {"and": conditions}, "sort": [{"scope": _RECORD_ID, "order": "asc"}]}
            found = self.request("POST", path, params=params, json=body)["items"]
            page = [item["record"] for item in found if str(item["record"]["id"]) != last]
            if page:
                yield page
            if not page or len(found) < LIST_PAGE:
                return  # a short page is the last: no request only to learn that
            last = str(page[-1]["id"])

    def search_engine(self) -> dict[str, Any]:
        """What the server says of its search engine (`distribution`, `version`, ...)."""
        return dict(self.request("GET", "/api/v1/status").get("search_engine") or {})

    def record_count(self, dataset_id: str) -> int:
        path = f"/api/v1/datasets/{dataset_id}/records"
        return int(self.request("GET", path, params={"limit": 1})["total"])

    def external_ids(self, dataset_id: str) -> set[str]:
        return {r["external_id"] for r in self.records(dataset_id) if r.get("external_id")}

    def usernames(self) -> dict[str, str]:
        return {str(u["id"]): u["username"] for u in self.request("GET", "/api/v1/users")["items"]}

    def upsert(self, dataset_id: str, items: list[dict[str, Any]]) -> int:
        path = f"/api/v1/datasets/{dataset_id}/records/bulk"
        # The answer repeats every record with its vectors (~1 MB per 200 records); gzipping
        # that at level 9 took a fifth of the embedded server's time per upsert, to save
        # bytes on what is usually a loopback connection.
        headers = {"Accept-Encoding": "identity"}
        return len(self.request("PUT", path, json={"items": items}, headers=headers)["items"])


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    text = str(detail)
    return text if len(text) <= 500 else text[:497] + "..."
