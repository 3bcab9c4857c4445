"""Who talks to Argilla: the owner connection and the annotators' accounts.

Annotator accounts are made through Argilla's REST API with the owner's key, so the same code
serves the embedded server and an external Argilla (ARGILLA_API_URL / ARGILLA_API_KEY).
Generated passwords and keys are stored in WORKSPACE/argilla/annotators.json (mode 0600) and
never printed or logged.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from traitforge.annotators.server.environment import ArgillaServerError, Notify
from traitforge.annotators.server.files import (
    ServerPaths,
    load_or_create_owner,
    read_json,
)
from traitforge.annotators.server.process import ensure_server, server_status
from traitforge.annotators.server.state import write_private_json
from traitforge.workspace import Workspace

ENV_API_URL = "ARGILLA_API_URL"
ENV_API_KEY = "ARGILLA_API_KEY"
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Connection:
    """Where and as whom to reach Argilla with owner rights (for rg.Argilla or httpx)."""

    api_url: str
    api_key: str = field(repr=False)
    external: bool = False  # True: from ARGILLA_API_URL / ARGILLA_API_KEY, not embedded


@dataclass(frozen=True)
class AnnotatorAccount:
    """One annotator's login (web UI: username + password) and API key (simulated runs)."""

    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)


def owner_connection(
    workspace: Workspace, start: bool = True, notify: Notify | None = None
) -> Connection:
    """The owner's connection: ARGILLA_API_URL / ARGILLA_API_KEY when both are set (an
    external Argilla with Elasticsearch), else the workspace's embedded server, started if
    needed (`start=False` raises instead when it is not running).

    Use it wherever traitforge pushes records or pulls responses:
    `rg.Argilla(api_url=c.api_url, api_key=c.api_key)`.
    """
    url, key = os.environ.get(ENV_API_URL), os.environ.get(ENV_API_KEY)
    if url and key:
        return Connection(url.rstrip("/"), key, external=True)
    if start:
        info = ensure_server(workspace, notify=notify)
    else:
        status = server_status(workspace)
        if not status.running or status.info is None:
            raise ArgillaServerError(
                f"the embedded Argilla server of {workspace.root} is not running ({status.detail});"
                f" start it with `traitforge serve -w {workspace.root}`, or set {ENV_API_URL} and "
                f"{ENV_API_KEY} to use another Argilla"
            )
        info = status.info
    owner, _ = load_or_create_owner(ServerPaths.of(workspace))
    return Connection(info.url, owner.api_key)


def annotator_accounts(workspace: Workspace) -> list[AnnotatorAccount]:
    """The annotator accounts created for this workspace (from annotators.json), by name.

    Simulated annotators log in with these API keys; people use the username and password.
    """
    data = read_json(ServerPaths.of(workspace).annotators) or {}
    return [
        AnnotatorAccount(name, entry["password"], entry["api_key"])
        for name, entry in sorted(data.get("annotators", {}).items())
    ]


def add_annotators(
    workspace: Workspace, names: list[str], notify: Notify | None = None
) -> list[AnnotatorAccount]:
    """Create annotator accounts (role annotator, member of annotation.argilla.workspace),
    with generated passwords, and return them in the order of `names`.

    Idempotent: a name already in annotators.json keeps its password (reset only if it no
    longer works, e.g. after the database was replaced). A user that exists on the server but
    not in the file gets a new generated password, since the old one is unknown.
    """
    for name in names:
        if not _USERNAME.match(name):
            raise ArgillaServerError(
                f"annotator name {name!r} is not a valid Argilla username; use lower-case "
                "letters, digits, '-' and '_' (at most 64, starting with a letter or digit)"
            )
    paths = ServerPaths.of(workspace)
    connection = owner_connection(workspace, notify=notify)
    argilla_workspace = workspace.config.annotation.argilla.workspace
    data = read_json(paths.annotators) or {}
    stored: dict[str, dict[str, str]] = data.get("annotators", {})
    accounts = []
    with httpx.Client(
        base_url=connection.api_url,
        headers={"X-Argilla-Api-Key": connection.api_key},
        timeout=30.0,
    ) as client:
        workspace_id = _workspace_id(client, argilla_workspace)
        users = {u["username"]: u for u in _call(client, "GET", "/api/v1/users")["items"]}
        members = {
            u["username"]
            for u in _call(client, "GET", f"/api/v1/workspaces/{workspace_id}/users")["items"]
        }
        for name in dict.fromkeys(names):
            user = users.get(name)
            password = stored.get(name, {}).get("password")
            if user is None:
                password = password or secrets.token_urlsafe(18)
                user = _call(
                    client,
                    "POST",
                    "/api/v1/users",
                    json={
                        "first_name": name,
                        "username": name,
                        "role": "annotator",
                        "password": password,
                    },
                )
            elif user["role"] != "annotator":
                raise ArgillaServerError(
                    f"user {name!r} already exists on {connection.api_url} with role "
                    f"{user['role']}; pick another annotator name"
                )
            elif password is None or not _password_works(client, name, password):
                password = secrets.token_urlsafe(18)
                user = _call(
                    client, "PATCH", f"/api/v1/users/{user['id']}", json={"password": password}
                )
            if name not in members:
                _call(
                    client,
                    "POST",
                    f"/api/v1/workspaces/{workspace_id}/users",
                    json={"user_id": user["id"]},
                )
            stored[name] = {"username": name, "password": password, "api_key": user["api_key"]}
            # Saved after each account, so a failure later in the list loses nothing.
            write_private_json(
                paths.annotators,
                {
                    "api_url": connection.api_url,
                    "workspace": argilla_workspace,
                    "annotators": stored,
                },
            )
            accounts.append(AnnotatorAccount(name, password, user["api_key"]))
    return accounts


def annotators_file(workspace: Workspace) -> Path:
    """The 0600 file holding the annotators' passwords and keys."""
    return ServerPaths.of(workspace).annotators


def _workspace_id(client: httpx.Client, name: str) -> str:
    for item in _call(client, "GET", "/api/v1/me/workspaces")["items"]:
        if item["name"] == name:
            return str(item["id"])
    return str(_call(client, "POST", "/api/v1/workspaces", json={"name": name})["id"])


def _password_works(client: httpx.Client, username: str, password: str) -> bool:
    response = client.post("/api/v1/token", data={"username": username, "password": password})
    return response.status_code == 201


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as e:
        raise ArgillaServerError(
            f"cannot reach Argilla at {client.base_url} ({e}); check that the server runs "
            "(`traitforge serve --status`) or that ARGILLA_API_URL is right"
        ) from e
    if response.status_code in (401, 403):
        raise ArgillaServerError(
            f"Argilla at {client.base_url} refused the owner key ({method} {path}: HTTP "
            f"{response.status_code}); ARGILLA_API_KEY must belong to an owner"
        )
    if not response.is_success:
        raise ArgillaServerError(
            f"Argilla at {client.base_url} answered {method} {path} with HTTP "
            f"{response.status_code}: {response.text[:300]}"
        )
    return response.json()
