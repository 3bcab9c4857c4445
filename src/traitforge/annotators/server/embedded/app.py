"""The ASGI app of one embedded-server process: argilla-server, configured for traitforge.

uvicorn runs several workers from an import string (`app:create_app`, a factory), each in a
fresh interpreter, so everything a server process needs happens here rather than in the
launcher's `serve`: the environment, the Redis choice, the SQL search engine's registration
and the server patches. The launcher's `prepare` uses the first two as well.

argilla_server reads its settings and opens its Redis connection when first imported, so
every argilla_server import below happens inside a function, after the environment and the
Redis patch are in place. Runs in the server's virtual environment; imports nothing from
traitforge.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
from typing import Any
from urllib.parse import urlparse

ENGINE_NAME = "traitforge-sql"  # lower case: argilla-server lowercases the name it looks up
HOST = "127.0.0.1"  # never all interfaces: the server is for this machine's annotators
# Seconds a connection waits for another's write lock before "database is locked". Several
# workers (and the connection pool within one) write the same SQLite file; a bulk upsert
# holds the lock for about a second on a busy machine, argilla-server's default waits 5 s.
SQLITE_TIMEOUT_S = 60

LOG = logging.getLogger("traitforge.launcher")


def configure_environment() -> None:
    os.environ["ARGILLA_SEARCH_ENGINE"] = ENGINE_NAME
    os.environ["ARGILLA_DATABASE_SQLITE_TIMEOUT"] = str(SQLITE_TIMEOUT_S)
    # No telemetry calls from an embedded server (and none can leave this machine anyway).
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def use_wal(database_url: str) -> str:
    """Put the SQLite database in write-ahead-log mode, which lasts in the file.

    In WAL mode readers never wait for a writer nor a writer for readers, so workers serving
    searches and pulls do not stall each other's bulk upserts; writes still go one at a time,
    each waiting up to SQLITE_TIMEOUT_S. Called before any worker starts (the switch needs
    the database to itself). Returns the journal mode now in effect.
    """
    path = _sqlite_path(database_url)
    with sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S) as db:
        return str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0])


def _sqlite_path(database_url: str) -> str:
    # sqlite+aiosqlite:///ABSOLUTE/PATH?check_same_thread=False -> /ABSOLUTE/PATH
    scheme, sep, rest = database_url.partition(":///")
    if not sep or not scheme.startswith("sqlite"):
        raise ValueError(f"not a SQLite database URL: {database_url!r}")
    return rest.split("?", 1)[0]


def _redis_reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or HOST, parsed.port or 6379), 1.0) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def use_redis() -> str:
    """A real Redis when the caller started one and it answers, else fakeredis in-process.

    argilla-server pings Redis at start and queues rq jobs there (record-status updates after
    a dataset's distribution changes, Hub import/export, webhooks). Nothing runs an rq worker
    here, so with either Redis those jobs wait in the queue; the annotation flow does not
    depend on them. With several workers, each has its own fakeredis.
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


def create_app() -> Any:
    """argilla-server's FastAPI app with the SQL search engine and the server patches."""
    # A spawned worker runs no launcher main(): without this its lines below go nowhere.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    configure_environment()
    redis_used = use_redis()
    import hotspots  # beside this file, like sql_engine
    from argilla_server.search_engine import SearchEngine
    from sql_engine import SQLSearchEngine  # beside this file, on sys.path via the launcher

    SearchEngine.register(engine_name=ENGINE_NAME)(SQLSearchEngine)
    patches = hotspots.apply()
    from argilla_server import app

    LOG.info(
        "process %d: search engine: %s; redis: %s; server patches: %s",
        os.getpid(),
        ENGINE_NAME,
        redis_used,
        ", ".join(patches) or "none",
    )
    return app
