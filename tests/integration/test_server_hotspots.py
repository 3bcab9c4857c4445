"""The embedded launcher's speed-ups of argilla-server (`server/embedded/hotspots.py`) change
nothing the server answers: argilla-server's own functions, unpatched and patched, on the same
valid and invalid inputs, in the server's environment (hotspots_check.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from traitforge.annotators.server import server_python

pytestmark = pytest.mark.integration

EMBEDDED = Path(__file__).resolve().parents[2] / "src/traitforge/annotators/server/embedded"
CHECK = Path(__file__).resolve().parent / "hotspots_check.py"


@pytest.fixture(scope="module")
def checked() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(EMBEDDED)}
    env.pop("TRAITFORGE_SERVER_PATCHES", None)
    done = subprocess.run(
        [str(server_python()), str(CHECK)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_patch_applies_to_the_pinned_server(checked: dict[str, Any]) -> None:
    # A guard that no longer recognises its target leaves it unpatched: this says so.
    assert checked["applied"] == ["parsed_settings", "record_events"]


def test_cached_settings_adapters_parse_and_reject_exactly_as_before(
    checked: dict[str, Any],
) -> None:
    before, after = checked["before"]["settings"], checked["after"]["settings"]
    assert after == before
    # The inputs reach both outcomes, so equality compares errors as well as results.
    for kind in ("question", "metadata", "check_metadata"):
        assert {o[0] for o in before[kind]} == {"ok", "error"}, kind
    assert [
        "error",
        "UnprocessableEntityError",
        "'11' is greater than the maximum value of '9'.",
    ] in (before["check_metadata"])


def test_record_events_are_skipped_only_when_no_webhook_is_enabled(
    checked: dict[str, Any],
) -> None:
    expected = [["record.created", "new"], ["record.updated", "changed"]]
    assert checked["before"]["events_with_webhooks"] == expected
    assert checked["after"]["events_with_webhooks"] == expected
    assert checked["before"]["events_without_webhooks"] == expected
    assert checked["skipped"] == []
