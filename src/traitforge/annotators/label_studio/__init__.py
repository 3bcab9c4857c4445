"""Label Studio as an annotation backend: its server, project layout, tasks and results.

The server is the real label-studio 1.23.2, run from its own virtual environment:

    connection = label_studio_connection(workspace)   # starts the workspace's server if needed
    httpx.get(f"{connection.url}/api/projects",
              headers={"Authorization": f"Token {connection.token}"})

With LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY set, `label_studio_connection` returns those
instead and no server is started.
"""

from traitforge.annotators.label_studio.environment import (
    LABEL_STUDIO_VERSION,
    LabelStudioServerError,
)
from traitforge.annotators.label_studio.server import (
    ENV_API_KEY,
    ENV_URL,
    Connection,
    LabelStudioServer,
    ServerPaths,
    ServerRun,
    ServerStatus,
    label_studio_connection,
)

__all__ = [
    "ENV_API_KEY",
    "ENV_URL",
    "LABEL_STUDIO_VERSION",
    "Connection",
    "LabelStudioServer",
    "LabelStudioServerError",
    "ServerPaths",
    "ServerRun",
    "ServerStatus",
    "label_studio_connection",
]
