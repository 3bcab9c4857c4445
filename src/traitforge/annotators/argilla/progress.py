"""Annotation progress of a workspace's Argilla datasets, per record and per annotator."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from traitforge.annotators.argilla.client import ArgillaAPI, Connection
from traitforge.annotators.backends import DatasetProgress
from traitforge.schemas import ProjectConfig


def progress(
    config: ProjectConfig, connection: Connection, names: Sequence[str], retries: int | None = None
) -> list[DatasetProgress]:
    """Per dataset: records, completed (enough submissions) and pending, and per annotator
    the responses by status. Datasets not on the server are left out."""
    argilla = config.annotation.argilla
    out = []
    with ArgillaAPI.connect(connection, argilla.retries if retries is None else retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        for name in names:
            if name not in remote:
                continue
            dataset_id = str(remote[name]["id"])
            overall = api.request("GET", f"/api/v1/datasets/{dataset_id}/progress")
            users = api.request("GET", f"/api/v1/datasets/{dataset_id}/users/progress")["users"]
            annotators: dict[str, Counter[str]] = {}
            for user in users:
                counts: Counter[str] = Counter()
                for record_status in ("completed", "pending"):
                    counts.update(user.get(record_status) or {})
                annotators[user["username"]] = counts
            out.append(
                DatasetProgress(
                    dataset=name,
                    records=api.record_count(dataset_id),
                    completed=int(overall.get("completed", 0)),
                    pending=int(overall.get("pending", 0)),
                    annotators=annotators,
                )
            )
    return out
