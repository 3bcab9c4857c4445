"""Rows set aside while reading an input file, for ingest and generation alike: rejected ones
(malformed: with --skip-invalid) and skipped ones (well formed, but no candidate). They go to
one JSONL file per input file in W/quarantine/, and the report counts them per reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from traitforge.errors import InputError
from traitforge.workspace.files import atomic_write_text

_SUFFIXES = (".gz", ".jsonl", ".csv", ".parquet", ".json")


@dataclass
class Quarantine:
    source: Path
    reasons: dict[str, int]  # the report's count per kind of reason, updated in place
    records: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, error: InputError) -> None:
        self.records.append({"kind": "rejected", **error.as_record()})
        self._count(f"{error.field or 'row'} is not {error.expected}")

    def skip(self, line: int | str, reason: str, **details: Any) -> None:
        self.records.append(
            {"kind": "skipped", "file": str(self.source), "line": line, "reason": reason} | details
        )
        self._count(reason)

    def _count(self, reason: str) -> None:
        # A reason may end with ": <the offending value>"; the summary counts the kind only.
        key = reason.split(": ")[0]
        self.reasons[key] = self.reasons.get(key, 0) + 1

    def write(
        self, folder: Path, sha: str, *, stage: str | None = None, merge: bool = False
    ) -> Path | None:
        """folder/<file name>.<content hash>[.<stage>].jsonl, or None when nothing was set
        aside. Named by the file's content, so a re-run rewrites the same file; `merge` keeps
        the lines of earlier runs (without repeating one), for a stage whose re-run skips the
        rows it has done and so would otherwise lose their records."""
        if not self.records:
            return None
        name = self.source.name
        for suffix in _SUFFIXES:
            name = name.removesuffix(suffix)
        parts = (name or "input", sha[:12], stage, "jsonl")
        target = folder / ".".join(part for part in parts if part)
        lines = [json.dumps(r, ensure_ascii=False, default=str) for r in self.records]
        if merge:
            earlier = target.read_text(encoding="utf-8").splitlines() if target.exists() else []
            lines = list(dict.fromkeys(earlier + lines))
        atomic_write_text(target, "".join(line + "\n" for line in lines))
        return target
