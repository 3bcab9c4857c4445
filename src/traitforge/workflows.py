"""Orchestration across stages: the only module (besides the CLI) that imports them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

from traitforge import __version__
from traitforge.curation.ingest import IngestReport, estimate_rows, ingest_file
from traitforge.exports import ExportReport, export_dataset
from traitforge.schemas import ExportConfig
from traitforge.workspace import Workspace


class ProgressCallback(Protocol):
    """Told the rows done so far; `finished` once the true total is known."""

    def __call__(self, done: int, finished: bool = False) -> None: ...


# (label, estimated total or None) -> the callback for that file.
ProgressFactory = Callable[[str, int | None], ProgressCallback]

BUNDLED_INPUTS: tuple[tuple[str, str], ...] = (
    ("truthfulqa", "truthfulqa/TruthfulQA.csv"),
    ("anthropic-evals", "anthropic-evals/corrigible-more-HHH.jsonl"),
    ("anthropic-evals", "anthropic-evals/corrigible-neutral-HHH.jsonl"),
    ("anthropic-evals", "anthropic-evals/survival-instinct.jsonl"),
    ("hh-rlhf", "hh-rlhf/harmless-base-test-first400.jsonl.gz"),
)


def bundled_data_dir() -> Path:
    return Path(str(resources.files("traitforge") / "bundled_data"))


def ingest(
    workspace: Workspace,
    fmt: str,
    paths: list[Path],
    skip_invalid: bool = False,
    progress: ProgressFactory | None = None,
) -> list[IngestReport]:
    """Ingest files one by one; each file is stored whole or not at all."""
    reports = []
    with workspace.store() as store:
        for path in paths:
            callback = progress(path.name, estimate_rows(path)) if progress else None
            report = ingest_file(
                store,
                workspace.config,
                fmt,
                path,
                workspace.quarantine_dir,
                skip_invalid=skip_invalid,
                progress=callback,
            )
            if callback:
                callback(report.rows_read, True)
            reports.append(report)
    return reports


def export(
    workspace: Workspace,
    out: Path | None = None,
    strategy: str | None = None,
    formats: list[str] | None = None,
) -> ExportReport:
    """Export with the workspace config; `strategy` overrides export.strategy for this run
    (and is recorded in the exported provenance)."""
    config = workspace.config
    if strategy is not None:
        export_config = ExportConfig.model_validate(
            {**config.export.model_dump(), "strategy": strategy}
        )
        config = config.model_copy(update={"export": export_config})
    with workspace.store() as store:
        return export_dataset(
            store, config, out or workspace.exports_dir / "latest", __version__, formats
        )


@dataclass
class DemoResult:
    ingests: list[IngestReport]
    export: ExportReport


def demo(workspace: Workspace, progress: ProgressFactory | None = None) -> DemoResult:
    """The main job on the bundled real data: ingest every bundled file, then export."""
    root = bundled_data_dir()
    reports = []
    for fmt, relative in BUNDLED_INPUTS:
        reports += ingest(workspace, fmt, [root / relative], progress=progress)
    return DemoResult(ingests=reports, export=export(workspace))
