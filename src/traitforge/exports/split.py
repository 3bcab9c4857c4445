"""Train/test split by prompt: a prompt's pairs all land in one split."""

from __future__ import annotations

from traitforge.schemas import content_hash

_HASH_SPACE = 16**16


def split_of(prompt_id: str, seed: int, test_fraction: float) -> str:
    """'test' or 'train', from a seeded hash of the prompt id.

    Hashing (not shuffling) keeps each prompt's split fixed as the workspace grows, so a
    prompt tested on in one round is never trained on in the next.
    """
    position = int(content_hash("split", seed, prompt_id, length=16), 16) / _HASH_SPACE
    return "test" if position < test_fraction else "train"
