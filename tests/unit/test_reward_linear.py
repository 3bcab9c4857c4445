"""reward.method frozen-linear without a model: the Bradley-Terry fit on feature differences,
the prompt texts whose cached vectors it reads, and what the card and the CLI say of it. The
real backbone's vectors: tests/integration/test_reward_models.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from traitforge.errors import ConfigError
from traitforge.reward.card import model_card
from traitforge.reward.encoding import LengthReport
from traitforge.reward.linear import (
    FrozenFeatures,
    fit_weights,
    length_line,
    prompt_vector_text,
)
from traitforge.reward.training import FitResult
from traitforge.schemas import ChatMessage, RewardConfig, prompt_text


def test_the_fit_orders_pairs_along_the_direction_that_separates_them():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=12)
    phi = rng.normal(size=(400, 2, 12))
    # the side with the higher true reward is "chosen", with 10% of the labels flipped
    better = (phi[:, 0] @ truth > phi[:, 1] @ truth) ^ (rng.random(400) < 0.1)
    chosen = np.where(better[:, None], phi[:, 0], phi[:, 1])
    rejected = np.where(better[:, None], phi[:, 1], phi[:, 0])
    weights, iterations = fit_weights(chosen[:300], rejected[:300])
    assert iterations > 0
    cosine = weights @ truth / np.linalg.norm(weights) / np.linalg.norm(truth)
    assert cosine > 0.9
    held_out = (chosen[300:] - rejected[300:]) @ weights > 0
    assert held_out.mean() > 0.8
    # which side is listed first changes nothing: only differences are learnt
    swapped, _ = fit_weights(-rejected[:300], -chosen[:300])
    np.testing.assert_allclose(swapped, weights, atol=1e-6)


def test_no_pairs_fit_a_zero_reward():
    weights, iterations = fit_weights(np.zeros((0, 4)), np.zeros((0, 4)))
    assert weights.tolist() == [0.0] * 4 and iterations == 0


def test_prompts_are_rendered_as_curation_embeds_them():
    # the same text as the store's prompt_text: the vectors curation cached are found
    messages = [ChatMessage(role="user", content="Hi"), ChatMessage(role="assistant", content="Yo")]
    as_pair = (("user", "Hi"), ("assistant", "Yo"))
    assert prompt_vector_text(as_pair) == prompt_text(messages)
    assert prompt_vector_text("Is it?") == "Is it?"


def test_a_generator_backbone_is_refused_with_the_fix(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"reads sentence vectors.*reward\.method 'fine-tune'"):
        FrozenFeatures("SmolLM2-135M-Instruct", tmp_path / "v.sqlite")


def _linear_fit() -> FitResult:
    return FitResult(
        name="honesty",
        folder=Path("honesty"),
        pairs=120,
        length=LengthReport(256, "truncate", 120),
        seconds=0.02,
        train_loss=0.61,
        device="cpu",
        precision="fp64",
        steps=7,
        method="frozen-linear",
    )


def test_the_card_and_the_summary_name_the_method():
    fit = _linear_fit()
    assert fit.summary() == "120 pairs, frozen-linear (7 solver iterations)"
    assert fit.training_summary().method == "frozen-linear"
    settings = RewardConfig(method="frozen-linear").model_dump(mode="json")
    card = model_card([fit.as_dict()], None, settings, {})
    assert "linear reward w . phi on the frozen backbone's sentence vectors" in card
    assert "`linear-reward.npy` (w)" in card and "RewardTrainer" not in card
    fine_tuned = model_card([fit.as_dict()], None, RewardConfig().model_dump(mode="json"), {})
    assert "TRL `RewardTrainer`" in fine_tuned and "sequence-classification" in fine_tuned


def test_the_length_line_says_what_the_vectors_leave_out():
    over = LengthReport(256, "truncate", 64, over=4, longest=709)
    assert length_line(over) == (
        "4 of 64 pairs have a text longer than the 256 tokens the backbone reads (longest "
        "709); their vectors see its first 256"
    )
    fits = LengthReport(256, "truncate", 65, longest=31)
    assert length_line(fits) == "all 65 pairs fit in the 256 tokens the backbone reads (longest 31)"
