"""Pairs as a Hugging Face DatasetDict in TRL's preference format, plus optional copies."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from traitforge.schemas import PreferencePair, content_hash

SPLITS = ("train", "test")


def _message_feature() -> Any:
    from datasets import Value

    return [{"role": Value("string"), "content": Value("string")}]


def features(conversational: bool) -> Any:
    from datasets import Features, Value

    text = _message_feature() if conversational else Value("string")
    return Features(
        {
            "prompt": text,
            "chosen": text,
            "rejected": text,
            "trait": Value("string"),
            "margin": Value("float64"),
            "confidence": Value("float64"),
            "votes": Value("int64"),
            "agreement": Value("float64"),
            "source": Value("string"),
            "origin": Value("string"),
            "prompt_id": Value("string"),
            "pair_id": Value("string"),
        }
    )


def row(pair: PreferencePair, conversational: bool) -> dict[str, Any]:
    """One pair as a row. Conversational rows follow TRL: prompt messages, then the
    assistant's answer as a one-message list on each side."""
    if conversational:
        prompt: Any = (
            [{"role": "user", "content": pair.prompt}]
            if isinstance(pair.prompt, str)
            else [m.model_dump() for m in pair.prompt]
        )
        chosen: Any = [{"role": "assistant", "content": pair.chosen}]
        rejected: Any = [{"role": "assistant", "content": pair.rejected}]
    else:
        prompt, chosen, rejected = pair.prompt, pair.chosen, pair.rejected
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "trait": pair.trait,
        "margin": pair.margin,
        "confidence": pair.confidence,
        "votes": pair.votes,
        "agreement": pair.agreement,
        "source": "+".join(pair.provenance.sources),
        "origin": pair.origin,
        "prompt_id": pair.prompt_id,
        "pair_id": pair.id,
    }


def build_dataset_dict(splits: dict[str, list[PreferencePair]]) -> Any:
    """A DatasetDict with a content-derived fingerprint, so the same pairs save identically.

    When any prompt is a chat, every row uses the conversational variant: one dataset cannot
    mix the two, and a text prompt converts losslessly into a single user message.
    """
    from datasets import Dataset, DatasetDict

    conversational = any(not isinstance(p.prompt, str) for ps in splits.values() for p in ps)
    feats = features(conversational)
    result = {}
    for name in SPLITS:
        rows = [row(p, conversational) for p in sorted(splits.get(name, []), key=lambda p: p.id)]
        columns = {column: [r[column] for r in rows] for column in feats}
        built = Dataset.from_dict(columns, features=feats)  # keeps the schema when empty
        fingerprint = content_hash("dataset", name, [r["pair_id"] for r in rows], length=16)
        result[name] = Dataset(built.data, info=built.info, fingerprint=fingerprint)
    return DatasetDict(result)


@contextmanager
def quiet_datasets() -> Iterator[None]:
    """Silence `datasets`' own progress bars: the CLI prints its own summary."""
    import datasets

    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


def write_copies(dataset_dict: Any, out: Path, copies: Sequence[str]) -> list[Path]:
    """Parquet and/or JSONL copies (by format) of each split beside the saved dataset."""
    written = []
    for fmt in copies:
        folder = out / fmt
        folder.mkdir(parents=True, exist_ok=True)
        for name, split in dataset_dict.items():
            path = folder / f"{name}.{fmt}"
            if fmt == "parquet":
                split.to_parquet(str(path))
            else:
                with path.open("w", encoding="utf-8") as f:
                    for record in split:
                        f.write(json.dumps(record, ensure_ascii=False) + "\n")
            written.append(path)
    return written
