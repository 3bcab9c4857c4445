"""The embedded Argilla server: the real argilla-server 2.8.0, web UI included, run from its
own virtual environment with traitforge's SQL search engine instead of Elasticsearch.

Typical use by a backend:

    connection = owner_connection(workspace)          # starts the server if needed
    client = rg.Argilla(api_url=connection.api_url, api_key=connection.api_key)

and for simulated annotators: `add_annotators(workspace, ["ann-1", "ann-2"])` then each
account's `api_key`. With ARGILLA_API_URL and ARGILLA_API_KEY set, `owner_connection` returns
those instead and no embedded server is started.
"""

from traitforge.annotators.server.accounts import (
    AnnotatorAccount,
    Connection,
    add_annotators,
    annotator_accounts,
    annotators_file,
    owner_connection,
)
from traitforge.annotators.server.environment import (
    ARGILLA_SERVER_VERSION,
    ArgillaServerError,
    environment_dir,
    server_python,
)
from traitforge.annotators.server.files import ServerPaths
from traitforge.annotators.server.process import (
    ServerInfo,
    ServerStatus,
    ensure_server,
    free_port,
    server_status,
    stop_server,
)

__all__ = [
    "ARGILLA_SERVER_VERSION",
    "AnnotatorAccount",
    "ArgillaServerError",
    "Connection",
    "ServerInfo",
    "ServerPaths",
    "ServerStatus",
    "add_annotators",
    "annotator_accounts",
    "annotators_file",
    "ensure_server",
    "environment_dir",
    "free_port",
    "owner_connection",
    "server_python",
    "server_status",
    "stop_server",
]
