"""What one unit of generation work is, and the interface every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from traitforge.schemas import ChatMessage, GenerationConfig, Prompt, content_hash

# The stage name under which finished units are recorded in the store's `done` table.
STAGE = "generate"


@dataclass(frozen=True)
class SamplingParams:
    """The knobs that change what a model writes; part of every unit's identity."""

    temperature: float
    top_p: float
    max_new_tokens: int

    @classmethod
    def from_config(cls, config: GenerationConfig) -> SamplingParams:
        return cls(config.temperature, config.top_p, config.max_new_tokens)

    def as_dict(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_new_tokens": self.max_new_tokens,
        }


@dataclass(frozen=True)
class SampleRequest:
    """One response to sample: a prompt, the sampling parameters, and the seed that fixes it."""

    key: str
    messages: list[dict[str, str]]
    params: SamplingParams
    sample_index: int
    seed: int


@dataclass(frozen=True)
class Sample:
    """What a backend wrote. `text` may be empty: the runner decides what that means."""

    text: str
    finish_reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """A backend that writes responses. `setup()` loads the model or opens the client and may
    be called more than once; `generate()` may be called from `concurrency` threads at once."""

    backend: str
    model: str
    concurrency: int

    def setup(self) -> None: ...

    def generate(self, request: SampleRequest) -> Sample: ...

    def close(self) -> None: ...


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A prompt as the role/content list that chat templates and chat endpoints read."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [m.model_dump() if isinstance(m, ChatMessage) else dict(m) for m in prompt]


def sample_seed(base_seed: int, sample_index: int) -> int:
    """The seed of sample `i`. Hashed rather than `base + i` so that raising the base seed by
    one gives n fresh samples instead of repeating n - 1 of the previous run's. It fits in 31
    bits because endpoints (vLLM, llama.cpp) take a 32-bit seed."""
    return int(content_hash("sample-seed", base_seed, sample_index, length=8), 16) & 0x7FFFFFFF


def work_key(
    backend: str,
    model: str,
    messages: list[dict[str, str]],
    params: SamplingParams,
    sample_index: int,
    seed: int,
) -> str:
    """The identity of one unit of work: everything that determines the response. The backend
    is part of it because the same model name served by another engine samples differently."""
    return content_hash("generate", backend, model, messages, params.as_dict(), sample_index, seed)
