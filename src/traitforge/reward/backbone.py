"""Backbones: names shipped on PyPI resolved to local folders, loaded with a reward head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitforge.curation.generation.local import (
    PACKAGED_MODEL,
    dequantized_folder,
    resolve_local_model,
)
from traitforge.curation.models import PACKAGED_EMBEDDERS, resolve_embedding_model
from traitforge.errors import ConfigError
from traitforge.quiet import transformers_errors_only

_INSTALL_HINT = "pip install torch==2.13.0 transformers==5.24.0 trl==1.16.0"


def resolve_backbone(name: str) -> str:
    """A local folder (or .gguf file, dequantized once into the cache), a PyPI-shipped name,
    or a hub id passed on as it is."""
    if name in PACKAGED_EMBEDDERS:
        return resolve_embedding_model(name)
    source = resolve_local_model(name)
    if source.gguf_file is not None:
        return str(dequantized_folder(source))
    if name == PACKAGED_MODEL:  # pragma: no cover - resolve_local_model returns the GGUF
        raise ConfigError(f"{name}: the packaged GGUF file was not found")
    return source.location


@dataclass(frozen=True)
class DeviceSettings:
    """What runs best where: bf16 (autocast) on a GPU or CPU that has it natively, 1.6x faster
    than fp32 for MiniLM on a 2-core AVX512-BF16 CPU; fp32 elsewhere, as a CPU without it
    emulates bf16 many times slower. No gradient checkpointing on CPU (TRL's default)."""

    device: str
    bf16: bool
    fp16: bool
    batch_size: int

    @property
    def dtype_name(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (elsewhere it emulates it, slowly)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a private check: absent means no
        return False


def device_settings(precision: str, batch_size: int | None) -> DeviceSettings:
    import torch

    cuda = torch.cuda.is_available()
    native_bf16 = torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()
    if precision == "auto":
        precision = "bf16" if native_bf16 else "fp32"
    if precision == "fp16" and not cuda:
        raise ConfigError(
            "reward.precision is 'fp16' but no CUDA GPU is visible; use 'auto', 'bf16' or 'fp32'"
        )
    if precision == "bf16" and not cuda and not native_bf16:
        raise ConfigError(
            "reward.precision is 'bf16' but there is no CUDA GPU and this CPU has no native "
            "bf16 (AVX512-BF16 or AMX), where bf16 is many times slower; use 'auto' or 'fp32'"
        )
    return DeviceSettings(
        device="cuda" if cuda else "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        batch_size=batch_size or (32 if cuda else 16),
    )


def load_for_training(name: str, start: Path | None = None) -> tuple[Any, Any, str]:
    """(model with a fresh 1-output head, tokenizer, resolved path of the backbone `name`);
    with `start`, the reward model saved there (trained on `name`) instead, head included."""
    path = resolve_backbone(name)
    if start is not None:
        return (*load_reward_model(start), path)
    return (*load_reward_model(path, new_head=True), path)


def load_reward_model(path: str | Path, new_head: bool = False) -> tuple[Any, Any]:
    """A sequence-classification model with one output (the reward) and its tokenizer, with
    a pad token set: decoders read the reward at the last non-pad token."""
    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as transformers_logging
    except ImportError as e:
        raise ConfigError(f"reward models need transformers: {_INSTALL_HINT}") from e
    transformers_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        # "newly initialized score weights" is expected with a new head, not a warning here
        with transformers_errors_only(new_head):
            model = AutoModelForSequenceClassification.from_pretrained(
                str(path), num_labels=1, dtype=torch.float32
            )
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load {str(path)!r} as a reward model ({e}). Use 'all-MiniLM-L6-v2', "
            f"'{PACKAGED_MODEL}', or a folder/hub id of a model with a sequence-classification "
            "head"
        ) from e
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        # Decoders read the reward at the last non-pad token. With pad == eos (SmolLM2 ships
        # so) the closing end-of-turn token would count as padding; unk pads instead when
        # there is one.
        spare = tokenizer.unk_token
        tokenizer.pad_token = (
            spare
            if spare and spare != tokenizer.eos_token
            else (tokenizer.pad_token or tokenizer.eos_token)
        )
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def head_module_names(model: Any) -> list[str]:
    """The reward head's module names, which LoRA must train in full (`modules_to_save`):
    'score' on decoders, 'classifier' (and BERT's 'pooler') on encoders."""
    names = [n for n in ("score", "classifier") if hasattr(model, n)]
    if not names:
        raise ConfigError(
            f"{type(model).__name__} has no 'score' or 'classifier' head; LoRA cannot tell "
            "which module to train in full. Turn reward.lora off or use another backbone"
        )
    return names
