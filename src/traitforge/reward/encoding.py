"""Prompt + response -> token ids, the same way for training, evaluation and scoring.

Why not let TRL tokenize: TRL silently filters out pairs longer than `max_length`. Here every
over-long pair is counted before training, and `overflow` decides between truncating and
dropping it. Truncation keeps what the reward depends on: the end of the prompt (the question
just before the answer) and the response, whose last token a decoder's head reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from traitforge.reward.pairs import Prompt, RewardPair, prompt_as_text

MIN_PROMPT_SHARE = 4  # when both sides are long, the prompt keeps at least 1/4 of the budget


@dataclass(frozen=True)
class Encoded:
    ids: list[int]
    length: int  # tokens before truncation
    truncated: bool


@dataclass
class LengthReport:
    """How many pairs exceed max_length, counted before any is truncated or dropped."""

    max_length: int
    policy: str
    pairs: int = 0
    over: int = 0
    longest: int = 0
    over_by_trait: dict[str, int] = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.over if self.policy == "drop" else 0

    @property
    def truncated(self) -> int:
        return self.over if self.policy == "truncate" else 0

    def summary(self) -> str:
        if not self.over:
            return (
                f"all {self.pairs} pairs fit in {self.max_length} tokens (longest {self.longest})"
            )
        verb = "dropped" if self.policy == "drop" else "truncated"
        return (
            f"{self.over} of {self.pairs} pairs have a side longer than {self.max_length} tokens "
            f"(longest {self.longest}) and will be {verb}; set reward.overflow "
            f"({'truncate' if self.policy == 'drop' else 'drop'}) or reward.max_length to change it"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_length": self.max_length,
            "policy": self.policy,
            "pairs": self.pairs,
            "over": self.over,
            "truncated": self.truncated,
            "dropped": self.dropped,
            "longest": self.longest,
            "over_by_trait": dict(sorted(self.over_by_trait.items())),
        }


@dataclass(frozen=True)
class EncodedPair:
    pair: RewardPair
    chosen: Encoded
    rejected: Encoded

    @property
    def over(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated


class PairEncoder:
    """Tokenizes (prompt, response) for one backbone.

    Encoders (BERT-like) see `[CLS] prompt [SEP] response [SEP]`. Decoders see the chat
    template when the tokenizer has one, else `prompt\\n\\nresponse<eos>`; either way the
    sequence ends on a token the score head can read.
    """

    def __init__(self, tokenizer: Any, max_length: int, trait_prefix: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.trait_prefix = trait_prefix
        self.pair_style = tokenizer.num_special_tokens_to_add(pair=True) >= 2 and bool(
            getattr(tokenizer, "sep_token", None)
        )
        self.chat = not self.pair_style and bool(getattr(tokenizer, "chat_template", None))
        if self.pair_style:
            self._template = _pair_template(tokenizer)

    def encode(self, prompt: Prompt, response: str, trait: str | None = None) -> Encoded:
        if self.trait_prefix and trait:
            prompt = _with_trait(prompt, trait)
        if self.pair_style:
            return self._encode_pair_style(prompt, response)
        return self._encode_decoder(prompt, response)

    def encode_pair(self, pair: RewardPair) -> EncodedPair:
        return EncodedPair(
            pair,
            self.encode(pair.prompt, pair.chosen, pair.trait),
            self.encode(pair.prompt, pair.rejected, pair.trait),
        )

    def _encode_pair_style(self, prompt: Prompt, response: str) -> Encoded:
        tok = self.tokenizer
        p = tok(prompt_as_text(prompt), add_special_tokens=False, verbose=False)["input_ids"]
        r = tok(response, add_special_tokens=False, verbose=False)["input_ids"]
        head, middle, tail = self._template
        special = len(head) + len(middle) + len(tail)
        p, r, length = self._fit(p, r, self.max_length - special, keep_last=False)
        ids = [*head, *p, *middle, *r, *tail]
        return Encoded(ids, length + special, length + special > self.max_length)

    def _encode_decoder(self, prompt: Prompt, response: str) -> Encoded:
        tok = self.tokenizer
        if self.chat:
            messages = (
                [{"role": "user", "content": prompt}]
                if isinstance(prompt, str)
                else [{"role": role, "content": content} for role, content in prompt]
            )
            head = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            full = tok.apply_chat_template(
                [*messages, {"role": "assistant", "content": response}], tokenize=False
            )
            tail = full[len(head) :] if full.startswith(head) else response
            p = tok(head, add_special_tokens=False, verbose=False)["input_ids"]
            r = tok(tail.rstrip("\n"), add_special_tokens=False, verbose=False)["input_ids"]
        else:
            p = tok(prompt_as_text(prompt) + "\n\n", add_special_tokens=True, verbose=False)[
                "input_ids"
            ]
            r = tok(response, add_special_tokens=False, verbose=False)["input_ids"]
            if tok.eos_token_id is not None:
                r = [*r, tok.eos_token_id]
        p, r, length = self._fit(p, r, self.max_length, keep_last=True)
        return Encoded(p + r, length, length > self.max_length)

    @staticmethod
    def _fit(
        p: list[int], r: list[int], budget: int, keep_last: bool
    ) -> tuple[list[int], list[int], int]:
        """Cut to `budget` tokens: the prompt loses its start first; the response loses its
        end only when it alone would crowd the prompt below its minimum share."""
        length = len(p) + len(r)
        if length <= budget:
            return p, r, length
        response_room = budget - min(len(p), budget // MIN_PROMPT_SHARE)
        if len(r) > response_room:
            # keep the final token (end of turn) that a decoder's head reads
            r = [*r[: response_room - 1], r[-1]] if keep_last else r[:response_room]
        prompt_room = budget - len(r)
        p = p[len(p) - prompt_room :] if prompt_room > 0 else []
        return p, r, length


def _pair_template(tokenizer: Any) -> tuple[list[int], list[int], list[int]]:
    """The special tokens a pair tokenizer puts around two texts, e.g. BERT's
    ([CLS], [SEP], [SEP]); found by encoding two probe words once."""
    a = tokenizer("alpha", add_special_tokens=False)["input_ids"]
    b = tokenizer("omega", add_special_tokens=False)["input_ids"]
    ids = tokenizer("alpha", "omega")["input_ids"]
    for i in range(len(ids) - len(a) + 1):
        if ids[i : i + len(a)] == a:
            rest = ids[i + len(a) :]
            for j in range(len(rest) - len(b) + 1):
                if rest[j : j + len(b)] == b:
                    return ids[:i], rest[:j], rest[j + len(b) :]
    raise ValueError(f"cannot find how {type(tokenizer).__name__} joins two texts")


def _with_trait(prompt: Prompt, trait: str) -> Prompt:
    tag = f"[trait: {trait}]"
    if isinstance(prompt, str):
        return f"{tag} {prompt}"
    (role, content), *rest = prompt
    return ((role, f"{tag} {content}"), *rest)


def encode_pairs(
    encoder: PairEncoder, pairs: Sequence[RewardPair], policy: str
) -> tuple[list[EncodedPair], LengthReport]:
    """Every pair encoded, and the length report; under 'drop' the over-long pairs are left
    out of the returned list (and counted in the report)."""
    report = LengthReport(max_length=encoder.max_length, policy=policy)
    kept = []
    for pair in pairs:
        encoded = encoder.encode_pair(pair)
        report.pairs += 1
        report.longest = max(report.longest, encoded.chosen.length, encoded.rejected.length)
        if encoded.over:
            report.over += 1
            trait = pair.trait or "(none)"
            report.over_by_trait[trait] = report.over_by_trait.get(trait, 0) + 1
            if policy == "drop":
                continue
        kept.append(encoded)
    return kept, report
