"""Runs the real, unmodified argilla-server with traitforge's SQL search engine.

Executed by the server virtual environment's python, never imported by traitforge:

    SERVER_PYTHON launch.py prepare < owner.json   migrate the database, upsert the owner
    SERVER_PYTHON launch.py serve --port PORT      serve API + web UI on 127.0.0.1:PORT

The caller sets ARGILLA_DATABASE_URL and ARGILLA_HOME_PATH (and ARGILLA_REDIS_URL when it
started a redis-server). argilla_server reads its settings and opens its Redis connection when
first imported, so every argilla_server import below happens inside a function, after the
environment and the Redis patch are in place. Imports nothing from traitforge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from typing import Any
from urllib.parse import urlparse

ENGINE_NAME = "traitforge-sql"  # lower case: argilla-server lowercases the name it looks up
HOST = "127.0.0.1"  # never all interfaces: the server is for this machine's annotators

LOG = logging.getLogger("traitforge.launcher")


def _configure_environment() -> None:
    os.environ["ARGILLA_SEARCH_ENGINE"] = ENGINE_NAME
    # No telemetry calls from an embedded server (and none can leave this machine anyway).
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def _redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or 6379), 1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _use_redis() -> str:
    """A real Redis when the caller started one and it answers, else fakeredis in-process.

    argilla-server pings Redis at start and queues rq jobs there (record-status updates after
    a dataset's distribution changes, Hub import/export, webhooks). Nothing runs an rq worker
    here, so with either Redis those jobs wait in the queue; the annotation flow does not
    depend on them.
    """
    url = os.environ.get("ARGILLA_REDIS_URL")
    if url and _redis_reachable(url):
        return f"redis-server at {url}"
    import fakeredis
    import redis

    server = fakeredis.FakeServer()

    def from_url(url: str, **kwargs: Any) -> fakeredis.FakeRedis:
        return fakeredis.FakeRedis(server=server)

    # argilla_server.jobs.queues calls redis.from_url(settings.redis_url) at import time.
    redis.from_url = from_url
    return "fakeredis (in-process; no redis-server reachable)"


def prepare() -> dict[str, str]:
    """Migrate the database to the server's schema and create or update the owner account
    from the JSON on stdin: {"username", "password", "api_key", "workspace"}."""
    request = json.load(sys.stdin)
    _configure_environment()
    _use_redis()
    # What `python -m argilla_server database migrate` runs, without a second interpreter.
    from argilla_server.cli.database.migrate import migrate_db

    migrate_db(revision="head")
    return asyncio.run(_upsert_owner(request))


async def _upsert_owner(request: dict[str, str]) -> dict[str, str]:
    from argilla_server.constants import DEFAULT_API_KEY, DEFAULT_PASSWORD, DEFAULT_USERNAME
    from argilla_server.contexts import accounts
    from argilla_server.database import AsyncSessionLocal
    from argilla_server.models import User, UserRole, Workspace, WorkspaceUser

    async with AsyncSessionLocal() as db:
        workspace = await Workspace.get_by(db, name=request["workspace"])
        if workspace is None:
            workspace = await Workspace.create(db, name=request["workspace"], autocommit=False)
        password_hash = accounts.hash_password(request["password"])
        owner = await User.get_by(db, username=request["username"])
        if owner is None:
            owner = await User.create(
                db,
                first_name=request["username"],
                username=request["username"],
                role=UserRole.owner,
                password_hash=password_hash,
                api_key=request["api_key"],
                autocommit=False,
            )
            state = "created"
        else:
            # The credentials file is the source of truth: if it was regenerated, follow it.
            await owner.update(
                db,
                role=UserRole.owner,
                password_hash=password_hash,
                api_key=request["api_key"],
                autocommit=False,
            )
            state = "updated"
        await db.flush()
        if await WorkspaceUser.get_by(db, workspace_id=workspace.id, user_id=owner.id) is None:
            await WorkspaceUser.create(
                db, workspace_id=workspace.id, user_id=owner.id, autocommit=False
            )
        # Never leave Argilla's well-known default account usable on this database.
        default = await User.get_by(db, username=DEFAULT_USERNAME)
        if default is not None and (
            default.api_key == DEFAULT_API_KEY
            or accounts.verify_password(DEFAULT_PASSWORD, default.password_hash)
        ):
            await default.delete(db, autocommit=False)
            LOG.warning(
                "deleted user %r, which had Argilla's default credentials", default.username
            )
        await db.commit()
    return {"owner": state}


def serve(port: int) -> None:
    _configure_environment()
    redis_used = _use_redis()
    from argilla_server.search_engine import SearchEngine
    from sql_engine import SQLSearchEngine  # beside this file; sys.path[0] is its folder

    SearchEngine.register(engine_name=ENGINE_NAME)(SQLSearchEngine)

    import uvicorn
    from argilla_server import app

    LOG.info(
        "search engine: %s; redis: %s; serving on http://%s:%d", ENGINE_NAME, redis_used, HOST, port
    )
    uvicorn.run(app, host=HOST, port=port, access_log=False, log_level="info")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare")
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare()), flush=True)
    else:
        serve(args.port)


if __name__ == "__main__":
    main()
