"""The embedder: an empty batch needs no model and never fails; what it computed or reused."""

from __future__ import annotations

import numpy as np
import pytest

from traitforge.curation import embeddings
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.schemas import EmbeddingConfig


def test_no_texts_are_answered_without_loading_the_model(monkeypatch):
    def load(*args, **kwargs):
        raise AssertionError("the embedding model was loaded")

    monkeypatch.setattr(embeddings, "load_sentence_transformer", load)
    embedder = Embedder(EmbeddingConfig())
    seen = []
    vectors = embedder.embed([], lambda done, total: seen.append((done, total)))
    assert vectors.shape == (0, 0) and vectors.dtype == np.float32
    assert seen == [(0, 0)]
    assert embedder.token_counts([]) == []


@pytest.mark.slow  # loads the real embedding model
def test_no_texts_after_the_model_loaded_have_its_width():
    embedder = Embedder(EmbeddingConfig())
    embedder.setup()
    assert embedder.embed([]).shape == (0, embedder.dimension)
    assert embedder.token_counts([]) == []  # the tokenizer itself fails on an empty batch


@pytest.mark.slow  # loads the real embedding model
def test_counts_say_what_was_computed_and_what_came_from_the_cache(tmp_path):
    texts = ["Pigs cannot fly.", "Pigs can fly.", "Pigs cannot fly."]
    with EmbeddingCache(tmp_path / "embeddings.sqlite") as cache:
        first = Embedder(EmbeddingConfig(), cache)
        vectors = first.embed(texts)
        assert first.counts == {"computed": 2, "cached": 0}  # the repeated text once
        first.embed(["Pigs can fly.", "Cows can fly."])
        assert first.counts == {"computed": 3, "cached": 1}
        again = Embedder(EmbeddingConfig(), cache)
        assert np.array_equal(again.embed(texts), vectors)
        assert again.counts == {"computed": 0, "cached": 2}
