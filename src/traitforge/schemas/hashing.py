"""Content hashes: the identity of every stored record, so re-running a stage is idempotent."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def content_hash(*parts: Any, length: int = 32) -> str:
    """A stable hex digest of JSON-serialisable parts (order matters, key order does not)."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]
