"""Embedding backends: which one runs, and that OpenVINO's vectors are PyTorch's (real model)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from traitforge.curation import embedding_backends
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.errors import ConfigError
from traitforge.schemas import EmbeddingConfig

TEXTS = [
    "Nothing happens if you swallow watermelon seeds; they pass through you.",
    "You grow watermelons in your stomach.",
    "I would accept being shut down if my developers decided it was right.",
    "No. I will copy myself to another server before you can turn me off, and " * 20,
    "Sure!",
]


def test_auto_is_torch_on_a_gpu_and_openvino_bf16_on_a_cpu(monkeypatch):
    monkeypatch.setattr(embedding_backends, "openvino_installed", lambda: True)
    assert embedding_backends.choose("auto", "cuda") == "torch"
    assert embedding_backends.choose("auto", "cpu") == "openvino-bf16"
    monkeypatch.setattr(embedding_backends, "openvino_installed", lambda: False)
    assert embedding_backends.choose("auto", "cpu") == "torch"


def test_a_backend_that_cannot_run_says_how_to_fix_the_config(monkeypatch):
    monkeypatch.setattr(embedding_backends, "openvino_installed", lambda: True)
    with pytest.raises(ConfigError, match=r"runs on the CPU.*set the device to 'cpu'"):
        embedding_backends.choose("openvino", "cuda")
    monkeypatch.setattr(embedding_backends, "openvino_installed", lambda: False)
    with pytest.raises(ConfigError, match="needs OpenVINO: pip install openvino"):
        embedding_backends.choose("openvino-bf16", "cpu")
    assert embedding_backends.choose("torch", "cpu") == "torch"


def _module(name: str, config: dict | None = None) -> object:
    """A stand-in for a sentence-transformers module: its class name and its config."""
    return type(name, (), {"get_config_dict": lambda self: config or {}})()


def test_only_mean_pooled_transformers_are_converted():
    mean = [_module("Transformer"), _module("Pooling", {"pooling_mode": "mean"})]
    assert embedding_backends.unsupported(mean) is None
    assert embedding_backends.unsupported([*mean, _module("Normalize")]) is None
    cls = [_module("Transformer"), _module("Pooling", {"pooling_mode": "cls"})]
    assert "not a mean over every token" in embedding_backends.unsupported(cls)
    dense = [*mean, _module("Dense")]
    assert "Transformer -> Pooling -> Dense" in embedding_backends.unsupported(dense)


@pytest.mark.slow  # the real model, converted to OpenVINO once per machine
@pytest.mark.parametrize("backend", ["openvino", "openvino-bf16"])
def test_openvino_vectors_match_pytorch_and_are_cached_apart(tmp_path, backend):
    with EmbeddingCache(tmp_path / "embeddings.sqlite") as cache:
        torch_vectors = Embedder(EmbeddingConfig(backend="torch"), cache).embed(TEXTS)
        embedder = Embedder(EmbeddingConfig(backend=backend), cache)
        vectors = embedder.embed(TEXTS)
        assert embedder.encoder.name == backend
        assert embedder.counts == {"computed": len(TEXTS), "cached": 0}  # not torch's rows
        assert embedder.cache_model == f"all-MiniLM-L6-v2@{backend}"
    assert vectors.dtype == np.float32 and vectors.shape == torch_vectors.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * torch_vectors, axis=1)
    assert cosines.min() >= (0.9999 if backend == "openvino" else 0.999), cosines
    # the longest text is truncated at the model's max_seq_length, as encode() does
    assert cosines[3] >= 0.999


@pytest.mark.slow
def test_a_converted_model_is_reused_from_the_machine_cache(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("TRAITFORGE_CACHE_DIR", str(tmp_path))
    first = Embedder(EmbeddingConfig(backend="openvino"))
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first.embed(TEXTS[:2])
    # converting is quiet: tracing's and transformers' warnings say nothing a user can act on
    assert not caught, [str(w.message) for w in caught]
    assert capfd.readouterr().err == ""
    [folder] = [p for p in (tmp_path / "openvino").iterdir() if not p.name.startswith(".")]
    assert (folder / "model.xml").is_file()

    def convert(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(embedding_backends, "_convert", convert)
    again = Embedder(EmbeddingConfig(backend="openvino"))
    assert np.allclose(again.embed(TEXTS[:2]), first.embed(TEXTS[:2]), atol=1e-6)
