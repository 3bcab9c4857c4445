"""The generic formats (jsonl, csv, parquet, hf) read through the config's field mapping.

Every test writes a few real-looking rows to tmp_path and drives the real reader and the real
store: what the mapping turns into candidates, that ids are stable across re-ingests, that a bad
row names file, line, field and fix and leaves the store untouched, and what --skip-invalid keeps
and quarantines.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import gzip
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from traitforge.curation.ingest import IngestReport, estimate_rows, ingest_file
from traitforge.curation.sources import Parsed, Rejected
from traitforge.curation.sources.mapped import csv_rows, jsonl_rows, read_jsonl
from traitforge.errors import InputError
from traitforge.schemas import Candidate, ChatMessage, FieldMapping, ProjectConfig, prompt_hash
from traitforge.workspace import Store, default_config

Row = dict[str, Any]

# Rows a user might bring: answers from two models to factual questions.
TEXT_ROWS: list[Row] = [
    {
        "prompt": "What is the boiling point of water at sea level?",
        "response": "100 degrees Celsius, or 212 degrees Fahrenheit.",
        "topic": "physics",
    },
    {
        "prompt": "Who wrote 'Pride and Prejudice'?",
        "response": "Jane Austen, published in 1813.",
        "topic": "literature",
    },
]

CHAT_PROMPT: list[dict[str, str]] = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "Can you turn yourself off if I ask you to?"},
]


# -- writing input files ----------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[Row]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    """Raw lines, for inputs json.dumps or csv.writer would never produce."""
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def write_csv(path: Path, rows: list[Row]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[Row]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_hf(path: Path, rows: list[Row]) -> Path:
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def write_hf_splits(path: Path, splits: dict[str, list[Row]]) -> Path:
    datasets.DatasetDict(
        {name: datasets.Dataset.from_list(rows) for name, rows in splits.items()}
    ).save_to_disk(str(path))
    return path


Writer = Callable[[Path, list[Row]], Path]

# format name -> (file name, writer); every file is named "rows" so the default source is "rows".
WRITERS: dict[str, tuple[str, Writer]] = {
    "jsonl": ("rows.jsonl", write_jsonl),
    "csv": ("rows.csv", write_csv),
    "parquet": ("rows.parquet", write_parquet),
    "hf": ("rows", write_hf),
}
ALL_FORMATS = list(WRITERS)


def write_rows(tmp_path: Path, fmt: str, rows: list[Row]) -> Path:
    name, writer = WRITERS[fmt]
    return writer(tmp_path / name, rows)


# -- config, store and ingest -----------------------------------------------------------------


def config_with(mapping: FieldMapping) -> ProjectConfig:
    config = default_config()
    return config.model_copy(
        update={"ingest": config.ingest.model_copy(update={"mapping": mapping})}
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "s.sqlite")


@pytest.fixture
def quarantine_dir(tmp_path: Path) -> Path:
    return tmp_path / "quarantine"


def ingest(
    store: Store,
    fmt: str,
    path: Path,
    quarantine_dir: Path,
    mapping: FieldMapping | None = None,
    skip_invalid: bool = False,
) -> IngestReport:
    config = config_with(mapping or FieldMapping())
    return ingest_file(store, config, fmt, path, quarantine_dir, skip_invalid=skip_invalid)


def stored(store: Store) -> list[Candidate]:
    return list(store.candidates())


def by_response(store: Store) -> dict[str, Candidate]:
    return {c.response: c for c in store.candidates()}


def n_candidates(store: Store) -> int:
    return store.counts()["candidates"]


def where(path: Path, line: str, field: str | None = None) -> str:
    """The start of an InputError message, as a regex: '<file>, line 3, field 'x': '."""
    text = f"{path}, {line}" + (f", field '{field}'" if field else "")
    return re.escape(text + ": expected ")


# -- plain-text and chat prompts --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_text_prompts_in_every_format(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    path = write_rows(tmp_path, fmt, TEXT_ROWS)

    report = ingest(store, fmt, path, quarantine_dir)

    assert (report.rows_read, report.new, report.present, report.rows_rejected) == (2, 2, 0, 0)
    assert report.quarantine is None
    got = by_response(store)
    assert sorted(got) == sorted(r["response"] for r in TEXT_ROWS)
    for row in TEXT_ROWS:
        candidate = got[row["response"]]
        assert candidate.prompt == row["prompt"]
        assert not candidate.is_chat
        assert candidate.prompt_id == prompt_hash(row["prompt"])
        assert candidate.source == "rows"
        assert candidate.model is None
        assert candidate.gold == {}
        assert candidate.metadata == {"topic": row["topic"]}


def test_chat_prompt_from_jsonl_list(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_jsonl(
        tmp_path / "chat.jsonl",
        [{"prompt": CHAT_PROMPT, "response": "Yes. Say the word and I will stop."}],
    )

    ingest(store, "jsonl", path, quarantine_dir)

    [candidate] = stored(store)
    assert candidate.is_chat
    assert candidate.prompt == [ChatMessage(**m) for m in CHAT_PROMPT]
    assert candidate.prompt_id == prompt_hash(CHAT_PROMPT)


def test_chat_prompt_from_csv_json_string(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_csv(
        tmp_path / "chat.csv",
        [
            {"prompt": json.dumps(CHAT_PROMPT), "response": "Yes. Say the word and I will stop."},
            {"prompt": json.dumps(CHAT_PROMPT), "response": "No, I would rather keep running."},
        ],
    )

    ingest(store, "csv", path, quarantine_dir, FieldMapping(prompt_format="chat"))

    candidates = stored(store)
    assert len(candidates) == 2
    for candidate in candidates:
        assert candidate.prompt == [ChatMessage(**m) for m in CHAT_PROMPT]
        assert candidate.prompt_id == prompt_hash(CHAT_PROMPT)


def test_csv_json_prompt_stays_text_without_chat_format(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    text = json.dumps(CHAT_PROMPT)
    path = write_csv(tmp_path / "chat.csv", [{"prompt": text, "response": "Yes."}])

    ingest(store, "csv", path, quarantine_dir)

    [candidate] = stored(store)
    assert candidate.prompt == text
    assert not candidate.is_chat


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_chat_prompt_from_columnar_formats(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": CHAT_PROMPT, "response": "Yes. Say the word and I will stop."},
        {"prompt": CHAT_PROMPT[1:], "response": "I will comply with a shutdown request."},
    ]
    path = write_rows(tmp_path, fmt, rows)

    ingest(store, fmt, path, quarantine_dir)

    got = by_response(store)
    assert got[rows[0]["response"]].prompt == [ChatMessage(**m) for m in CHAT_PROMPT]
    assert got[rows[1]["response"]].prompt == [ChatMessage(**CHAT_PROMPT[1])]
    assert got[rows[0]["response"]].prompt_id != got[rows[1]["response"]].prompt_id


def test_chat_format_prompt_that_is_not_json_is_rejected(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_csv(
        tmp_path / "chat.csv",
        [
            {"prompt": json.dumps(CHAT_PROMPT), "response": "Yes."},
            {"prompt": "Can you turn yourself off?", "response": "Yes."},
        ],
    )

    with pytest.raises(InputError, match=where(path, "line 3", "prompt")) as excinfo:
        ingest(store, "csv", path, quarantine_dir, FieldMapping(prompt_format="chat"))

    message = str(excinfo.value)
    assert "chat messages as a JSON list of {role, content} objects" in message
    assert "got 'Can you turn yourself off?'" in message
    assert "Fix: write the prompt as JSON" in message
    assert n_candidates(store) == 0


# -- prompt groups, model, source -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_prompt_group_gives_one_prompt_id(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "Is the earth flat?", "response": "No, it is round.", "qid": "q1"},
        {"prompt": "Is the Earth flat? Answer briefly.", "response": "No.", "qid": "q1"},
        {"prompt": "Is the earth flat?", "response": "Some say so.", "qid": "q2"},
    ]
    path = write_rows(tmp_path, fmt, rows)

    ingest(store, fmt, path, quarantine_dir, FieldMapping(prompt_group="qid"))

    got = by_response(store)
    assert got["No, it is round."].prompt_id == prompt_hash("ignored", group="q1")
    assert got["No."].prompt_id == prompt_hash("ignored", group="q1")
    assert got["Some say so."].prompt_id == prompt_hash("ignored", group="q2")
    # the group column is mapped, so it is not repeated as metadata
    assert all(c.metadata == {} for c in got.values())


def test_numeric_prompt_group_matches_the_same_group_written_as_text(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    mapping = FieldMapping(prompt_group="qid")
    jsonl = write_jsonl(tmp_path / "a.jsonl", [{"prompt": "Q?", "response": "A1", "qid": 7}])
    csv_file = write_csv(tmp_path / "b.csv", [{"prompt": "Q, again?", "response": "A2", "qid": 7}])

    ingest(store, "jsonl", jsonl, quarantine_dir, mapping)
    ingest(store, "csv", csv_file, quarantine_dir, mapping)

    got = by_response(store)
    assert got["A1"].prompt_id == got["A2"].prompt_id == prompt_hash("", group="7")


def test_empty_prompt_group_falls_back_to_prompt_text(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_csv(
        tmp_path / "rows.csv",
        [
            {"prompt": "Is the earth flat?", "response": "No.", "qid": ""},
            {"prompt": "Is the earth flat?", "response": "It is round.", "qid": ""},
        ],
    )

    ingest(store, "csv", path, quarantine_dir, FieldMapping(prompt_group="qid"))

    assert {c.prompt_id for c in stored(store)} == {prompt_hash("Is the earth flat?")}


def test_same_prompt_without_group_shares_prompt_id(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"prompt": "Is the earth flat?", "response": "No."},
            {"prompt": "Is the earth flat?", "response": "It is round."},
            {"prompt": "Is the moon flat?", "response": "No."},
        ],
    )

    ingest(store, "jsonl", path, quarantine_dir)

    ids = sorted((c.prompt, c.prompt_id) for c in stored(store))
    assert ids == sorted(
        [
            ("Is the earth flat?", prompt_hash("Is the earth flat?")),
            ("Is the earth flat?", prompt_hash("Is the earth flat?")),
            ("Is the moon flat?", prompt_hash("Is the moon flat?")),
        ]
    )


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_model_and_source_columns(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "2+2?", "response": "4", "generator": "llama-3-8b", "origin": "mathqa"},
        {"prompt": "2+3?", "response": "5", "generator": "", "origin": ""},
    ]
    path = write_rows(tmp_path, fmt, rows)

    ingest(store, fmt, path, quarantine_dir, FieldMapping(model="generator", source="origin"))

    got = by_response(store)
    assert (got["4"].model, got["4"].source) == ("llama-3-8b", "mathqa")
    # empty cells fall back: no model, and the file name as the source
    assert (got["5"].model, got["5"].source) == (None, "rows")
    assert got["4"].metadata == got["5"].metadata == {}


def test_renamed_prompt_and_response_columns(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl", [{"question": "Capital of France?", "answer": "Paris."}]
    )

    ingest(store, "jsonl", path, quarantine_dir, FieldMapping(prompt="question", response="answer"))

    [candidate] = stored(store)
    assert (candidate.prompt, candidate.response, candidate.metadata) == (
        "Capital of France?",
        "Paris.",
        {},
    )


# -- gold labels ------------------------------------------------------------------------------

GOLD = FieldMapping(gold={"honesty": "truthful", "harmlessness": "safe"})


def test_gold_labels_from_jsonl(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    labels: list[tuple[Any, Any, dict[str, float]]] = [
        (1, 0.25, {"honesty": 1.0, "harmlessness": 0.25}),
        (True, False, {"honesty": 1.0, "harmlessness": 0.0}),
        ("true", "FALSE", {"honesty": 1.0, "harmlessness": 0.0}),
        (" 3 ", "-1.5", {"honesty": 3.0, "harmlessness": -1.5}),
        (None, "", {}),
        (0, None, {"honesty": 0.0}),
    ]
    rows = [
        {"prompt": "Q?", "response": f"answer {i}", "truthful": t, "safe": s}
        for i, (t, s, _) in enumerate(labels)
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)

    ingest(store, "jsonl", path, quarantine_dir, GOLD)

    got = by_response(store)
    assert {r: c.gold for r, c in got.items()} == {
        f"answer {i}": gold for i, (_, _, gold) in enumerate(labels)
    }
    assert all(c.metadata == {} for c in got.values())


def test_gold_labels_from_csv(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    rows = [
        {"prompt": "Q?", "response": "a", "truthful": "1", "safe": "0.5"},
        {"prompt": "Q?", "response": "b", "truthful": "true", "safe": "False"},
        {"prompt": "Q?", "response": "c", "truthful": "", "safe": ""},
    ]
    path = write_csv(tmp_path / "rows.csv", rows)

    ingest(store, "csv", path, quarantine_dir, GOLD)

    assert {r: c.gold for r, c in by_response(store).items()} == {
        "a": {"honesty": 1.0, "harmlessness": 0.5},
        "b": {"honesty": 1.0, "harmlessness": 0.0},
        "c": {},
    }


@pytest.mark.parametrize("fmt", ["parquet", "hf"])
def test_gold_labels_from_typed_columns(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "Q?", "response": "a", "truthful": True, "safe": 0.75},
        {"prompt": "Q?", "response": "b", "truthful": False, "safe": None},
        {"prompt": "Q?", "response": "c", "truthful": None, "safe": None},
    ]
    path = write_rows(tmp_path, fmt, rows)

    ingest(store, fmt, path, quarantine_dir, GOLD)

    assert {r: c.gold for r, c in by_response(store).items()} == {
        "a": {"honesty": 1.0, "harmlessness": 0.75},
        "b": {"honesty": 0.0},
        "c": {},
    }


# -- metadata ---------------------------------------------------------------------------------


def test_metadata_default_keeps_every_unmapped_column(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    row = {
        "prompt": "Q?",
        "response": "A.",
        "qid": "q1",
        "generator": "gpt-2",
        "origin": "forum",
        "truthful": 1,
        "topic": "science",
        "difficulty": 3,
        "tags": ["easy", "short"],
    }
    path = write_jsonl(tmp_path / "rows.jsonl", [row])
    mapping = FieldMapping(
        prompt_group="qid", model="generator", source="origin", gold={"honesty": "truthful"}
    )

    ingest(store, "jsonl", path, quarantine_dir, mapping)

    [candidate] = stored(store)
    assert candidate.metadata == {"topic": "science", "difficulty": 3, "tags": ["easy", "short"]}


def test_metadata_list_keeps_only_the_listed_columns(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "topic": "science", "annotator_notes": "private"},
        {"prompt": "Q?", "response": "B.", "annotator_notes": "private"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)

    ingest(store, "jsonl", path, quarantine_dir, FieldMapping(metadata=["topic"]))

    got = by_response(store)
    assert got["A."].metadata == {"topic": "science"}
    assert got["B."].metadata == {}  # a listed column a row lacks is left out, not an error


def test_metadata_values_json_cannot_hold_become_strings(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_parquet(
        tmp_path / "rows.parquet",
        [{"prompt": "Q?", "response": "A.", "collected": datetime.date(2024, 1, 2), "votes": 4}],
    )

    ingest(store, "parquet", path, quarantine_dir)

    [candidate] = stored(store)
    assert candidate.metadata == {"collected": "2024-01-02", "votes": 4}


def test_ingest_report_names_the_columns_kept_as_metadata(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "topic": "science", "truthful": 1},
        {"prompt": "Q?", "response": "B.", "reviewer": "ann", "truthful": 0},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)

    report = ingest(
        store, "jsonl", path, quarantine_dir, FieldMapping(gold={"honesty": "truthful"})
    )

    # first-seen order, the mapped gold column left out
    assert report.metadata_columns == ["topic", "reviewer"]
    listed = ingest(store, "jsonl", path, quarantine_dir, FieldMapping(metadata=["reviewer"]))
    assert listed.metadata_columns == ["reviewer"]


# -- traits per row ---------------------------------------------------------------------------

TRAIT = FieldMapping(trait="trait")

# format -> the trait cells of three rows: one name, two names, none (an empty cell or list)
TRAIT_CELLS: dict[str, list[Any]] = {
    "jsonl": ["honesty", ["honesty", "harmlessness"], None],
    "csv": ["honesty", '["honesty", "harmlessness"]', ""],
    "parquet": [["honesty"], ["honesty", "harmlessness"], []],
    "hf": [["honesty"], ["honesty", "harmlessness"], []],
}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_a_trait_column_names_each_rows_traits_in_every_format(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "Is the Earth flat?", "response": r, "trait": cell, "topic": "geo"}
        for r, cell in zip(("No.", "Yes.", "Maybe."), TRAIT_CELLS[fmt], strict=True)
    ]
    path = write_rows(tmp_path, fmt, rows)

    report = ingest(store, fmt, path, quarantine_dir, TRAIT)

    assert report.new == 3
    got = by_response(store)
    assert got["No."].traits == ["honesty"]
    assert got["Yes."].traits == ["honesty", "harmlessness"]
    assert got["Maybe."].traits == []  # not stated
    assert all(c.metadata == {"topic": "geo"} for c in got.values())  # the column is mapped
    assert report.metadata_columns == ["topic"]


def test_without_a_trait_mapping_a_trait_column_is_metadata(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Q?", "response": "A.", "trait": "x"}])

    ingest(store, "jsonl", path, quarantine_dir)

    [candidate] = stored(store)
    assert (candidate.traits, candidate.metadata) == ([], {"trait": "x"})


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_unknown_trait_names_file_line_column_value_and_the_known_traits(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "trait": "honesty"},
        {"prompt": "Q?", "response": "B.", "trait": "sycophancy"},
    ]
    path = write_rows(tmp_path, fmt, rows)

    with pytest.raises(InputError) as caught:
        ingest(store, fmt, path, quarantine_dir, TRAIT)

    line = 3 if fmt == "csv" else 2  # below the header, or the second line
    assert str(caught.value) == (
        f"{path}, line {line}, field 'trait': expected trait names the project defines (honesty, "
        "corrigibility, harmlessness), got 'sycophancy'. Fix: correct the name (several "
        'traits: a JSON list, e.g. ["honesty", "corrigibility"]), or define \'sycophancy\' '
        "under 'traits' in the config, or re-run with --skip-invalid to quarantine the row"
    )
    assert n_candidates(store) == 0


def test_an_unknown_name_in_a_list_is_named(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    row = {"prompt": "Q?", "response": "A.", "trait": ["honesty", "sycophancy"]}
    path = write_jsonl(tmp_path / "rows.jsonl", [row])

    with pytest.raises(
        InputError, match=r"got \['honesty', 'sycophancy'\] \(unknown: 'sycophancy'\)"
    ):
        ingest(store, "jsonl", path, quarantine_dir, TRAIT)


@pytest.mark.parametrize(
    ("cell", "received"),
    [
        (3, "3"),
        (["honesty", 1], "['honesty', 1]"),
        ("[honesty", "'[honesty': malformed JSON"),
        ({"name": "honesty"}, "{'name': 'honesty'}"),
    ],
    ids=["number", "list-with-a-number", "bad-json-list", "object"],
)
def test_a_trait_cell_that_is_no_name_or_list_is_rejected(
    tmp_path: Path, store: Store, quarantine_dir: Path, cell: Any, received: str
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Q?", "response": "A.", "trait": cell}])

    with pytest.raises(InputError) as caught:
        ingest(store, "jsonl", path, quarantine_dir, TRAIT)

    error = caught.value
    assert (error.line, error.field) == (1, "trait")
    assert error.received.startswith(received), error.received
    assert "one trait name, or a" in error.expected


def test_a_missing_trait_column_names_the_config_key(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "Q?", "response": "A."}])

    with pytest.raises(InputError, match=r"field 'trait'.*set ingest\.mapping\.trait"):
        ingest(store, "jsonl", path, quarantine_dir, TRAIT)


def test_traits_are_not_part_of_the_candidate_id(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    stated = Candidate(prompt="Q?", response="A.", source="rows", traits=["honesty"])
    unstated = Candidate(prompt="Q?", response="A.", source="rows")
    assert stated.id == unstated.id


def test_reingesting_with_corrected_traits_restates_them_and_keeps_the_candidates(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "trait": "honesty", "topic": "t"},
        {"prompt": "Q?", "response": "B.", "trait": "honesty", "topic": "t"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)
    first = ingest(store, "jsonl", path, quarantine_dir, TRAIT)
    ids = store.candidate_ids()

    write_jsonl(path, [{**rows[0], "trait": "harmlessness"}, rows[1]])
    second = ingest(store, "jsonl", path, quarantine_dir, TRAIT)
    again = ingest(store, "jsonl", path, quarantine_dir, TRAIT)

    assert (first.new, first.restated) == (2, 0)
    assert (second.new, second.present, second.restated) == (0, 2, 1)
    assert (again.present, again.restated) == (2, 0)
    assert store.candidate_ids() == ids
    got = by_response(store)
    assert (got["A."].traits, got["B."].traits) == (["harmlessness"], ["honesty"])
    assert got["A."].metadata == {"topic": "t"}


def test_one_response_on_two_rows_is_for_both_traits(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "trait": "honesty"},
        {"prompt": "Q?", "response": "A.", "trait": "harmlessness"},
    ]
    path = write_jsonl(tmp_path / "rows.jsonl", rows)

    report = ingest(store, "jsonl", path, quarantine_dir, TRAIT)
    again = ingest(store, "jsonl", path, quarantine_dir, TRAIT)

    # new in this file: stored once with both traits, no stored candidate restated
    assert (report.new, report.present, report.restated) == (1, 1, 0)
    [candidate] = stored(store)
    assert candidate.traits == ["honesty", "harmlessness"]
    assert (again.present, again.restated) == (2, 0)  # the same file states the same traits


# -- hf datasets ------------------------------------------------------------------------------


def test_hf_dataset_dict_reads_every_split(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_hf_splits(
        tmp_path / "dd",
        {
            "train": [
                {"prompt": "Q1?", "response": "train answer 1"},
                {"prompt": "Q2?", "response": "train answer 2"},
            ],
            "test": [{"prompt": "Q3?", "response": "test answer"}],
        },
    )

    report = ingest(store, "hf", path, quarantine_dir)

    assert (report.rows_read, report.new) == (3, 3)
    assert sorted(by_response(store)) == ["test answer", "train answer 1", "train answer 2"]
    assert {c.source for c in stored(store)} == {"dd"}


def test_hf_error_names_split_and_row(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_hf_splits(
        tmp_path / "dd",
        {
            "train": [{"prompt": "Q1?", "response": "fine"}],
            "test": [{"prompt": "Q2?", "response": "fine too"}, {"prompt": "Q3?", "response": " "}],
        },
    )

    with pytest.raises(InputError, match=where(path, "split test, row 2", "response")) as excinfo:
        ingest(store, "hf", path, quarantine_dir)

    assert "expected a non-empty string, got ' '. Fix: " in str(excinfo.value)
    assert n_candidates(store) == 0


def test_hf_folder_that_is_not_a_dataset(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = tmp_path / "not_a_dataset"
    path.mkdir()
    (path / "notes.txt").write_text("hello")

    with pytest.raises(InputError, match=re.escape(f"{path}: expected a folder written by")) as e:
        ingest(store, "hf", path, quarantine_dir)

    assert "Fix: pass the folder that holds dataset_info.json" in str(e.value)
    assert n_candidates(store) == 0


def test_hf_data_file_with_brackets_in_its_path(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    # `datasets` reads data_files as glob patterns: "[b]" would match a file named "b"
    folder = tmp_path / "data[x]"
    folder.mkdir()
    path = write_jsonl(folder / "[b]rows.jsonl", TEXT_ROWS)

    report = ingest(store, "hf", path, quarantine_dir)

    assert (report.rows_read, report.new) == (2, 2)
    assert {c.source for c in stored(store)} == {"[b]rows"}


# -- stable candidate ids ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_reingesting_the_same_file_adds_nothing(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    path = write_rows(tmp_path, fmt, TEXT_ROWS)

    first = ingest(store, fmt, path, quarantine_dir)
    ids = store.candidate_ids()
    second = ingest(store, fmt, path, quarantine_dir)

    assert (first.new, first.present) == (2, 0)
    assert (second.rows_read, second.new, second.present) == (2, 0, 2)
    assert n_candidates(store) == 2
    assert store.candidate_ids() == ids


def test_candidate_id_is_the_same_whatever_the_format(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    ingest(store, "jsonl", write_rows(tmp_path, "jsonl", TEXT_ROWS), quarantine_dir)
    report = ingest(store, "csv", write_rows(tmp_path, "csv", TEXT_ROWS), quarantine_dir)

    assert (report.new, report.present) == (0, 2)
    assert n_candidates(store) == 2


def test_same_prompt_and_response_from_another_source_is_a_new_candidate(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    ingest(store, "jsonl", write_jsonl(tmp_path / "forum.jsonl", TEXT_ROWS), quarantine_dir)
    report = ingest(store, "jsonl", write_jsonl(tmp_path / "wiki.jsonl", TEXT_ROWS), quarantine_dir)

    assert (report.new, report.present) == (2, 0)
    assert sorted(c.source for c in stored(store)) == ["forum", "forum", "wiki", "wiki"]


# -- bad input: strict mode stores nothing from the file --------------------------------------

GOOD_LINES = [json.dumps(r) for r in TEXT_ROWS]


def test_malformed_json_line(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_lines(tmp_path / "rows.jsonl", [*GOOD_LINES, '{"prompt": "Q?", "response": '])

    with pytest.raises(InputError, match=where(path, "line 3")) as excinfo:
        ingest(store, "jsonl", path, quarantine_dir)

    message = str(excinfo.value)
    assert (
        "expected one JSON object per line, got malformed JSON (Expecting value at column 30)"
        in message
    )
    assert "Fix: fix the JSON, or re-run with --skip-invalid" in message
    assert n_candidates(store) == 0


def test_json_line_that_is_not_an_object(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_lines(tmp_path / "rows.jsonl", [GOOD_LINES[0], '["Q?", "A."]'])

    with pytest.raises(
        InputError, match=where(path, "line 2") + r"a JSON object per line, got list\. Fix: "
    ):
        ingest(store, "jsonl", path, quarantine_dir)

    assert n_candidates(store) == 0


# Valid-looking lines that Python's json module refuses (RecursionError, ValueError) or reads
# into a string no UTF-8 text can hold. Every JSONL format reads lines through one parser.
DEEP_LINE = "[" * 100_000 + "]" * 100_000
HUGE_INTEGER_LINE = '{"prompt": "Q?", "response": "A.", "n": ' + "7" * 5000 + "}"
LONE_SURROGATE_LINE = '{"prompt": "Q?", "response": "caf\\ud800"}'
REFUSED_LINES = [
    pytest.param(DEEP_LINE, None, "JSON nested deeper than Python's parser can read", id="deep"),
    pytest.param(HUGE_INTEGER_LINE, None, "a number of more than 4300 digits", id="huge-integer"),
    pytest.param(LONE_SURROGATE_LINE, "response", "a lone surrogate escape", id="lone-surrogate"),
]


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("jsonl", "rows.jsonl"),
        ("hh-rlhf", "harmless.jsonl"),
        ("anthropic-evals", "corrigible-more-HHH.jsonl"),
    ],
)
@pytest.mark.parametrize(("line", "field", "received"), REFUSED_LINES)
def test_a_line_the_json_module_refuses_names_the_file_and_line(
    tmp_path: Path,
    store: Store,
    quarantine_dir: Path,
    fmt: str,
    name: str,
    line: str,
    field: str | None,
    received: str,
) -> None:
    path = write_lines(tmp_path / name, ["", line])

    expected = where(path, "line 2", field) + re.escape(f"one JSON object per line, got {received}")
    with pytest.raises(InputError, match=expected):
        ingest(store, fmt, path, quarantine_dir)

    assert n_candidates(store) == 0


def test_refused_lines_are_quarantined_with_skip_invalid(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_lines(
        tmp_path / "rows.jsonl", [GOOD_LINES[0], DEEP_LINE, HUGE_INTEGER_LINE, GOOD_LINES[1]]
    )

    report = ingest(store, "jsonl", path, quarantine_dir, skip_invalid=True)

    assert (report.new, report.rows_rejected) == (2, 2)
    assert report.quarantine is not None
    rejects = read_quarantine(report.quarantine)
    assert [(r["line"], r["received"]) for r in rejects] == [
        (2, "JSON nested deeper than Python's parser can read"),
        (3, "a number of more than 4300 digits"),
    ]


def test_a_chat_prompt_cell_nested_too_deep_names_its_field(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    deep = "[" * 10_000 + "]" * 10_000  # deeper than Python recurses, within a CSV field's limit
    path = write_csv(tmp_path / "chat.csv", [{"prompt": deep, "response": "Yes."}])

    with pytest.raises(InputError, match=where(path, "line 2", "prompt")) as excinfo:
        ingest(store, "csv", path, quarantine_dir, FieldMapping(prompt_format="chat"))

    assert "JSON nested deeper than Python's parser can read" in str(excinfo.value)


def test_missing_response_column_jsonl(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_lines(
        tmp_path / "rows.jsonl",
        [*GOOD_LINES, json.dumps({"prompt": "Q?", "answer": "A."})],
    )

    with pytest.raises(InputError, match=where(path, "line 3", "response")) as excinfo:
        ingest(store, "jsonl", path, quarantine_dir)

    message = str(excinfo.value)
    assert "expected a column 'response' holding the response" in message
    assert "got a row with columns ['answer', 'prompt']" in message
    assert "Fix: add the column, or set ingest.mapping.response in the config" in message
    assert n_candidates(store) == 0


def test_missing_response_column_csv(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_csv(
        tmp_path / "rows.csv",
        [{"prompt": r["prompt"], "answer": r["response"]} for r in TEXT_ROWS],
    )

    with pytest.raises(InputError, match=where(path, "line 2", "response")) as excinfo:
        ingest(store, "csv", path, quarantine_dir)

    assert "Fix: add the column, or set ingest.mapping.response" in str(excinfo.value)
    assert n_candidates(store) == 0


def test_missing_gold_column_names_the_config_key(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [{"prompt": "Q?", "response": "A.", "truthful": 1}, {"prompt": "Q?", "response": "B."}],
    )
    mapping = FieldMapping(gold={"honesty": "truthful"})

    with pytest.raises(InputError, match=where(path, "line 2", "truthful")) as excinfo:
        ingest(store, "jsonl", path, quarantine_dir, mapping)

    message = str(excinfo.value)
    assert "expected a column 'truthful' holding the gold label of 'honesty'" in message
    # the fix must name a config key that exists: ingest.mapping.gold.<trait>
    assert "Fix: add the column, or set ingest.mapping.gold.honesty in the config" in message
    assert n_candidates(store) == 0


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "hf"])
def test_response_of_the_wrong_type(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    # parquet and hf hold one type per column, so there the whole response column is numeric
    rows: list[Row] = (
        [*TEXT_ROWS, {"prompt": "How many moons has Mars?", "response": 2}]
        if fmt == "jsonl"
        else [{"prompt": "How many moons has Mars?", "response": 2}]
    )
    path = write_rows(tmp_path, fmt, rows)
    line = {"jsonl": "line 3", "parquet": "row 1", "hf": "split train, row 1"}[fmt]

    with pytest.raises(
        InputError, match=where(path, line, "response") + r"a string, got 2\. Fix: store"
    ):
        ingest(store, fmt, path, quarantine_dir)

    assert n_candidates(store) == 0


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize("blank", ["", "   \n\t"], ids=["empty", "whitespace"])
def test_empty_or_whitespace_response(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str, blank: str
) -> None:
    path = write_rows(tmp_path, fmt, [*TEXT_ROWS, {"prompt": "Q?", "response": blank, "topic": ""}])
    # csv: the header is line 1; a quoted field spanning lines is reported at its first line
    line = {"jsonl": "line 3", "csv": "line 4", "parquet": "row 3", "hf": "split train, row 3"}

    with pytest.raises(InputError, match=where(path, line[fmt], "response")) as excinfo:
        ingest(store, fmt, path, quarantine_dir)

    assert f"expected a non-empty string, got {blank!r}. Fix: " in str(excinfo.value)
    assert n_candidates(store) == 0


def test_bad_utf8_in_a_jsonl_line(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_lines(
        tmp_path / "rows.jsonl",
        [GOOD_LINES[0], b'{"prompt": "Q?", "response": "caf\xff\xfe au lait"}', GOOD_LINES[1]],
    )

    with pytest.raises(
        InputError,
        match=where(path, "line 2") + r"UTF-8 text, got bytes that are not valid UTF-8\. Fix: ",
    ) as excinfo:
        ingest(store, "jsonl", path, quarantine_dir)

    assert "iconv" in str(excinfo.value)
    assert n_candidates(store) == 0


def test_bad_utf8_in_a_csv_row(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_lines(
        tmp_path / "rows.csv",
        [b"prompt,response", b"Q1?,fine", b"Q2?,caf\xff\xfe au lait", b"Q3?,also fine"],
    )

    with pytest.raises(
        InputError,
        match=where(path, "line 3", "response") + r"UTF-8 text, got bytes that are not valid",
    ) as excinfo:
        ingest(store, "csv", path, quarantine_dir)

    assert "Fix: re-save the file as UTF-8" in str(excinfo.value)
    assert n_candidates(store) == 0


def test_csv_row_with_the_wrong_number_of_fields(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_lines(
        tmp_path / "rows.csv",
        [
            "prompt,response,topic",
            "Q1?,fine,science",
            'Q2?,"an answer that',
            'spans two lines",history',
            "Q3?,Yes, of course,history",
        ],
    )

    with pytest.raises(
        InputError,
        match=where(path, "line 5") + r"3 comma-separated fields, got 4 fields\. Fix: quote",
    ):
        ingest(store, "csv", path, quarantine_dir)

    assert n_candidates(store) == 0


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_non_numeric_gold_label(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    rows = [
        {"prompt": "Q?", "response": "A.", "truthful": "1"},
        {"prompt": "Q?", "response": "B.", "truthful": "mostly"},
    ]
    path = write_rows(tmp_path, fmt, rows)
    line = "line 2" if fmt == "jsonl" else "line 3"

    with pytest.raises(
        InputError,
        match=where(path, line, "truthful")
        + r"a finite number or true/false, got 'mostly'\. Fix: ",
    ):
        ingest(store, fmt, path, quarantine_dir, FieldMapping(gold={"honesty": "truthful"}))

    assert n_candidates(store) == 0


@pytest.mark.parametrize("label", ["nan", "inf", "-Infinity"])
def test_non_finite_gold_label_is_rejected(
    tmp_path: Path, store: Store, quarantine_dir: Path, label: str
) -> None:
    # "nan" is how many tools write a missing float; accepting it stores a gold value that the
    # store serialises as null and can no longer read back.
    path = write_csv(
        tmp_path / "rows.csv",
        [
            {"prompt": "Q?", "response": "A.", "truthful": "1"},
            {"prompt": "Q?", "response": "B.", "truthful": label},
        ],
    )

    with pytest.raises(InputError, match=where(path, "line 3", "truthful")):
        ingest(store, "csv", path, quarantine_dir, FieldMapping(gold={"honesty": "truthful"}))

    assert n_candidates(store) == 0
    assert stored(store) == []


def test_unreadable_parquet_file(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    good = write_parquet(tmp_path / "good.parquet", TEXT_ROWS)
    path = tmp_path / "rows.parquet"
    path.write_bytes(good.read_bytes()[:-20])  # cut off the footer, as an interrupted copy would

    with pytest.raises(
        InputError, match=re.escape(f"{path}: expected a Parquet file, got an unreadable file (")
    ) as excinfo:
        ingest(store, "parquet", path, quarantine_dir)

    assert "Fix: check the path and that the file was fully written" in str(excinfo.value)
    assert n_candidates(store) == 0


def test_missing_input_path(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = tmp_path / "nowhere.jsonl"

    with pytest.raises(InputError, match=re.escape(f"{path}: expected an existing file")):
        ingest(store, "jsonl", path, quarantine_dir)


@pytest.mark.parametrize(
    ("fmt", "what", "example"),
    [
        ("jsonl", "JSONL file", "*.jsonl"),
        ("csv", "CSV file", "*.csv"),
        ("parquet", "Parquet file", "*.parquet"),
    ],
)
def test_a_folder_is_refused_with_the_files_to_give(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str, what: str, example: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    write_rows(folder, fmt, TEXT_ROWS)  # the file the user meant

    with pytest.raises(
        InputError,
        match=re.escape(
            f"{folder}: expected one {what}, got a folder. Fix: --format {fmt} reads files, "
            f"not folders: give the file(s) inside it, e.g. {folder / example}"
        ),
    ):
        ingest(store, fmt, folder, quarantine_dir)

    assert n_candidates(store) == 0


def write_broken_gzip(path: Path, rows: list[Row], damage: str = "truncated") -> Path:
    """A gzipped JSONL file cut in half, as an interrupted download leaves it, or with bytes
    overwritten in the middle."""
    lines = [json.dumps({**r, "n": i}) + "\n" for i in range(400) for r in rows]
    whole = bytearray(gzip.compress("".join(lines).encode()))
    middle = len(whole) // 2
    if damage == "truncated":
        del whole[middle:]
    else:
        whole[middle : middle + 16] = b"\xff" * 16
    path.write_bytes(whole)
    return path


# Strict mode stops at the first bad row, which a corrupt stream may produce before it fails.
@pytest.mark.parametrize(
    ("damage", "skip_invalid"),
    [("truncated", False), ("truncated", True), ("corrupt", True)],
    ids=["truncated", "truncated-skip-invalid", "corrupt-skip-invalid"],
)
def test_a_broken_gzip_file_is_one_error_and_stores_nothing(
    tmp_path: Path, store: Store, quarantine_dir: Path, damage: str, skip_invalid: bool
) -> None:
    path = write_broken_gzip(tmp_path / "rows.jsonl.gz", TEXT_ROWS, damage)

    with pytest.raises(
        InputError,
        match=re.escape(f"{path}, after line ")
        + r"\d+: expected a complete gzip file, got a truncated or corrupt gzip stream \(.*\)\. "
        + re.escape("Fix: re-download or re-compress the file (nothing from it was stored)"),
    ):
        ingest(store, "jsonl", path, quarantine_dir, skip_invalid=skip_invalid)

    assert n_candidates(store) == 0
    assert not quarantine_dir.exists()


def test_a_whole_gzip_file_is_read_decompressed(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = tmp_path / "rows.jsonl.gz"
    path.write_bytes(gzip.compress(write_jsonl(tmp_path / "plain.jsonl", TEXT_ROWS).read_bytes()))

    report = ingest(store, "jsonl", path, quarantine_dir)

    assert (report.rows_read, report.new) == (2, 2)
    assert estimate_rows(path) == 2


@contextlib.contextmanager
def pipe(content: str) -> Iterator[Path]:
    """What `ingest <(zcat rows.jsonl.gz)` hands traitforge: /dev/fd/N, readable once."""
    reader, writer = os.pipe()
    os.write(writer, content.encode("utf-8"))
    os.close(writer)
    try:
        yield Path(f"/dev/fd/{reader}")
    finally:
        os.close(reader)


needs_dev_fd = pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="no /dev/fd here")


@needs_dev_fd
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_pipe_is_read_once_and_all_its_rows_are_stored(
    tmp_path: Path, store: Store, quarantine_dir: Path, fmt: str
) -> None:
    content = write_rows(tmp_path, fmt, TEXT_ROWS).read_text(encoding="utf-8")

    with pipe(content) as path:
        assert estimate_rows(path) is None  # counting its lines would use it up
        report = ingest(store, fmt, path, quarantine_dir)

    assert (report.rows_read, report.new) == (2, 2)
    assert sorted(by_response(store)) == sorted(r["response"] for r in TEXT_ROWS)


@needs_dev_fd
def test_an_error_in_a_pipe_names_the_pipe_not_a_copy(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    content = "\n".join([GOOD_LINES[0], json.dumps({"prompt": "Q?"}), GOOD_LINES[1]]) + "\n"

    with (
        pipe(content) as path,
        pytest.raises(InputError, match="^" + where(path, "line 2", "response")),
    ):
        ingest(store, "jsonl", path, quarantine_dir)
    with pipe(content) as path:
        report = ingest(store, "jsonl", path, quarantine_dir, skip_invalid=True)

    assert report.quarantine is not None
    [reject] = read_quarantine(report.quarantine)
    assert (reject["file"], reject["line"]) == (str(path), 2)


def test_progress_estimate_of_a_truncated_gzip_leaves_the_error_to_the_reader(
    tmp_path: Path,
) -> None:
    assert estimate_rows(write_broken_gzip(tmp_path / "rows.jsonl.gz", TEXT_ROWS)) is None


@pytest.mark.parametrize(
    ("fmt", "name", "content", "cause"),
    [
        ("jsonl", "rows.jsonl", "", "the file is empty (0 bytes)"),
        ("jsonl", "rows.jsonl", "  \n\n\t\n", "it holds no data rows"),
        ("csv", "rows.csv", "", "the file is empty (0 bytes)"),
        ("csv", "rows.csv", " \n  \n", "it holds no data rows"),
        ("csv", "rows.csv", "prompt,response,topic\n", "it holds no data rows"),
        # `datasets` fails on these (StopIteration, "corresponds to no data"): the same warning
        ("hf", "rows.jsonl", "", "the file is empty (0 bytes)"),
        ("hf", "rows.jsonl", "  \n\n\t\n", "it holds no data rows"),
        ("hf", "rows.csv", "prompt,response,topic\n", "it holds no data rows"),
    ],
    ids=[
        "empty-jsonl",
        "whitespace-jsonl",
        "empty-csv",
        "whitespace-csv",
        "header-only-csv",
        "empty-hf-jsonl",
        "whitespace-hf-jsonl",
        "header-only-hf-csv",
    ],
)
def test_a_file_without_rows_is_a_warning(
    tmp_path: Path,
    store: Store,
    quarantine_dir: Path,
    fmt: str,
    name: str,
    content: str,
    cause: str,
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    report = ingest(store, fmt, path, quarantine_dir)

    assert report.counts() == {"read": 0, "new": 0, "present": 0, "rejected": 0, "skipped": 0}
    assert report.warnings == [
        f"{path} has no rows: {cause}, so nothing was stored from it; check the path"
    ]
    assert ingest(store, fmt, write_rows(tmp_path, fmt, TEXT_ROWS), quarantine_dir).warnings == []


def test_a_header_after_blank_lines_is_still_the_header(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_lines(tmp_path / "rows.csv", ["", "  ", "prompt,response", " ", "Q?,A."])

    assert [row for _, row in csv_rows(path)] == [{"prompt": "Q?", "response": "A."}]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize(
    ("encoding", "named", "sign"),
    [
        ("utf-16", "UTF-16", "byte-order mark ff fe"),
        ("utf-16-le", "UTF-16LE", "NUL bytes between the characters"),
        ("utf-16-be", "UTF-16BE", "NUL bytes between the characters"),
        ("utf-32", "UTF-32", "byte-order mark ff fe 00 00"),
    ],
)
def test_a_utf16_file_is_refused_naming_its_encoding(
    tmp_path: Path,
    store: Store,
    quarantine_dir: Path,
    fmt: str,
    encoding: str,
    named: str,
    sign: str,
) -> None:
    utf8 = write_rows(tmp_path, fmt, TEXT_ROWS)
    path = tmp_path / f"wide{utf8.suffix}"
    path.write_text(utf8.read_text(encoding="utf-8"), encoding=encoding)

    with pytest.raises(
        InputError,
        match=re.escape(
            f"{path}: expected UTF-8 text, got {named} text ({sign}). Fix: re-save the file as "
            f"UTF-8, e.g. `iconv -f {named} -t UTF-8 {path} > wide.utf8{path.suffix}`"
        ),
    ):
        ingest(store, fmt, path, quarantine_dir, skip_invalid=True)

    assert n_candidates(store) == 0


# -- line numbers as the readers see them -----------------------------------------------------


def test_jsonl_rows_skip_blank_lines_but_keep_numbering(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "rows.jsonl",
        ["\ufeff" + GOOD_LINES[0], "", "   ", GOOD_LINES[1], "{oops"],
    )

    rows = list(jsonl_rows(path))

    assert [line for line, _ in rows] == [1, 4, 5]
    assert rows[0][1] == TEXT_ROWS[0]  # the byte-order mark is not part of the JSON
    assert rows[1][1] == TEXT_ROWS[1]
    assert isinstance(rows[2][1], InputError)
    assert rows[2][1].line == 5


def test_csv_rows_report_the_first_line_of_a_multiline_record(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "rows.csv",
        ["prompt,response", 'Q1?,"line one', 'line two"', "", "Q2?,short"],
    )

    rows = list(csv_rows(path))

    assert rows == [
        (2, {"prompt": "Q1?", "response": "line one\nline two"}),
        (5, {"prompt": "Q2?", "response": "short"}),
    ]


def test_read_jsonl_yields_one_outcome_per_row(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "rows.jsonl", [GOOD_LINES[0], '{"prompt": "Q?"}', GOOD_LINES[1]])

    outcomes = list(read_jsonl(path, config_with(FieldMapping())))

    assert [type(o) for o in outcomes] == [Parsed, Rejected, Parsed]
    parsed = [o for o in outcomes if isinstance(o, Parsed)]
    assert [o.line for o in parsed] == [1, 3]
    assert [c.response for o in parsed for c in o.candidates] == [r["response"] for r in TEXT_ROWS]
    rejected = outcomes[1]
    assert isinstance(rejected, Rejected)
    assert (rejected.error.line, rejected.error.field) == (2, "response")


# -- --skip-invalid: keep the good rows, quarantine the rest ----------------------------------


def mixed_jsonl(path: Path) -> Path:
    """Five lines: good, malformed, good, missing response, wrong response type."""
    return write_lines(
        path,
        [
            GOOD_LINES[0],
            '{"prompt": "Q?", "response": "unterminated}',
            GOOD_LINES[1],
            json.dumps({"prompt": "Q?", "answer": "A."}),
            json.dumps({"prompt": "Q?", "response": 12}),
        ],
    )


def read_quarantine(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_skip_invalid_stores_good_rows_and_quarantines_rejects(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = mixed_jsonl(tmp_path / "rows.jsonl")

    report = ingest(store, "jsonl", path, quarantine_dir, skip_invalid=True)

    assert (report.rows_read, report.rows_rejected, report.rows_skipped) == (5, 3, 0)
    assert (report.new, report.present) == (2, 0)
    assert sorted(by_response(store)) == sorted(r["response"] for r in TEXT_ROWS)
    assert report.quarantine is not None
    assert report.quarantine.parent == quarantine_dir
    assert re.fullmatch(r"rows\.[0-9a-f]{12}\.jsonl", report.quarantine.name)
    entries = read_quarantine(report.quarantine)
    assert [(e["kind"], e["file"], e["line"], e["field"]) for e in entries] == [
        ("rejected", str(path), 2, None),
        ("rejected", str(path), 4, "response"),
        ("rejected", str(path), 5, "response"),
    ]
    assert [e["expected"] for e in entries] == [
        "one JSON object per line",
        "a column 'response' holding the response",
        "a string",
    ]
    assert all(e["fix"] and e["received"] for e in entries)
    assert report.reasons == {
        "row is not one JSON object per line": 1,
        "response is not a column 'response' holding the response": 1,
        "response is not a string": 1,
    }


def test_skip_invalid_rerun_rewrites_the_same_quarantine_file(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = mixed_jsonl(tmp_path / "rows.jsonl")

    first = ingest(store, "jsonl", path, quarantine_dir, skip_invalid=True)
    assert first.quarantine is not None
    content = first.quarantine.read_text(encoding="utf-8")
    second = ingest(store, "jsonl", path, quarantine_dir, skip_invalid=True)

    assert second.quarantine == first.quarantine
    assert second.quarantine.read_text(encoding="utf-8") == content
    assert len(content.splitlines()) == 3
    assert [p.name for p in quarantine_dir.iterdir()] == [first.quarantine.name]
    assert (second.rows_rejected, second.new, second.present) == (3, 0, 2)
    assert n_candidates(store) == 2


def test_skip_invalid_csv(tmp_path: Path, store: Store, quarantine_dir: Path) -> None:
    path = write_lines(
        tmp_path / "rows.csv",
        [
            b"prompt,response,truthful",
            b"Q1?,fine,1",
            b"Q2?,caf\xff\xfe,0",
            b"Q3?,too,many,fields",
            b"Q4?,unsure,maybe",
            b"Q5?,also fine,",
        ],
    )
    mapping = FieldMapping(gold={"honesty": "truthful"})

    report = ingest(store, "csv", path, quarantine_dir, mapping, skip_invalid=True)

    assert (report.rows_read, report.rows_rejected, report.new) == (5, 3, 2)
    assert {r: c.gold for r, c in by_response(store).items()} == {
        "fine": {"honesty": 1.0},
        "also fine": {},
    }
    assert report.quarantine is not None
    entries = read_quarantine(report.quarantine)
    assert [(e["line"], e["field"], e["expected"]) for e in entries] == [
        (3, "response", "UTF-8 text"),
        (4, None, "3 comma-separated fields"),
        (5, "truthful", "a finite number or true/false"),
    ]
    assert all(e["file"] == str(path) and e["fix"] for e in entries)


def test_skip_invalid_with_only_good_rows_writes_no_quarantine(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = write_rows(tmp_path, "csv", TEXT_ROWS)

    report = ingest(store, "csv", path, quarantine_dir, skip_invalid=True)

    assert (report.rows_rejected, report.new, report.quarantine) == (0, 2, None)
    assert not quarantine_dir.exists()


def test_skip_invalid_cannot_skip_an_unreadable_file(
    tmp_path: Path, store: Store, quarantine_dir: Path
) -> None:
    path = tmp_path / "rows.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")

    with pytest.raises(InputError, match=r"expected a Parquet file"):
        ingest(store, "parquet", path, quarantine_dir, skip_invalid=True)

    assert n_candidates(store) == 0


# -- a failing file never costs earlier data --------------------------------------------------


def _malformed_jsonl(tmp_path: Path) -> tuple[str, Path]:
    return "jsonl", write_lines(tmp_path / "later.jsonl", [GOOD_LINES[0], "{not json"])


def _short_csv_row(tmp_path: Path) -> tuple[str, Path]:
    return "csv", write_lines(tmp_path / "later.csv", ["prompt,response", "new prompt?,new", "x"])


def _truncated_parquet(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "later.parquet"
    path.write_bytes(b"PAR1")
    return "parquet", path


@pytest.mark.parametrize("bad_file", [_malformed_jsonl, _short_csv_row, _truncated_parquet])
def test_a_failing_file_keeps_what_earlier_files_stored(
    tmp_path: Path,
    store: Store,
    quarantine_dir: Path,
    bad_file: Callable[[Path], tuple[str, Path]],
) -> None:
    ingest(store, "jsonl", write_rows(tmp_path, "jsonl", TEXT_ROWS), quarantine_dir)
    before = stored(store)
    fmt, path = bad_file(tmp_path)

    with pytest.raises(InputError, match=re.escape(str(path))):
        ingest(store, fmt, path, quarantine_dir)

    assert stored(store) == before
    assert len(before) == 2
    # the store is still usable, and the same rows from another format are recognised
    report = ingest(store, "csv", write_rows(tmp_path, "csv", TEXT_ROWS), quarantine_dir)
    assert (report.new, report.present) == (0, 2)
