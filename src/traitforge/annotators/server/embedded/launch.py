"""Runs the real, unmodified argilla-server with traitforge's SQL search engine.

Executed by the server virtual environment's python, never imported by traitforge:

    SERVER_PYTHON launch.py prepare < owner.json   migrate the database, upsert the owner
    SERVER_PYTHON launch.py serve --port PORT [--workers N]
                                                   serve API + web UI on 127.0.0.1:PORT

The caller sets ARGILLA_DATABASE_URL and ARGILLA_HOME_PATH (and ARGILLA_REDIS_URL when it
started a redis-server). `prepare` runs in one process; what each serving process needs is in
`app.py` beside this file. argilla_server reads its settings and opens its Redis connection
when first imported, so every argilla_server import happens inside a function, after the
environment and the Redis patch are in place. Imports nothing from traitforge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

from app import HOST, configure_environment, use_redis, use_wal  # beside this file

LOG = logging.getLogger("traitforge.launcher")


def prepare() -> dict[str, str]:
    """Migrate the database to the server's schema and create or update the owner account
    from the JSON on stdin: {"username", "password", "api_key", "workspace"}."""
    request = json.load(sys.stdin)
    configure_environment()
    use_redis()
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


def serve(port: int, workers: int) -> None:
    """Serve with `workers` uvicorn processes sharing the port. Each builds its app with
    `app.create_app` in a fresh interpreter (one worker: in this process), so this process
    imports no argilla_server; with several, it supervises them and stops them on SIGTERM."""
    if workers > 1:
        mode = use_wal(os.environ["ARGILLA_DATABASE_URL"])
        LOG.info("%d workers; SQLite journal mode: %s", workers, mode)
    import uvicorn

    LOG.info("serving on http://%s:%d", HOST, port)
    uvicorn.run(
        "app:create_app",
        factory=True,
        host=HOST,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare")
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare()), flush=True)
    else:
        serve(args.port, args.workers)


if __name__ == "__main__":
    main()
