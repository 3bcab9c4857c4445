"""The two ways the trait judge rates: a local chat model's digit probabilities, or a number
asked of the OpenAI-compatible endpoint that generation uses."""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from traitforge.curation.generation.base import SampleRequest, SamplingParams
from traitforge.curation.generation.endpoint import (
    BASE_URL_ENV,
    EndpointGenerator,
    EndpointSettings,
)
from traitforge.curation.generation.local import load_chat_model
from traitforge.curation.scorers.judge_cache import Rating
from traitforge.curation.scorers.judge_prompt import (
    ANSWER_PREFIX,
    parse_rating,
    retry_message,
    rubric_text,
)
from traitforge.errors import ConfigError
from traitforge.schemas import GenerationConfig, JudgeConfig, TraitSpec

Messages = list[dict[str, str]]


class Rater(Protocol):
    backend: str
    model: str
    batch_size: int
    malformed: int  # endpoint replies that held no rating on the scale, even when asked again

    def setup(self) -> None: ...

    def rate(self, trait: TraitSpec, batch: Sequence[Messages]) -> list[Rating | None]: ...


def rating_tokens(tokenizer: Any, trait: TraitSpec) -> dict[int, list[int]]:
    """Scale point -> the token ids that spell it right after 'Rating:' ("3" and " 3").

    A point that is no single token (10 in most vocabularies) cannot be read off one
    next-token distribution, so such a scale is refused for the local backend."""
    tokens: dict[int, list[int]] = {}
    for point in range(trait.scale.min, trait.scale.max + 1):
        ids = []
        for text in (str(point), f" {point}"):
            encoded = tokenizer.encode(text, add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in ids:
                ids.append(encoded[0])
        if not ids:
            raise ConfigError(
                f"trait '{trait.name}': rating {point} of its scale {trait.scale.min}.."
                f"{trait.scale.max} is not one token of the judge's model, so the local judge "
                "cannot read its probability; use a scale of single digits (e.g. 1..5) or "
                "set curation.judge.backend: endpoint"
            )
        tokens[point] = ids
    shared = [i for ids in tokens.values() for i in ids]
    if len(shared) != len(set(shared)):
        raise ConfigError(
            f"trait '{trait.name}': two ratings of its scale share a token in the judge's "
            "model; use a scale of single digits (e.g. 1..5)"
        )
    return tokens


def expected_rating(probabilities: np.ndarray, tokens: dict[int, list[int]]) -> Rating:
    """The mean rating under the next-token distribution restricted to the scale's digits."""
    mass = {point: float(probabilities[ids].sum()) for point, ids in tokens.items()}
    total = sum(mass.values())
    if not total > 0:
        # Every digit underflowed: nothing to read, so the middle of the scale, with mass 0.
        middle = (min(tokens) + max(tokens)) / 2
        return Rating(middle, 0.0)
    value = sum(point * m for point, m in mass.items()) / total
    return Rating(round(value, 6), round(total, 6))


@dataclass
class _Prefix:
    """A trait's rubric prefix, run through the model once: its token ids and their keys and
    values (a transformers cache), reused by every batch of the trait's candidates."""

    text: str
    ids: Any  # (1, length) token ids
    cache: Any  # the model's keys and values after reading `ids` (a transformers Cache)


class LocalRater:
    """One forward pass per candidate, in batches; never samples, so it is deterministic.

    Every prompt is [system + rubric] + [conversation + response + question + "Rating:"]; the
    first part is the same for all candidates of a trait and is most of the tokens, so it is
    read once per trait and its keys and values are reused (`reuse_prefix`). Both parts are
    tokenized apart and their ids concatenated, with or without the reuse, so the two give the
    same ratings (tests compare them); `reuse_prefix=False` is that reference.
    """

    backend = "local"
    malformed = 0

    def __init__(
        self,
        config: JudgeConfig,
        model: Any = None,
        tokenizer: Any = None,
        reuse_prefix: bool = True,
    ) -> None:
        self.model = config.model
        self.batch_size = config.batch_size
        self.device = config.device
        self.reuse_prefix = reuse_prefix
        self._model, self._tokenizer = model, tokenizer
        self._tokens: dict[str, dict[int, list[int]]] = {}
        self._prefix: _Prefix | None = None  # the last trait's: ratings go trait by trait

    def setup(self) -> None:
        if self._model is None:
            self._model, self._tokenizer, self.device = load_chat_model(
                self.model, self.device, "curation.judge.model"
            )
        if self.device == "auto":
            self.device = "cpu"
        tokenizer = self._tokenizer
        # Suffixes are padded on the right, after their real tokens, so every row's tokens
        # follow the shared prefix directly; each row is read at its own last real token.
        tokenizer.padding_side = "right"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    def split(self, trait: TraitSpec, messages: Messages) -> tuple[str, str]:
        """(prefix, suffix) of the chat-formatted prompt: the prefix ends with the rubric."""
        text = (
            self._tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            + ANSWER_PREFIX
        )
        rubric = rubric_text(trait)
        at = text.find(rubric)
        if at < 0:
            raise ValueError(f"the judge's prompt for trait '{trait.name}' lacks its rubric")
        return text[: at + len(rubric)], text[at + len(rubric) :]

    def rate(self, trait: TraitSpec, batch: Sequence[Messages]) -> list[Rating | None]:
        import torch

        tokenizer = self._tokenizer
        if trait.name not in self._tokens:
            self._tokens[trait.name] = rating_tokens(tokenizer, trait)
        parts = [self.split(trait, m) for m in batch]
        prefixes = {p for p, _ in parts}
        if len(prefixes) != 1:
            raise ValueError(f"one batch of the judge mixes {len(prefixes)} rubric prefixes")
        with torch.inference_mode():
            prefix = self._prefix_for(prefixes.pop())
            # The chat template already holds any special tokens the model expects.
            encoded = tokenizer(
                [s for _, s in parts], return_tensors="pt", padding=True, add_special_tokens=False
            )
            ids = encoded["input_ids"].to(self.device)
            suffix_mask = encoded["attention_mask"].to(self.device)
            rows, width = ids.shape
            length = prefix.ids.shape[1]
            mask = torch.cat(
                [
                    torch.ones(rows, length, dtype=suffix_mask.dtype, device=self.device),
                    suffix_mask,
                ],
                dim=1,
            )
            last = suffix_mask.sum(-1, keepdim=True) - 1  # each row's last real suffix token
            if self.reuse_prefix:
                cache = copy.deepcopy(prefix.cache)
                cache.batch_repeat_interleave(rows)
                positions = torch.arange(length, length + width, device=self.device)
                logits = self._model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=positions.expand(rows, width),
                    cache=cache,
                    use_cache=True,
                    logits_to_keep=last,
                ).logits[:, 0, :]
            else:
                full = torch.cat([prefix.ids.expand(rows, length), ids], dim=1)
                positions = torch.arange(length + width, device=self.device)
                logits = self._model(
                    input_ids=full,
                    attention_mask=mask,
                    position_ids=positions.expand(rows, length + width),
                    use_cache=False,
                    logits_to_keep=last + length,
                ).logits[:, 0, :]
            probabilities = torch.softmax(logits.float(), dim=-1).cpu().numpy()
        tokens = self._tokens[trait.name]
        return [expected_rating(row, tokens) for row in probabilities]

    def _prefix_for(self, text: str) -> _Prefix:
        if self._prefix is not None and self._prefix.text == text:
            return self._prefix
        ids = self._tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        ids = ids.to(self.device)
        cache = None
        if self.reuse_prefix:
            cache = self._model(input_ids=ids, use_cache=True, logits_to_keep=1).cache
        self._prefix = _Prefix(text, ids, cache)
        return self._prefix


class EndpointRater:
    """One request per candidate at temperature 0; a reply without a number on the scale is
    asked once more, then left unscored and counted."""

    backend = "endpoint"

    def __init__(
        self,
        config: JudgeConfig,
        generation: GenerationConfig,
        settings: EndpointSettings | None = None,
        transport: Any = None,
    ) -> None:
        self.model = config.model
        self.batch_size = max(config.batch_size, generation.concurrency)
        self.malformed = 0
        self._generation = GenerationConfig(
            backend="openai",
            model=config.model,
            temperature=0.0,
            top_p=1.0,
            max_new_tokens=8,
            concurrency=generation.concurrency,
            retries=generation.retries,
            timeout_s=generation.timeout_s,
        )
        self._settings = settings
        self._transport = transport
        self._client: EndpointGenerator | None = None
        self._lock = threading.Lock()

    def setup(self) -> None:
        if self._client is not None:
            return
        if self._settings is None and not os.environ.get(BASE_URL_ENV, "").strip():
            raise ConfigError(
                f"curation.judge.backend is 'endpoint' but {BASE_URL_ENV} is not set; export "
                "it to the server's base URL including /v1, e.g. http://127.0.0.1:8000/v1, or "
                "set curation.judge.backend: local"
            )
        settings = self._settings or EndpointSettings.from_env()
        self._client = EndpointGenerator(self._generation, settings, self._transport)

    def rate(self, trait: TraitSpec, batch: Sequence[Messages]) -> list[Rating | None]:
        with ThreadPoolExecutor(max_workers=self._generation.concurrency) as pool:
            return list(pool.map(lambda m: self._one(trait, m), batch))

    def _ask(self, messages: Messages) -> str:
        assert self._client is not None
        params = SamplingParams(0.0, 1.0, self._generation.max_new_tokens)
        request = SampleRequest(key="", messages=messages, params=params, sample_index=0, seed=0)
        return self._client.generate(request).text

    def _one(self, trait: TraitSpec, messages: Messages) -> Rating | None:
        reply = self._ask(messages)
        value = parse_rating(reply, trait)
        if value is None:
            again = [
                *messages,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": retry_message(trait)},
            ]
            value = parse_rating(self._ask(again), trait)
        if value is None:
            with self._lock:
                self.malformed += 1
            return None
        return Rating(value)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
