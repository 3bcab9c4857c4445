"""What the Label Studio integration tests share: a module's own real Label Studio server,
TruthfulQA candidates to annotate, and a workspace whose config names Label Studio settings."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.paths import TRUTHFULQA
from traitforge.annotators.label_studio import LabelStudioServer
from traitforge.annotators.label_studio.server import ENV_API_KEY, ENV_URL
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import Candidate
from traitforge.workspace import Workspace, dump_config


@contextmanager
def running_server(root: Path) -> Iterator[tuple[str, str]]:
    """A Label Studio server of a workspace at `root`, started as its own (LABEL_STUDIO_URL /
    LABEL_STUDIO_API_KEY of the caller ignored): (url, owner token), stopped afterwards."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv(ENV_URL, raising=False)
        env.delenv(ENV_API_KEY, raising=False)
        server = LabelStudioServer(Workspace.open(root))
        connection = server.ensure_running()
    try:
        yield connection.url, connection.token
    finally:
        server.stop()


def truthfulqa_triples(data_dir: Path, config: Any, limit: int) -> list[list[Candidate]]:
    """A true and two false answers of the first `limit` bundled TruthfulQA questions."""
    out = []
    path = data_dir / "truthfulqa" / "TruthfulQA.csv"
    for parsed in source_format("truthfulqa").reader(path, config):
        if isinstance(parsed, Parsed):
            true = [c for c in parsed.candidates if c.gold["honesty"] == 1.0]
            false = [c for c in parsed.candidates if c.gold["honesty"] == 0.0]
            if true and len(false) >= 2:
                out.append([true[0], false[0], false[1]])
        if len(out) == limit:
            break
    return out


def write_truthfulqa_jsonl(path: Path, questions: int) -> None:
    """Two true and two false answers of the first `questions` TruthfulQA rows, as JSONL rows
    {prompt, response, true} for `traitforge ingest -f jsonl`."""
    with TRUTHFULQA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:questions]
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            answers = [(a, 1) for a in row["Correct Answers"].split(";")[:2]]
            answers += [(a, 0) for a in row["Incorrect Answers"].split(";")[:2]]
            for answer, true in answers:
                record = {"prompt": row["Question"], "response": answer.strip(), "true": true}
                out.write(json.dumps(record) + "\n")


def with_annotation(root: Path, **update: Any) -> Workspace:
    """The workspace at `root`, its saved config's annotation section updated with `update`."""
    ws = Workspace.open(root)
    annotation = ws.config.annotation.model_copy(update=update)
    config = ws.config.model_copy(update={"annotation": annotation})
    (root / Workspace.CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
    return Workspace.open(root)
