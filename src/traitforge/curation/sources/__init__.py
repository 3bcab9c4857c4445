"""Source formats: each turns one input file into candidates, row by row."""

from __future__ import annotations

from traitforge.curation.sources.anthropic_evals import read_anthropic_evals
from traitforge.curation.sources.base import (
    Parsed,
    Rejected,
    RowOutcome,
    Skipped,
    SourceFormat,
    file_sha256,
)
from traitforge.curation.sources.hh_rlhf import read_hh_rlhf
from traitforge.curation.sources.mapped import read_csv, read_hf, read_jsonl, read_parquet
from traitforge.curation.sources.truthfulqa import read_truthfulqa
from traitforge.errors import ConfigError

FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (
        SourceFormat(
            "jsonl", read_jsonl, "one JSON object per line (or gzipped), columns per ingest.mapping"
        ),
        SourceFormat(
            "csv", read_csv, "CSV with a header row (or gzipped), columns per ingest.mapping"
        ),
        SourceFormat("parquet", read_parquet, "a Parquet file, columns per ingest.mapping"),
        SourceFormat("hf", read_hf, "a save_to_disk folder or local data file, per ingest.mapping"),
        SourceFormat("truthfulqa", read_truthfulqa, "the TruthfulQA CSV (honesty gold labels)"),
        SourceFormat(
            "anthropic-evals",
            read_anthropic_evals,
            "advanced-ai-risk evals JSONL (corrigibility gold labels)",
        ),
        SourceFormat("hh-rlhf", read_hh_rlhf, "HH-RLHF (gzipped) JSONL pairs (harmlessness gold)"),
    )
}


def source_format(name: str) -> SourceFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(
            f"unknown input format {name!r}; choose one of: {', '.join(FORMATS)}, or 'generate' "
            "to sample responses to a prompts file"
        ) from None


__all__ = [
    "FORMATS",
    "Parsed",
    "Rejected",
    "RowOutcome",
    "Skipped",
    "SourceFormat",
    "file_sha256",
    "source_format",
]
