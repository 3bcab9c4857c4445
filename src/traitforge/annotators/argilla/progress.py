"""Annotation progress of a workspace's Argilla datasets, per record and per annotator.

Every number is counted from one listing of the records and their responses (the database,
not the search engine): records, complete ones (annotation.argilla.min_submitted submitted
answers), pending ones and each annotator's answers always add up, also when only one round's
records are counted. Argilla's own progress endpoints count every record of a dataset, which
holds all rounds, and are read from another source than the record count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from traitforge.annotators.argilla.client import ArgillaAPI, Connection
from traitforge.annotators.backends import DatasetProgress
from traitforge.schemas import ProjectConfig


def progress(
    config: ProjectConfig,
    connection: Connection,
    names: Sequence[str],
    retries: int | None = None,
    tasks: Collection[str] | None = None,
) -> list[DatasetProgress]:
    """Per dataset: records (only those of `tasks`, when given), completed and pending, and
    per annotator the responses by status. Datasets not on the server are left out."""
    argilla = config.annotation.argilla
    out = []
    with ArgillaAPI.connect(connection, argilla.retries if retries is None else retries) as api:
        workspace_id = api.workspace_id(argilla.workspace)
        remote = api.datasets(workspace_id) if workspace_id else {}
        present = [n for n in names if n in remote]
        users = api.usernames() if present else {}
        for name in present:
            records = api.records(str(remote[name]["id"]), include="responses")
            out.append(count_progress(name, records, argilla.min_submitted, users, tasks))
    return out


def count_progress(
    dataset: str,
    records: Iterable[Mapping[str, Any]],
    min_submitted: int,
    users: Mapping[str, str],
    tasks: Collection[str] | None = None,
) -> DatasetProgress:
    """One dataset's progress from its records with their responses. With `tasks`, only the
    records of those tasks (by external id) are counted; an annotator who answered other
    records of the dataset is still listed, with what they answered of these (maybe none), so
    the loop can share the work among everyone who annotates there."""
    annotators: dict[str, Counter[str]] = {}
    total = complete = 0
    for record in records:
        counted = tasks is None or record.get("external_id") in tasks
        submitted = 0
        for response in record.get("responses") or []:
            user_id = str(response.get("user_id"))
            statuses = annotators.setdefault(users.get(user_id, user_id), Counter())
            if counted:
                status = str(response.get("status"))
                statuses[status] += 1
                submitted += status == "submitted"
        if counted:
            total += 1
            complete += submitted >= min_submitted
    return DatasetProgress(
        dataset=dataset,
        records=total,
        completed=complete,
        pending=total - complete,
        annotators=annotators,
    )
