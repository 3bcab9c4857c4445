"""The embedder on an empty batch: nothing to embed or count needs no model, and never fails."""

from __future__ import annotations

import numpy as np
import pytest

from traitforge.curation import embeddings
from traitforge.curation.embeddings import Embedder
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
