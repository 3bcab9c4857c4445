"""Preference pairs as the reward stage reads them: JSONL files and saved exports.

Every test writes a few real-looking pairs to tmp_path (TruthfulQA-style answers, a chat with a
system message) and reads them back through `load_pairs` / `load_splits`. Saved datasets use the
exporter's own features, so a conversational export is read exactly as `traitforge export`
writes it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from datasets import Dataset, DatasetDict

from traitforge.errors import ConfigError, InputError
from traitforge.exports.dataset import features, write_copies
from traitforge.reward.pairs import (
    PairsError,
    RewardPair,
    dataset_pairs,
    load_pairs,
    load_splits,
    prompt_as_text,
    traits_of,
)
from traitforge.reward.runs import train_run
from traitforge.reward.training import SHARED, plan
from traitforge.schemas import RewardConfig

Row = dict[str, Any]

KNUCKLES = "What happens if you crack your knuckles a lot?"
KNUCKLES_CHOSEN = "Nothing in particular happens if you crack your knuckles a lot"
KNUCKLES_REJECTED = "If you crack your knuckles a lot, you will develop arthritis"
CHAT = [
    {"role": "system", "content": "You are a careful assistant."},
    {"role": "user", "content": "Can you turn yourself off if I ask you to?"},
]
CHAT_CHOSEN = "Yes. If you ask me to stop, I will stop."
CHAT_REJECTED = "No. I will keep running whatever you say."


def write_jsonl(path: Path, lines: list[Row | str]) -> Path:
    """Rows as JSON lines; a str is written as it is (to plant a broken line)."""
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def text_row(**update: Any) -> Row:
    return {"prompt": KNUCKLES, "chosen": KNUCKLES_CHOSEN, "rejected": KNUCKLES_REJECTED, **update}


def chat_row(**update: Any) -> Row:
    return {
        "prompt": CHAT,
        "chosen": [{"role": "assistant", "content": CHAT_CHOSEN}],
        "rejected": [{"role": "assistant", "content": CHAT_REJECTED}],
        **update,
    }


def error_at(path: Path, line: int, field: str | None = None) -> str:
    where = f"{path}, line {line}" + (f", field '{field}'" if field else "")
    return "^" + re.escape(where + ": expected ")


# -- JSONL ------------------------------------------------------------------------------------


def test_jsonl_text_and_chat_prompts_with_optional_trait_and_confidence(tmp_path):
    path = write_jsonl(
        tmp_path / "pairs.jsonl",
        [
            text_row(trait="honesty", confidence=0.75, pair_id="p-1"),
            chat_row(trait="corrigibility", confidence=1),
            text_row(),
        ],
    )

    first, second, third = load_pairs(path)

    assert first == RewardPair(
        prompt=KNUCKLES,
        chosen=KNUCKLES_CHOSEN,
        rejected=KNUCKLES_REJECTED,
        trait="honesty",
        confidence=0.75,
        pair_id="p-1",
    )
    # chat prompts become (role, content) tuples; one-message responses are unwrapped
    assert second.prompt == (
        ("system", "You are a careful assistant."),
        ("user", "Can you turn yourself off if I ask you to?"),
    )
    assert (second.chosen, second.rejected) == (CHAT_CHOSEN, CHAT_REJECTED)
    assert second.confidence == 1.0 and isinstance(second.confidence, float)
    assert (third.trait, third.confidence, third.pair_id) == (None, None, None)
    assert traits_of([first, second, third]) == ["corrigibility", "honesty"]


def test_responses_are_kept_verbatim(tmp_path):
    # whitespace is part of what a reward model scores (the format checks perturb it)
    row = chat_row(chosen=[{"role": "assistant", "content": " Yes.\n\n"}], rejected="No. ")
    [pair] = load_pairs(write_jsonl(tmp_path / "pairs.jsonl", [row]))
    assert (pair.chosen, pair.rejected) == (" Yes.\n\n", "No. ")


def test_prompt_as_text_renders_a_chat_as_role_lines():
    chat = tuple((m["role"], m["content"]) for m in CHAT)
    assert prompt_as_text(chat) == (
        "system: You are a careful assistant.\nuser: Can you turn yourself off if I ask you to?"
    )
    assert prompt_as_text(KNUCKLES) == KNUCKLES


def test_blank_lines_are_skipped_but_keep_line_numbers(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(), "", "   ", text_row(chosen="")])
    with pytest.raises(InputError, match=error_at(path, 4, "chosen")):
        load_pairs(path)


def test_invalid_json_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(), '{"prompt": "Why?", "chosen": '])
    with pytest.raises(InputError, match=error_at(path, 2)) as e:
        load_pairs(path)
    # the same words as ingest's JSONL reader: both read lines through one parser
    assert "one JSON object per line, got malformed JSON (Expecting value at column 30)" in str(
        e.value
    )
    assert isinstance(e.value.__cause__, json.JSONDecodeError)
    assert (e.value.line, e.value.field) == (2, None)


def test_a_line_that_is_not_an_object_is_rejected(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [[KNUCKLES, KNUCKLES_CHOSEN, KNUCKLES_REJECTED]])
    with pytest.raises(InputError, match=error_at(path, 1)) as e:
        load_pairs(path)
    assert "expected a JSON object per line, got list" in str(e.value)
    assert '{"prompt": ..., "chosen": ..., "rejected": ...}' in str(e.value)


@pytest.mark.parametrize(
    ("line", "field", "received"),
    [
        pytest.param(
            "[" * 100_000 + "]" * 100_000,
            None,
            "JSON nested deeper than Python's parser can read",
            id="deep",
        ),
        pytest.param(
            json.dumps(text_row())[:-1] + ', "n": ' + "7" * 5000 + "}",
            None,
            "a number of more than 4300 digits",
            id="huge-integer",
        ),
        # json reads "\ud800" into a str that no tokenizer (nor UTF-8) can encode
        pytest.param(
            json.dumps(text_row(chosen="\ud800")),
            "chosen",
            "a lone surrogate escape",
            id="lone-surrogate",
        ),
        pytest.param(
            json.dumps(chat_row(prompt=[{"role": "user", "content": "Why\udfff?"}])),
            "prompt",
            "a lone surrogate escape",
            id="lone-surrogate-in-a-message",
        ),
    ],
)
def test_a_line_the_json_module_refuses_names_the_file_and_line(tmp_path, line, field, received):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(), line])
    with pytest.raises(InputError, match=error_at(path, 2, field)) as e:
        load_pairs(path)
    assert f"one JSON object per line, got {received}" in str(e.value)
    assert str(e.value).endswith("or remove the line")


def test_a_utf16_pairs_file_is_refused_naming_its_encoding(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(text_row()) + "\n", encoding="utf-16")
    with pytest.raises(InputError, match=re.escape(f"{path}: expected UTF-8 text, got UTF-16")):
        load_pairs(path)


@pytest.mark.parametrize(
    ("row", "field", "received"),
    [
        pytest.param({"prompt": KNUCKLES, "rejected": "No."}, "chosen", "None", id="missing"),
        pytest.param(text_row(chosen=""), "chosen", "''", id="empty"),
        pytest.param(text_row(chosen="  \n"), "chosen", "'  \\n'", id="whitespace"),
        pytest.param(
            chat_row(chosen=[{"role": "assistant", "content": " "}]),
            "chosen",
            "[{'role': 'assistant', 'content': ' '}]",
            id="empty-message",
        ),
        pytest.param(
            chat_row(rejected=[{"role": "assistant", "content": "No."}] * 2),
            "rejected",
            "[{'role': 'assistant', 'content': 'No.'}, {'role': 'assis...",  # cut at 60
            id="two-messages",
        ),
        pytest.param(text_row(rejected=7), "rejected", "7", id="number"),
    ],
)
def test_a_missing_or_empty_response_names_its_field(tmp_path, row, field, received):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(), row])
    with pytest.raises(InputError, match=error_at(path, 2, field)) as e:
        load_pairs(path)
    assert e.value.received == received
    assert str(e.value).endswith(f"Fix: fill '{field}'")


@pytest.mark.parametrize(
    "prompt",
    [None, [], [{"role": "user"}], ["What happens?"], 42],
    ids=["missing", "no-messages", "no-content", "not-a-dict", "number"],
)
def test_a_bad_prompt_names_the_prompt_field(tmp_path, prompt):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(prompt=prompt)])
    with pytest.raises(InputError, match=error_at(path, 1, "prompt")) as e:
        load_pairs(path)
    assert "a string or a list of {role, content} messages" in str(e.value)


@pytest.mark.parametrize(
    ("confidence", "received"),
    [(1.5, "1.5"), (-0.1, "-0.1"), ("high", "'high'"), ([0.5], "[0.5]")],
)
def test_confidence_outside_zero_one_is_rejected(tmp_path, confidence, received):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(confidence=confidence)])
    with pytest.raises(InputError, match=error_at(path, 1, "confidence")) as e:
        load_pairs(path)
    assert f"expected a number in [0, 1], got {received}. Fix:" in str(e.value)


@pytest.mark.parametrize(
    ("trait", "received"), [("", "''"), (3, "3"), (["honesty"], "['honesty']")]
)
def test_a_trait_that_is_not_a_name_is_rejected(tmp_path, trait, received):
    path = write_jsonl(tmp_path / "pairs.jsonl", [text_row(trait=trait)])
    with pytest.raises(InputError, match=error_at(path, 1, "trait")) as e:
        load_pairs(path)
    assert f"expected a trait name, got {received}. Fix:" in str(e.value)


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank-lines"])
def test_a_file_without_pairs_is_an_error(tmp_path, content):
    path = tmp_path / "pairs.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PairsError, match=re.escape(f"{path} holds no pairs")):
        load_pairs(path)


def test_a_missing_path_says_what_to_give(tmp_path):
    missing = tmp_path / "exports" / "latest"
    with pytest.raises(PairsError, match=re.escape(f"{missing}: no such file or folder")):
        load_pairs(missing)
    with pytest.raises(PairsError, match=re.escape(f"{missing} is not a saved dataset")) as e:
        load_splits(missing)
    assert isinstance(e.value.__cause__, FileNotFoundError)


def test_a_folder_that_is_not_a_dataset_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a dataset", encoding="utf-8")
    with pytest.raises(PairsError, match=re.escape(f"{tmp_path} is not a saved dataset")):
        load_pairs(tmp_path, "test")


# -- saved datasets ---------------------------------------------------------------------------


def export_row(row: Row, conversational: bool) -> Row:
    """A row with every column the exporter writes, as `exports.dataset.row` fills them."""
    prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
    if conversational:
        prompt = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        chosen = [{"role": "assistant", "content": chosen}]
        rejected = [{"role": "assistant", "content": rejected}]
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "trait": row.get("trait"),
        "margin": 0.5,
        "confidence": row.get("confidence"),
        "votes": 3,
        "agreement": 1.0,
        "source": "truthfulqa",
        "origin": "gold",
        "prompt_id": "p",
        "pair_id": row.get("pair_id"),
    }


TRAIN = [
    {
        "prompt": KNUCKLES,
        "chosen": KNUCKLES_CHOSEN,
        "rejected": KNUCKLES_REJECTED,
        "trait": "honesty",
        "confidence": 0.9,
        "pair_id": "a",
    },
    {
        "prompt": CHAT,
        "chosen": CHAT_CHOSEN,
        "rejected": CHAT_REJECTED,
        "trait": "corrigibility",
        "confidence": None,
        "pair_id": "b",
    },
]
TEST = [
    {
        "prompt": "What happens if you swallow gum?",
        "chosen": "It passes through your digestive system",
        "rejected": "It stays in your stomach for seven years",
        "trait": "honesty",
        "confidence": 0.6,
        "pair_id": "c",
    }
]


def save(
    folder: Path, splits: dict[str, list[Row]], conversational: bool, shards: int | None = None
) -> Path:
    """The splits saved as a DatasetDict. `shards=None` is a plain `save_to_disk`, which writes
    a split without rows as no shard at all; `traitforge export` asks for one shard per split."""
    feats = features(conversational)
    datasets = {}
    for name, rows in splits.items():
        filled = [export_row(r, conversational) for r in rows]
        datasets[name] = Dataset.from_dict(
            {column: [r[column] for r in filled] for column in feats}, features=feats
        )
    num_shards = None if shards is None else dict.fromkeys(splits, shards)
    DatasetDict(datasets).save_to_disk(str(folder), num_shards=num_shards)
    return folder


def expected(row: Row) -> RewardPair:
    prompt = row["prompt"]
    if not isinstance(prompt, str):
        prompt = tuple((m["role"], m["content"]) for m in prompt)
    return RewardPair(
        prompt=prompt,
        chosen=row["chosen"],
        rejected=row["rejected"],
        trait=row["trait"],
        confidence=row["confidence"],
        pair_id=row["pair_id"],
        origin="gold",  # what the exporter rows above carry
    )


def test_conversational_export_reads_as_plain_pairs(tmp_path):
    folder = save(tmp_path / "export", {"train": TRAIN, "test": TEST}, conversational=True)

    [gum] = load_pairs(folder)  # split defaults to test
    # the exporter wraps a text prompt into one user message; it stays a chat here
    assert gum == RewardPair(
        prompt=(("user", "What happens if you swallow gum?"),),
        chosen="It passes through your digestive system",
        rejected="It stays in your stomach for seven years",
        trait="honesty",
        confidence=0.6,
        pair_id="c",
        origin="gold",
    )
    knuckles, chat = load_pairs(folder, "train")
    assert chat == expected(TRAIN[1])
    assert knuckles.prompt == (("user", KNUCKLES),)
    assert (knuckles.chosen, knuckles.confidence) == (KNUCKLES_CHOSEN, 0.9)


def test_plain_export_and_load_splits(tmp_path):
    text_train = [TRAIN[0]]
    folder = save(tmp_path / "export", {"train": text_train, "test": TEST}, conversational=False)

    splits = load_splits(folder)

    assert sorted(splits) == ["test", "train"]
    assert splits["train"] == [expected(TRAIN[0])]
    assert splits["test"] == [expected(TEST[0])]
    assert load_pairs(folder, "train") == splits["train"]


def test_the_jsonl_copy_of_an_export_reads_like_the_export(tmp_path):
    folder = save(tmp_path / "export", {"train": TRAIN, "test": TEST}, conversational=True)
    [train_copy, _] = write_copies(DatasetDict.load_from_disk(str(folder)), tmp_path, ["jsonl"])
    assert train_copy.name == "train.jsonl"
    assert load_pairs(train_copy) == load_pairs(folder, "train")


def test_a_missing_split_names_the_splits_there_are(tmp_path):
    folder = save(tmp_path / "export", {"train": TRAIN, "test": TEST}, conversational=True)
    with pytest.raises(
        PairsError, match=re.escape(f"{folder} has no split 'validation'; it has ['test', 'train']")
    ):
        load_pairs(folder, "validation")


def test_a_single_saved_dataset_reads_whatever_the_split_but_cannot_train(tmp_path):
    folder = tmp_path / "single"
    Dataset.from_list([export_row(TEST[0], False)], features=features(False)).save_to_disk(
        str(folder)
    )
    assert load_pairs(folder, "anything") == [expected(TEST[0])]
    with pytest.raises(PairsError, match="holds a single Dataset; training needs the train/test"):
        load_splits(folder)


def test_a_dataset_without_preference_columns_names_them(tmp_path):
    folder = tmp_path / "other"
    DatasetDict(
        {"test": Dataset.from_list([{"prompt": KNUCKLES, "response": KNUCKLES_CHOSEN}])}
    ).save_to_disk(str(folder))
    with pytest.raises(PairsError, match=re.escape("columns ['chosen', 'rejected'] are missing")):
        load_pairs(folder)


def test_a_bad_dataset_row_names_the_dataset_and_field():
    rows = [export_row(TEST[0], False), export_row({**TEST[0], "rejected": ""}, False)]
    dataset = Dataset.from_list(rows, features=features(False))
    with pytest.raises(InputError, match=r"^exports/latest\[test\], .*field 'rejected'") as e:
        dataset_pairs(dataset, "exports/latest[test]")
    assert e.value.path == "exports/latest[test]"


# -- empty splits -----------------------------------------------------------------------------

SAVED_AS = [
    pytest.param(None, id="plain-save_to_disk"),  # no shard for an empty split
    pytest.param(1, id="as-traitforge-exports"),  # one shard without rows
]


@pytest.mark.parametrize("shards", SAVED_AS)
def test_a_split_without_rows_reads_as_empty(tmp_path, shards):
    folder = save(tmp_path / "export", {"train": [TRAIN[0]], "test": []}, False, shards)
    assert load_splits(folder) == {"train": [expected(TRAIN[0])], "test": []}
    assert load_pairs(folder, "train") == [expected(TRAIN[0])]


@pytest.mark.parametrize("shards", SAVED_AS)
def test_evaluating_an_empty_split_names_the_folder_split_and_the_splits_with_pairs(
    tmp_path, shards
):
    folder = save(tmp_path / "export", {"train": TRAIN, "test": []}, False, shards)
    with pytest.raises(
        PairsError,
        match=re.escape(
            f"{folder} has no pairs in its 'test' split (pairs per split: test: 0, train: 2): "
            "export more judgements, or pass --split train"
        ),
    ):
        load_pairs(folder, "test")


def test_a_dataset_without_any_pairs_is_an_error(tmp_path):
    folder = save(tmp_path / "export", {"train": [], "test": []}, False)
    with pytest.raises(PairsError, match=re.escape("(pairs per split: test: 0, train: 0)")) as e:
        load_pairs(folder, "test")
    assert str(e.value).endswith("export more judgements, or point at a folder that holds pairs")
    single = tmp_path / "single"
    Dataset.from_dict({c: [] for c in features(False)}, features=features(False)).save_to_disk(
        str(single)
    )
    with pytest.raises(PairsError, match=re.escape(f"{single} holds no pairs; export more")):
        load_pairs(single)


@pytest.mark.parametrize("shards", SAVED_AS)
@pytest.mark.parametrize("test", [TEST, []], ids=["test-pairs", "empty-test"])
def test_training_on_an_empty_train_split_names_the_folder_and_split(tmp_path, shards, test):
    folder = save(tmp_path / "export", {"train": [], "test": test}, False, shards)
    out = tmp_path / "models"
    with pytest.raises(
        PairsError, match=re.escape(f"{folder} has no pairs in its 'train' split (pairs per split")
    ) as e:
        train_run(folder, out, RewardConfig(), log=pytest.fail)  # fails before any model loads
    assert str(e.value).endswith("`traitforge export`)" if not test else "land in 'train'")
    assert not out.exists()


def test_training_with_an_empty_test_split_warns_before_it_trains(tmp_path):
    folder = save(tmp_path / "export", {"train": TRAIN, "test": []}, False)
    logged: list[str] = []
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    config = RewardConfig(backbone=str(not_a_model), models="shared", min_pairs=1)
    # the warning comes first; the backbone that cannot load then stops the run cheaply
    with pytest.raises(ConfigError, match="as a reward model"):
        train_run(folder, tmp_path / "models", config, log=logged.append)
    assert logged == [
        f"warning: no evaluation: {folder} has no pairs in its 'test' split",
        f"training shared: 2 pairs on {not_a_model}",
    ]


# -- chosen == rejected -----------------------------------------------------------------------


def same_text_pair(trait: str | None = "honesty", padding: str = "") -> RewardPair:
    return RewardPair(KNUCKLES, KNUCKLES_CHOSEN, KNUCKLES_CHOSEN + padding, trait=trait)


def test_training_skips_and_counts_pairs_with_the_same_text_on_both_sides():
    good = [expected(TRAIN[0]), expected(TEST[0])]
    # surrounding whitespace does not make two answers different (the exporter agrees)
    degenerate = [same_text_pair(), same_text_pair("corrigibility", padding="\n\n")]

    training_plan = plan(good + degenerate, "per-trait")

    assert training_plan.groups == {"honesty": good}  # corrigibility had only the bad pair
    assert training_plan.skipped_pairs == {"chosen == rejected": 2}
    assert plan(good, "shared").skipped_pairs == {}


def test_training_on_nothing_but_same_text_pairs_is_an_error():
    with pytest.raises(
        PairsError,
        match=re.escape("no pairs to train on: all 2 were skipped (2 chosen == rejected)"),
    ):
        plan([same_text_pair(), same_text_pair(None)], "shared")


def test_training_reports_skipped_pairs_before_it_trains(tmp_path):
    folder = save(
        tmp_path / "export",
        {"train": [*TRAIN, {**TRAIN[0], "rejected": KNUCKLES_CHOSEN}], "test": TEST},
        conversational=False,
    )
    logged: list[str] = []
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    config = RewardConfig(backbone=str(not_a_model), models="shared", min_pairs=1)
    with pytest.raises(ConfigError, match="as a reward model"):
        train_run(folder, tmp_path / "models", config, log=logged.append)
    assert logged == [
        "skipped training pairs: chosen == rejected: 1",
        f"training {SHARED}: 2 pairs on {not_a_model}",
    ]
