"""Label Studio's REST API (1.23), through one `httpx.Client`, with traitforge's retry policy.

Only the calls the backend makes, each checked against the real server in the integration
tests: projects (list, create, update), task import, the task listing with annotations and
predictions (`/api/tasks?project=..&fields=all`, pages of `page_size`, HTTP 404 past the last
page), users (list, create) and annotations (create). The token travels only in the
`Authorization: Token ...` header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from traitforge.annotators.label_studio.environment import LabelStudioServerError
from traitforge.annotators.label_studio.server import ENV_API_KEY, ENV_URL, Connection
from traitforge.annotators.rest import RetryingAPI
from traitforge.http_retry import Retryable

TASK_PAGE = 100  # tasks per listing page (the server's default page size)


class LabelStudioError(LabelStudioServerError):
    """The Label Studio server refused a request, or could not be reached."""


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict):
        return str(body.get("validation_errors") or body.get("detail") or body)[:500]
    return str(body)[:500]


class LabelStudioAPI(RetryingAPI):
    """Label Studio's REST API with retries: LabelStudioAPI(url, token, retries, ...)."""

    def _headers(self, secret: str) -> dict[str, str]:
        return {"Authorization": f"Token {secret}"}

    def _detail(self, response: httpx.Response) -> str:
        return _detail(response)

    @classmethod
    def connect(cls, connection: Connection, retries: int = 5) -> LabelStudioAPI:
        return cls(connection.url, connection.token, retries)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of the answer. Retries refused connections, timeouts, 5xx and 429; raises
        LabelStudioError with the server's reason otherwise."""
        response = self._response(method, path, kwargs)
        if response.is_error:
            raise LabelStudioError(
                f"Label Studio at {self.url} refused {method} {path} "
                f"(HTTP {response.status_code}): {_detail(response)}"
            )
        return response.json() if response.content else None

    def _response(self, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            response = self._tried(method, path, kwargs)
        except Retryable as e:
            raise LabelStudioError(
                f"the Label Studio server at {self.url} did not answer {method} {path} after "
                f"{self.retries + 1} tries ({e}). Check that it is running (the workspace's "
                f"own: `traitforge serve --backend label-studio --status`; yours: {ENV_URL}), "
                "then run the same command again: it resumes where it stopped"
            ) from e
        if response.status_code == 401:
            raise LabelStudioError(
                f"the Label Studio server at {self.url} refused the token (HTTP 401); set "
                f"{ENV_API_KEY} to the legacy API token of an owner or administrator of that "
                "server"
            )
        return response

    # -- projects ------------------------------------------------------------------------------
    def projects(self) -> dict[str, dict[str, Any]]:
        """Title -> project. Titles are not unique in Label Studio: the oldest (lowest id)
        wins, so a project created by a run killed before it heard the answer is the one
        every later run finds."""
        out: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            body = self.request("GET", "/api/projects", params={"page": page, "page_size": 100})
            for project in body["results"]:
                known = out.get(project["title"])
                if known is None or project["id"] < known["id"]:
                    out[project["title"]] = project
            if not body.get("next"):
                return out
            page += 1

    def create_project(self, fields: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/projects", json=fields)

    def update_project(self, project_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", f"/api/projects/{project_id}", json=fields)

    # -- tasks ---------------------------------------------------------------------------------
    def tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        """Every task of a project with its annotations and predictions, by id."""
        page, seen = 1, 0
        while True:
            response = self._response(
                "GET",
                "/api/tasks",
                {
                    "params": {
                        "project": project_id,
                        "page": page,
                        "page_size": TASK_PAGE,
                        "fields": "all",
                    }
                },
            )
            if response.status_code == 404 and page > 1:  # "Invalid page.": past the last one
                return
            if response.is_error:
                raise LabelStudioError(
                    f"Label Studio at {self.url} refused to list the tasks of project "
                    f"{project_id} (HTTP {response.status_code}): {_detail(response)}"
                )
            body = response.json()
            items = body.get("tasks") or []
            yield from items
            seen += len(items)
            if not items or seen >= int(body.get("total", 0)):
                return
            page += 1

    def import_tasks(self, project_id: int, items: list[dict[str, Any]]) -> list[int]:
        """Import tasks in one request (the server commits them together); their ids."""
        body = self.request(
            "POST",
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            json=items,
        )
        return [int(i) for i in body.get("task_ids") or []]

    def create_annotation(self, task_id: int, annotation: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/api/tasks/{task_id}/annotations", json=annotation)

    # -- users ---------------------------------------------------------------------------------
    def users(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/users"))

    def usernames(self) -> dict[int, str]:
        """User id -> the name judgements carry: the username, else the email."""
        return {int(u["id"]): u.get("username") or u["email"] for u in self.users()}

    def create_user(self, username: str, email: str) -> dict[str, Any]:
        """A member of the caller's organization (no password: it cannot log in)."""
        return self.request(
            "POST",
            "/api/users",
            json={"username": username, "email": email, "first_name": username},
        )
