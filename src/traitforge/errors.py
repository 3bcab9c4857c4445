"""One error hierarchy. Every message says what was received, what was expected, and the fix."""

from __future__ import annotations

from pathlib import Path


class TraitforgeError(Exception):
    """Root of every error traitforge raises on purpose."""


class ConfigError(TraitforgeError):
    """The project config is missing, unreadable or invalid."""


class WorkspaceError(TraitforgeError):
    """The workspace folder or its store cannot be used as asked."""


class ExportError(TraitforgeError):
    """An export cannot be produced from what the workspace holds."""


class OutputError(TraitforgeError):
    """An output folder cannot be written without deleting files traitforge did not write."""


class InputError(TraitforgeError):
    """A row of an input file is invalid. Carries where, what, and how to fix it."""

    def __init__(
        self,
        path: str | Path,
        line: int | str | None,
        field: str | None,
        expected: str,
        received: str,
        fix: str,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.expected = expected
        self.received = received
        self.fix = fix
        where = self.path
        if line is not None:
            where += f", line {line}" if isinstance(line, int) else f", {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: expected {expected}, got {received}. Fix: {fix}")

    def as_record(self) -> dict[str, object]:
        """The reject as one quarantine row."""
        return {
            "file": self.path,
            "line": self.line,
            "field": self.field,
            "expected": self.expected,
            "received": self.received,
            "fix": self.fix,
        }


def short_repr(value: object, limit: int = 60) -> str:
    """A value as it appears in an error message: repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
