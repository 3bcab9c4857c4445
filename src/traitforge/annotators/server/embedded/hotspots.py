"""In-process speed-ups of argilla-server's record bulk upsert, applied by the launcher.

Each patch is a pure optimisation: the server answers exactly as unpatched (tests in
tests/integration/test_server_hotspots.py compare both on the same inputs). Each first checks
that the code it replaces is still the code it was written against (by the names that code
uses) and otherwise leaves it alone and logs a warning, so another argilla-server version
starts unpatched rather than wrong. TRAITFORGE_SERVER_PATCHES=off applies none.

Measured on a bulk upsert of 200 records (argilla-server 2.8), both patches remove most of the
server's time per record:
- `parsed_settings`: `Question.parsed_settings` and `MetadataProperty.parsed_settings` build a
  new pydantic `TypeAdapter` (a full schema generation, about 2 ms) on every call, and record
  validation calls them once per suggestion and per metadata value. The patch builds each
  adapter once; validating with the same adapter gives the same result and the same errors.
- `record_events`: after a bulk upsert, the server builds a webhook event per record (a
  dataset query with five eager loads, plus the record's serialisation) and then drops it when
  no webhook is enabled. The patch asks once per bulk whether any webhook is enabled and skips
  the loop when none is; with one enabled, the original loop runs unchanged.

Runs in the server's virtual environment and imports nothing from traitforge.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger("traitforge.launcher")

DISABLE_ENV = "TRAITFORGE_SERVER_PATCHES"


def _code_names(function: Any) -> set[str]:
    """Global and attribute names a function's code uses (its fingerprint for the guards)."""
    code = getattr(function, "__code__", None)
    return set(code.co_names) if code is not None else set()


def patch_parsed_settings() -> None:
    """One `TypeAdapter` per settings type instead of one per call."""
    from argilla_server.models import database
    from pydantic import TypeAdapter

    for model, settings_type in (
        (database.Question, "QuestionSettings"),
        (database.MetadataProperty, "MetadataPropertySettings"),
    ):
        current = model.__dict__.get("parsed_settings")
        expected = {"TypeAdapter", settings_type, "validate_python", "settings"}
        if not isinstance(current, property) or not expected <= _code_names(current.fget):
            raise LookupError(f"{model.__name__}.parsed_settings is not the expected property")
        adapter = TypeAdapter(getattr(database, settings_type))
        model.parsed_settings = _parsed_settings_property(adapter, current.fget.__doc__)


def _parsed_settings_property(adapter: Any, doc: str | None) -> property:
    def parsed_settings(self: Any) -> Any:
        return adapter.validate_python(self.settings)

    parsed_settings.__doc__ = doc
    return property(parsed_settings)


def patch_record_events() -> None:
    """Skip building per-record webhook events when no webhook is enabled to receive them."""
    from argilla_server.bulk import records_bulk
    from argilla_server.contexts import webhooks
    from argilla_server.jobs import webhook_jobs

    original = records_bulk.UpsertRecordsBulk.__dict__.get("_notify_upsert_record_events")
    # The loop only notifies, and a notification only enqueues jobs for enabled webhooks.
    loop_names = {"notify_record_event_v1", "RecordEvent", "created", "updated"}
    if original is None or not loop_names <= _code_names(original):
        raise LookupError("UpsertRecordsBulk._notify_upsert_record_events is not the expected loop")
    if not {"list_enabled_webhooks"} <= _code_names(webhook_jobs.enqueue_notify_events):
        raise LookupError("enqueue_notify_events no longer starts from list_enabled_webhooks")

    async def _notify_upsert_record_events(self: Any, records: list[Any]) -> None:
        if not await webhooks.list_enabled_webhooks(self._db):
            return  # every notification would have found no webhook and enqueued nothing
        await original(self, records)

    records_bulk.UpsertRecordsBulk._notify_upsert_record_events = _notify_upsert_record_events


PATCHES: dict[str, Callable[[], None]] = {
    "parsed_settings": patch_parsed_settings,
    "record_events": patch_record_events,
}


def apply() -> list[str]:
    """Apply every patch whose target is as expected; the names of those applied."""
    if os.environ.get(DISABLE_ENV, "").lower() in {"off", "0", "false", "no"}:
        LOG.info("server patches disabled by %s", DISABLE_ENV)
        return []
    applied = []
    for name, patch in PATCHES.items():
        try:
            patch()
        except (LookupError, ImportError, AttributeError) as e:
            LOG.warning("server patch %r not applied, running unpatched: %s", name, e)
        else:
            applied.append(name)
    return applied
