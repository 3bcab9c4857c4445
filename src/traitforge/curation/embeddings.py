"""Embeddings of prompts and responses, with a persistent cache keyed by (model, text hash)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from traitforge.curation import embedding_backends
from traitforge.curation.models import load_sentence_transformer, pick_device
from traitforge.schemas import EmbeddingConfig

Progress = Callable[[int, int], object]  # (texts embedded so far, texts to embed)


def text_key(text: str) -> str:
    # A plain digest of the UTF-8 bytes: this runs once per text on every (cached) run.
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class EmbeddingCache:
    """Vectors in one SQLite file in the workspace. A re-run embeds nothing twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, text_hash TEXT NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, text_hash))"
        )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):  # SQLite caps bound parameters per query
            chunk = unique[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = (
                f"SELECT text_hash, vector FROM vectors WHERE model=? AND text_hash IN ({marks})"
            )
            for key, blob in self._db.execute(query, (model, *chunk)):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        rows = [(model, k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in vectors.items()]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


class Embedder:
    """Embeds texts with a sentence-transformers model; normalized float32 vectors.

    Identical texts are embedded once, cached vectors are reused, and the rest is encoded in
    batches (on the GPU when there is one) and written to the cache chunk by chunk, so a
    killed run keeps what it finished. `counts` adds up, over every call, the distinct texts
    the model "computed" and those found "cached".
    """

    CHUNK = 2048  # texts encoded between cache writes

    def __init__(self, config: EmbeddingConfig, cache: EmbeddingCache | None = None) -> None:
        self.config = config
        self.cache = cache
        self.counts: Counter[str] = Counter({"computed": 0, "cached": 0})
        self._model: Any = None
        self._encoder: embedding_backends.Encoder | None = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_sentence_transformer(self.config.model, self.config.device)

    @property
    def encoder(self) -> embedding_backends.Encoder:
        """What computes the vectors (curation.embedding.backend), built on first use."""
        if self._encoder is None:
            self._encoder = embedding_backends.build(
                self.config.backend, self.model, self.batch_size
            )
        return self._encoder

    @property
    def cache_model(self) -> str:
        """The cache's key for this model's vectors: backends differ in the last digits, so
        each keeps its own (PyTorch's keep the model's name, as before backends existed)."""
        if self._encoder is not None:
            name = self._encoder.name
        else:  # what the encoder will be, without loading a model for a cached run
            name = embedding_backends.choose(self.config.backend, pick_device(self.config.device))
        model = self.config.model
        return model if name == embedding_backends.TORCH else f"{model}@{name}"

    @property
    def model(self) -> Any:
        self.setup()
        return self._model

    @property
    def batch_size(self) -> int:
        if self.config.batch_size is not None:
            return self.config.batch_size
        return 128 if str(self.model.device).startswith("cuda") else 16

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text under the embedding model's tokenizer (no truncation)."""
        if not texts:  # the tokenizer fails on an empty batch; nothing to count needs no model
            return []
        tokenizer = self.model.tokenizer
        # verbose=False: over-long texts are expected here (they are what gets flagged)
        encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)[
            "input_ids"
        ]
        return [len(ids) for ids in encoded]

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """One row per text. No texts: an empty array, and the model is not loaded for it
        (its width is the model's dimension once the model is loaded, else 0)."""
        if not texts:
            if progress:
                progress(0, 0)
            width = self.dimension if self._model is not None else 0
            return np.zeros((0, width), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        vectors = self.cache.get(self.cache_model, keys) if self.cache else {}
        if self.cache and len(vectors) < len(set(keys)) and self._encoder is None:
            predicted = self.cache_model
            self.encoder  # noqa: B018 (built now: 'auto' may fall back to PyTorch for this model)
            if self.cache_model != predicted:
                vectors = self.cache.get(self.cache_model, keys)
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in vectors}
        todo = list(missing.items())
        self.counts.update(computed=len(todo), cached=len(vectors))
        if progress:
            progress(0, len(todo))
        if todo:
            vectors.update(self.encode_missing(todo, progress))
        out = np.empty((len(keys), len(next(iter(vectors.values())))), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = vectors[key]
        return out

    def encode_missing(
        self, todo: Sequence[tuple[str, str]], progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Vectors for (key, text) pairs the cache lacks, written to the cache chunk by chunk.
        Another engine (`ray_engine.RayEmbedder`) replaces only this part."""
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(todo), self.CHUNK):
            chunk = todo[start : start + self.CHUNK]
            encoded = self.encode([t for _, t in chunk])
            fresh = {k: encoded[i] for i, (k, _) in enumerate(chunk)}
            if self.cache:
                self.cache.put(self.cache_model, fresh)
            found.update(fresh)
            if progress:
                progress(min(start + len(chunk), len(todo)), len(todo))
        return found

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 rows for `texts`, no cache involved."""
        return self.encoder.encode(texts)
