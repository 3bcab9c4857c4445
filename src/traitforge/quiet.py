"""Quieting a library around one call whose warnings tell a user nothing they can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def transformers_errors_only(enabled: bool = True) -> Iterator[None]:
    """transformers' logging at ERROR inside the block (when `enabled`), as it was after."""
    if not enabled:
        yield
        return
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
