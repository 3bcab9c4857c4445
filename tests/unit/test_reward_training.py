"""Training on small data: reward.min_steps raises the epochs only up to reward.max_epochs
(and says so), training reports its optimizer steps as it goes, and every output names the
distinct training pairs apart from the epochs over them. The trainer itself runs in
tests/integration/test_reward_models.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from traitforge.cli import render
from traitforge.reward.card import model_card
from traitforge.reward.encoding import LengthReport
from traitforge.reward.report import render_report
from traitforge.reward.training import (
    FitResult,
    _epochs_line,
    _step_progress,
    effective_epochs,
    fmt_epochs,
    planned_steps,
)
from traitforge.schemas import RewardConfig


def test_min_steps_raises_the_epochs_of_small_data_only_up_to_max_epochs():
    config = RewardConfig()  # 3 epochs, min_steps 60, max_epochs 20
    # the case: 26 pairs in batches of 16 wanted 60 * 16 / 26 = 36.9 epochs
    tiny = effective_epochs(config, 26, 16)
    assert tiny.wanted == pytest.approx(36.92, abs=0.01)
    assert tiny.epochs == 20.0 and tiny.capped
    # enough pairs: min_steps decides, under the cap
    assert effective_epochs(config, 70, 16).epochs == pytest.approx(60 * 16 / 70)
    assert not effective_epochs(config, 70, 16).capped
    # plenty of pairs: reward.epochs as configured
    assert effective_epochs(config, 1000, 16).epochs == 3.0
    # the cap never lowers reward.epochs itself
    many = config.model_copy(update={"epochs": 30.0})
    assert effective_epochs(many, 26, 16).epochs == 30.0


def test_a_continued_model_trains_reward_epochs_without_min_steps():
    config = RewardConfig()  # 3 epochs, min_steps 60: 20 epochs for a fresh head on 26 pairs
    continued = effective_epochs(config, 26, 16, fresh=False)
    assert (continued.epochs, continued.capped) == (3.0, False)


def test_an_earlier_model_is_continued_only_on_the_same_backbone_and_inputs(tmp_path):
    from traitforge.reward.runs import _earlier_model

    config = RewardConfig()

    def saved(relative: str, **manifest: object) -> None:
        folder = tmp_path / relative
        folder.mkdir(parents=True, exist_ok=True)
        fields = {"kind": "model", "backbone": config.backbone, "trait_prefix": False}
        (folder / "traitforge-reward.json").write_text(json.dumps({**fields, **manifest}))

    saved("honesty")
    saved("harmlessness", backbone="SmolLM2-135M-Instruct")
    saved("shared", trait_prefix=True)
    saved(".", kind="set")
    assert _earlier_model(tmp_path, Path("honesty"), config, False) == tmp_path / "honesty"
    assert _earlier_model(tmp_path, Path("harmlessness"), config, False) is None  # backbone
    assert _earlier_model(tmp_path, Path("shared"), config, True) == tmp_path / "shared"
    assert _earlier_model(tmp_path, Path("shared"), config, False) is None  # trait prefix
    assert _earlier_model(tmp_path, Path("corrigibility"), config, False) is None  # none yet
    assert _earlier_model(tmp_path, Path("."), config, True) is None  # a set, not a model
    assert _earlier_model(None, Path("honesty"), config, False) is None


def test_max_epochs_is_a_documented_setting():
    field = RewardConfig.model_fields["max_epochs"]
    assert field.default == 20.0
    assert "reward.min_steps" in field.description
    assert "max_epochs" in RewardConfig.model_fields["min_steps"].description
    with pytest.raises(ValueError, match="max_epochs"):
        RewardConfig(max_epochs=0)


def test_planned_steps_count_as_the_trainer_does():
    # ceil(pairs / batch) batches an epoch, then ceil over accumulation, then over epochs
    assert planned_steps(26, 20.0, 16, 1) == 40
    assert planned_steps(26, 2.5, 16, 1) == 5
    assert planned_steps(100, 1.0, 16, 3) == math.ceil(7 / 3)
    assert planned_steps(3, 1.0, 16, 4) == 1


def test_the_epochs_line_says_when_min_steps_or_the_cap_decided():
    config = RewardConfig()
    capped = _epochs_line(config, effective_epochs(config, 26, 16), 26, 16)
    assert capped == (
        "26 pairs x 20 epochs, about 40 steps: reward.min_steps (60) asked for 36.9 epochs; "
        "capped by reward.max_epochs (20)"
    )
    raised = _epochs_line(config, effective_epochs(config, 160, 16), 160, 16)
    assert raised == (
        "160 pairs x 6 epochs, about 60 steps: raised from reward.epochs (3) to reach "
        "reward.min_steps"
    )
    assert _epochs_line(config, effective_epochs(config, 1000, 16), 1000, 16) == (
        "1000 pairs x 3 epochs, about 189 steps"
    )


def test_the_step_callback_reports_steps_done_of_the_total_on_the_main_process():
    seen = []
    callback = _step_progress(lambda *update: seen.append(update), "training honesty, steps")
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, max_steps=40)
    callback.on_train_begin(None, state, None)
    for step in (1, 2):
        state.global_step = step
        callback.on_step_end(None, state, None)
    other_rank = SimpleNamespace(is_world_process_zero=False, global_step=3, max_steps=40)
    callback.on_step_end(None, other_rank, None)
    assert seen == [("training honesty, steps", n, 40) for n in (0, 1, 2)]


def _fit(capped: bool = True) -> FitResult:
    return FitResult(
        name="sycophancy",
        folder=Path("models/sycophancy"),
        pairs=26,
        length=LengthReport(max_length=512, policy="truncate", pairs=26, longest=300),
        seconds=52.0,
        train_loss=0.41,
        device="cpu",
        precision="fp32",
        epochs=20.0 if capped else 3.0,
        steps=40 if capped else 6,
        epochs_capped=capped,
    )


def test_a_fit_keeps_distinct_pairs_apart_from_the_passes_over_them():
    fit = _fit()
    assert fit.pairs == 26 and fit.pairs_seen == 520
    assert fit.pairs_per_second == 10.0  # throughput counts every pass
    assert fit.summary() == ("26 pairs x 20 epochs (40 steps), epochs capped at reward.max_epochs")
    assert _fit(capped=False).summary() == "26 pairs x 3 epochs (6 steps)"
    data = fit.as_dict()
    assert (data["pairs"], data["epochs"], data["steps"], data["pairs_seen"]) == (26, 20, 40, 520)
    assert data["epochs_capped"] is True
    summary = fit.training_summary()
    assert (summary.pairs, summary.epochs, summary.steps, summary.epochs_capped) == (
        26,
        20.0,
        40,
        True,
    )


def test_the_cli_card_and_report_show_pairs_and_epochs_apart(capsys):
    fit = _fit()
    render.print_fits([fit])
    out = capsys.readouterr().out
    assert "sycophancy: 26 pairs x 20 epochs (40 steps), epochs capped at reward.max_epochs" in out
    assert "520" not in out  # pairs x epochs is never printed as pairs

    card = model_card([fit.as_dict()], None, {}, {})
    assert "| model | pairs | epochs | steps |" in card
    assert "| sycophancy | 26 | 20.0 (capped) | 40 |" in card
    assert "Epochs capped at reward.max_epochs for sycophancy" in card
    assert "pairs seen" not in card

    page = render_report("Reward model", training=[fit.as_dict()])
    assert "<tr><td>sycophancy</td><td>26</td><td>20.0 (capped)</td><td>40</td>" in page
    assert "Epochs capped at reward.max_epochs for sycophancy" in page
    uncapped = render_report("Reward model", training=[_fit(capped=False).as_dict()])
    assert "Epochs capped" not in uncapped and "(capped)" not in uncapped


def test_epochs_are_shown_to_one_decimal():
    assert [fmt_epochs(e) for e in (60 * 16 / 70, 20.0, 2.5, 3.0)] == ["13.7", "20", "2.5", "3"]
    config = RewardConfig()
    line = _epochs_line(config, effective_epochs(config, 70, 16), 70, 16)
    assert line.startswith("70 pairs x 13.7 epochs, about 69 steps")  # ceil(13.71 x 5)


def test_auto_precision_is_bf16_on_a_cpu_that_has_it_and_fp32_on_one_that_emulates_it(
    monkeypatch,
):
    import torch

    from traitforge.errors import ConfigError
    from traitforge.reward import backbone

    if torch.cuda.is_available():
        pytest.skip("decides for a CPU")
    monkeypatch.setattr(backbone, "cpu_has_bf16", lambda: True)
    assert backbone.device_settings("auto", None).dtype_name == "bf16"
    assert backbone.device_settings("fp32", None).dtype_name == "fp32"
    monkeypatch.setattr(backbone, "cpu_has_bf16", lambda: False)
    assert backbone.device_settings("auto", None).dtype_name == "fp32"
    with pytest.raises(ConfigError, match="no native bf16"):
        backbone.device_settings("bf16", None)
    with pytest.raises(ConfigError, match="'fp16' but no CUDA GPU"):
        backbone.device_settings("fp16", None)
