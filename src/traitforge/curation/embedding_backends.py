"""Where embedding vectors are computed: sentence-transformers on PyTorch, or the same model
exported once to OpenVINO, which runs it 2-4x faster on a CPU (bench/embeddings.py).

sentence-transformers' own ONNX and OpenVINO backends go through optimum, which does not
import beside transformers 5.24. So the transformer is converted here with
`openvino.convert_model` (cached per machine), and the rest of the pipeline, which for the
supported models is mean pooling and normalization, is done in numpy, as
sentence-transformers does it. Vectors match the PyTorch ones to a cosine of 0.9999 (f32 is
closer still); the embedding cache keeps each backend's vectors apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from traitforge.errors import ConfigError
from traitforge.machine_cache import cache_dir, cache_lock, staged_folder
from traitforge.quiet import transformers_errors_only

TORCH = "torch"
# name -> OpenVINO's INFERENCE_PRECISION_HINT. bf16 runs in bf16 only on CPUs with native
# support (AVX512-BF16 or AMX); elsewhere OpenVINO computes in f32.
OPENVINO_PRECISIONS = {"openvino": "f32", "openvino-bf16": "bf16"}
# What 'auto' picks on a CPU: the fastest backend at a min cosine >= 0.99 to PyTorch on the
# bundled texts (bench/embeddings.py; docs/scaling.md has the numbers).
AUTO_CPU = "openvino-bf16"


class Encoder(Protocol):
    name: str

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 rows, one per text."""
        ...


class TorchEncoder:
    """The model's own `encode()` (on the GPU when the model is there)."""

    name = TORCH

    def __init__(self, model: Any, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)


class OpenVinoEncoder:
    """The model's transformer compiled by OpenVINO for the CPU; the model's tokenizer, its
    truncation length, mean pooling and normalization as sentence-transformers applies them."""

    def __init__(self, model: Any, name: str, batch_size: int) -> None:
        import openvino

        self.name = name
        self.model = model
        self.batch_size = batch_size
        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length)
        hint = OPENVINO_PRECISIONS[name]
        self.compiled = openvino.Core().compile_model(
            str(exported_model(model)), "CPU", {"INFERENCE_PRECISION_HINT": hint}
        )

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.model.get_embedding_dimension()), dtype=np.float32)
        # Similar lengths share a batch (less padding), as sentence-transformers orders them.
        order = sorted(range(len(texts)), key=lambda i: (-len(texts[i]), i))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            inputs = self.tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            hidden = self.compiled(dict(inputs))[0]
            mask = inputs["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.clip(norms, 1e-12, None)
        return out


def unsupported(model: Any) -> str | None:
    """Why the OpenVINO path cannot reproduce this model's pipeline, or None when it can:
    a transformer, then mean pooling over every token, then (optionally) normalization."""
    names = [type(m).__name__ for m in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return f"its modules are {' -> '.join(names)}, not Transformer -> Pooling (-> Normalize)"
    pooling = model[1].get_config_dict()
    if pooling.get("pooling_mode", "mean") != "mean" or not pooling.get("include_prompt", True):
        return f"its pooling is {pooling}, not a mean over every token"
    return None


def openvino_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def choose(requested: str, device: str) -> str:
    """The backend to run: `requested` itself, or for 'auto' PyTorch on a GPU and the
    fastest exact-enough one on a CPU when OpenVINO is installed."""
    if requested != "auto":
        if requested != TORCH and device != "cpu":
            raise ConfigError(
                f"curation.embedding.backend {requested!r} runs on the CPU, but "
                f"curation.embedding.device is {device!r}: set the device to 'cpu', or the "
                "backend to 'torch' or 'auto'"
            )
        if requested != TORCH and not openvino_installed():
            raise ConfigError(
                f"curation.embedding.backend {requested!r} needs OpenVINO: "
                "pip install openvino==2026.4.1, or set the backend to 'torch'"
            )
        return requested
    return AUTO_CPU if device == "cpu" and openvino_installed() else TORCH


def build(requested: str, model: Any, batch_size: int) -> Encoder:
    """The encoder for the loaded `model`. 'auto' quietly keeps PyTorch for a model the
    OpenVINO path does not support; a backend asked for by name says why it cannot run."""
    device = "cuda" if str(model.device).startswith("cuda") else "cpu"
    name = choose(requested, device)
    if name == TORCH:
        return TorchEncoder(model, batch_size)
    reason = unsupported(model)
    if reason is not None:
        if requested == "auto":
            return TorchEncoder(model, batch_size)
        raise ConfigError(
            f"curation.embedding.backend {requested!r} cannot run this embedding model: "
            f"{reason}. Set the backend to 'torch' or 'auto'"
        )
    return OpenVinoEncoder(model, name, batch_size)


def exported_model(model: Any) -> Path:
    """The model's transformer as OpenVINO IR in the machine cache, converted on first use.
    The folder name hashes the model's files (names, sizes) and the converting versions."""
    import openvino
    import torch
    import transformers

    source = Path(model[0].auto_model.name_or_path)
    digest = hashlib.sha256()
    for part in (str(source.resolve()), openvino.__version__, torch.__version__):
        digest.update(part.encode())
    digest.update(transformers.__version__.encode())
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            digest.update(f"{path.relative_to(source)}:{path.stat().st_size}".encode())
    final = cache_dir() / "openvino" / f"{source.name}-{digest.hexdigest()[:16]}"
    with cache_lock(final):
        if not (final / "model.xml").is_file():
            with staged_folder(final) as staging:
                _convert(model, staging / "model.xml")
    return final / "model.xml"


def _convert(model: Any, target: Path) -> None:
    import warnings

    import openvino
    import torch

    example = dict(model.tokenizer(["an example", "two"], padding=True, return_tensors="pt"))
    # Tracing warns about Python branches on shapes (padding, causal masks) that an encoder
    # takes the same way for every input, and transformers about deprecations: nothing a
    # user can act on. bench/embeddings.py checks the converted model's vectors.
    with torch.no_grad(), warnings.catch_warnings(), transformers_errors_only():
        warnings.simplefilter("ignore")
        converted = openvino.convert_model(model[0].auto_model, example_input=example)
    openvino.save_model(converted, str(target), compress_to_fp16=False)
