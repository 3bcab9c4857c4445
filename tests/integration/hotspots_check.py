"""Run by the server environment's python (see test_server_hotspots.py), with the embedded
folder first on sys.path: calls argilla-server's functions unpatched and patched on the same
inputs and prints both results as JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from types import SimpleNamespace
from typing import Any

home = tempfile.mkdtemp()
os.environ["ARGILLA_HOME_PATH"] = home
os.environ["ARGILLA_DATABASE_URL"] = f"sqlite+aiosqlite:///{home}/argilla.db"

import app  # noqa: E402

app.use_redis()  # fakeredis: argilla_server opens its queues when imported

import hotspots  # noqa: E402
from argilla_server.bulk import records_bulk  # noqa: E402
from argilla_server.contexts import webhooks  # noqa: E402
from argilla_server.models import MetadataProperty, Question  # noqa: E402

QUESTION_SETTINGS: list[Any] = [
    {"type": "rating", "options": [{"value": 1}, {"value": 2}, {"value": 3}]},
    {"type": "label_selection", "options": [{"value": "a", "text": "A"}], "visible_options": None},
    {
        "type": "multi_label_selection",
        "options": [{"value": "a", "text": "A"}, {"value": "b", "text": "B"}],
    },
    {"type": "ranking", "options": [{"value": "x", "text": "X"}, {"value": "y", "text": "Y"}]},
    {"type": "text", "use_markdown": True},
    {
        "type": "span",
        "field": "prompt",
        "options": [{"value": "p", "text": "P"}],
        "allow_overlapping": False,
    },
    {"type": "rating", "options": []},  # too few options
    {"type": "rating"},  # missing options
    {"type": "not-a-question"},
    {"options": [{"value": 1}]},  # no discriminator
    "not a dict",
]
METADATA_SETTINGS: list[Any] = [
    {"type": "terms", "values": ["a", "b"]},
    {"type": "terms"},
    {"type": "integer", "min": 0, "max": 9},
    {"type": "float", "min": 0.5},
    {"type": "integer", "min": "low"},
    {"type": "unknown"},
    {},
]
METADATA_VALUES: list[Any] = ["a", ["a", "c"], 3, 11, -1, 0.7, 0.1, "x", None]


def outcome(call: Any) -> list[Any]:
    try:
        value = call()
    except Exception as e:  # the error, exactly as the server would report it
        return ["error", type(e).__name__, str(e)]
    return [
        "ok",
        type(value).__name__,
        value.model_dump(mode="json") if value is not None else None,
    ]


def settings_results() -> dict[str, Any]:
    results: dict[str, Any] = {"question": [], "metadata": [], "check_metadata": []}
    for settings in QUESTION_SETTINGS:
        results["question"].append(outcome(lambda s=settings: Question(settings=s).parsed_settings))
    for settings in METADATA_SETTINGS:
        prop = MetadataProperty(settings=settings)
        results["metadata"].append(outcome(lambda p=prop: p.parsed_settings))
        for value in METADATA_VALUES:
            results["check_metadata"].append(
                outcome(lambda p=prop, v=value: p.parsed_settings.check_metadata(v))
            )
    return results


def notifications(webhooks_enabled: list[Any]) -> list[list[str]]:
    """The record events a bulk upsert's notify step sends, with `webhooks_enabled` enabled."""
    sent: list[list[str]] = []

    async def notify(db: Any, event: Any, record: Any) -> list[Any]:
        sent.append([str(event), record.name])
        return []

    async def enabled(db: Any) -> list[Any]:
        return webhooks_enabled

    records_bulk.notify_record_event_v1 = notify
    webhooks.list_enabled_webhooks = enabled
    records = [
        SimpleNamespace(name="new", inserted_at=1, updated_at=1),
        SimpleNamespace(name="changed", inserted_at=1, updated_at=2),
    ]
    bulk = records_bulk.UpsertRecordsBulk(db=SimpleNamespace(), search_engine=None)
    asyncio.run(bulk._notify_upsert_record_events(records))
    return sent


def main() -> None:
    before = {
        "settings": settings_results(),
        "events_without_webhooks": notifications([]),
        "events_with_webhooks": notifications(["hook"]),
    }
    applied = hotspots.apply()
    after = {
        "settings": settings_results(),
        "events_with_webhooks": notifications(["hook"]),
    }
    # What the patch saves: with no webhook enabled, the events are not built at all.
    skipped = notifications([])
    json.dump(
        {"applied": applied, "before": before, "after": after, "skipped": skipped}, sys.stdout
    )


if __name__ == "__main__":
    main()
