from __future__ import annotations

import base64
import html
import re

import numpy as np

from traitforge.reward.evaluation import evaluate, generalization_matrix
from traitforge.reward.pairs import RewardPair
from traitforge.reward.report import (
    STYLE_HARD_RATIO,
    render_report,
    shortcut_verdicts,
    write_report,
)
from traitforge.schemas import EvaluationResult, MatrixResult
from traitforge.schemas.results import StyleHard

SECTIONS = ("accuracy", "shortcuts", "calibration", "matrix", "training", "provenance")


def _evaluation(
    accuracy: float = 0.85,
    shorter: float | None = 0.82,
    spearman: float = 0.05,
    flip_rate: float = 0.02,
    baseline: float = 0.55,
    traits: tuple[str, ...] = ("helpful", "concise"),
) -> EvaluationResult:
    fmt = {
        "mean_shift": 0.01,
        "mean_abs_shift": 0.04,
        "flip_rate": flip_rate,
        "accuracy_after": 0.84,
    }
    evaluation = {
        "pairs": 120,
        "accuracy": accuracy,
        "accuracy_ci": [0.78, 0.91],
        "per_trait": {
            t: {"pairs": 60, "accuracy": 0.8, "accuracy_ci": [0.7, 0.9], "length_baseline": 0.5}
            for t in traits
        },
        "shortcuts": {
            "length_baseline_accuracy": baseline,
            "chosen_shorter_pairs": 40,
            "accuracy_chosen_shorter": shorter,
            "accuracy_chosen_shorter_ci": None if shorter is None else [0.7, 0.9],
            "length_reward_spearman": spearman,
            "format": {"whitespace": fmt, "preamble": dict(fmt)},
        },
        "calibration": {
            "ece": 0.0421,
            "brier": 0.1234,
            "log_loss": 0.4,
            "mean_probability": 0.7,
            "bins": [
                {"bin": 2, "count": 30, "predicted": 0.25, "observed": 0.2},
                {"bin": 7, "count": 30, "predicted": 0.75, "observed": 0.8},
            ],
        },
        "rewards": {"mean": 0.1, "std": 1.2, "mean_margin": 0.9},
        "confidence_level": 0.95,
    }
    return EvaluationResult.model_validate(evaluation)


def _matrix(traits: tuple[str, ...] = ("concise", "helpful")) -> MatrixResult:
    cells = {
        m: {
            t: {"pairs": 10, "accuracy": 0.9 if m == t else 0.6, "accuracy_ci": None}
            for t in traits
        }
        for m in traits
    }
    return MatrixResult(models=list(traits), traits=list(traits), cells=cells)


def _training() -> list[dict]:
    length = {
        "max_length": 512,
        "policy": "truncate",
        "pairs": 120,
        "over": 7,
        "truncated": 7,
        "dropped": 0,
        "longest": 901,
        "over_by_trait": {"helpful": 7},
    }
    return [
        {
            "name": "helpful",
            "folder": "helpful",
            "pairs": 120,
            "length": length,
            "seconds": 12.5,
            "pairs_per_second": 9.6,
            "train_loss": 0.3123,
            "device": "cpu",
            "precision": "fp32",
        }
    ]


def _full(**evaluation_overrides) -> str:
    return render_report(
        "Reward report",
        evaluation=_evaluation(**evaluation_overrides),
        matrix=_matrix(),
        training=_training(),
        provenance={"dataset": "exports/v1", "config": {"max_length": 512}},
    )


def section_of(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor!r}"
    return match.group(1)


def test_full_report_has_every_section_with_formatted_numbers():
    page = _full()
    assert page.startswith("<!DOCTYPE html>")
    for anchor in SECTIONS:
        section_of(page, anchor)
    headline = section_of(page, "accuracy")
    assert "85.0%" in headline and "[78.0%, 91.0%]" in headline and "95% CI" in headline
    assert "55.0%" in headline  # the length baseline sits next to the headline
    shortcuts = section_of(page, "shortcuts")
    assert "82.0% [70.0%, 90.0%]" in shortcuts and "n = 40" in shortcuts and "+0.050" in shortcuts
    assert "whitespace" in shortcuts and "preamble" in shortcuts
    calibration = section_of(page, "calibration")
    assert "0.042" in calibration and "0.123" in calibration
    training = section_of(page, "training")
    assert "7 of 120" in training and "901" in training and "helpful: 7" in training
    assert '"max_length": 512' in html.unescape(section_of(page, "provenance"))


def test_sections_appear_only_for_given_inputs():
    empty = render_report("Empty")
    assert "<section" not in empty and "Nothing to report" in empty
    only_training = render_report("T", training=_training())
    assert 'id="training"' in only_training
    assert not any(f'id="{a}"' in only_training for a in SECTIONS if a != "training")
    only_eval = render_report("E", evaluation=_evaluation())
    assert all(f'id="{a}"' in only_eval for a in ("accuracy", "shortcuts", "calibration"))
    assert 'id="matrix"' not in only_eval and 'id="training"' not in only_eval


def test_verdicts_warn_on_a_length_biased_model_and_not_on_a_clean_one():
    clean = _evaluation()
    assert [level for level, _ in shortcut_verdicts(clean)] == ["ok"] * 5
    assert 'class="verdict warn"' not in render_report("clean", evaluation=clean)

    biased = _evaluation(accuracy=0.8, shorter=0.4, spearman=0.62, flip_rate=0.25, baseline=0.78)
    verdicts = shortcut_verdicts(biased)
    assert [level for level, _ in verdicts] == ["warn"] * 5
    assert any("drops to 40.0%" in text for _, text in verdicts)
    page = render_report("biased", evaluation=biased)
    assert section_of(page, "shortcuts").count('class="verdict warn"') == 5


def test_style_hard_verdict_warns_below_four_fifths_of_the_normal_accuracy():
    def with_style_hard(accuracy: float) -> EvaluationResult:
        hard = StyleHard(
            pairs=120,
            accuracy=accuracy,
            accuracy_ci=[accuracy - 0.05, accuracy + 0.05],
            per_variant={"plain vs formatted": accuracy},
            variant_pairs={"plain vs formatted": 120},
            ratio=accuracy / 0.85,
        )
        return _evaluation().model_copy(update={"style_hard": hard})

    assert STYLE_HARD_RATIO == 0.8
    kept, lost = with_style_hard(0.7), with_style_hard(0.6)  # 0.82x and 0.71x of 85%
    assert shortcut_verdicts(kept)[-1] == (
        "ok",
        "accuracy holds at 70.0% (0.82x normal) when the chosen answer is worse styled.",
    )
    assert shortcut_verdicts(lost)[-1][0] == "warn"
    shortcuts = section_of(render_report("r", evaluation=lost), "shortcuts")
    assert "<td>plain vs formatted</td><td>chosen plain, rejected markdown</td><td>120</td>" in (
        shortcuts
    )
    assert "<td>60.0% [55.0%, 65.0%]</td>" in shortcuts  # the mean, with its interval
    assert len(shortcut_verdicts(_evaluation())) == 5  # none without a style-hard result


def test_untestable_length_check_says_so():
    verdicts = shortcut_verdicts(_evaluation(shorter=None))
    assert verdicts[1][0] == "na"
    assert "n/a" in section_of(
        render_report("x", evaluation=_evaluation(shorter=None)), "shortcuts"
    )


def test_plots_are_embedded_pngs_and_nothing_is_fetched():
    page = _full()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3  # per-trait bars, reliability diagram, heatmap
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and b"Software" not in png
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "<script" not in page


def test_output_is_deterministic():
    assert _full() == _full()


def test_names_and_provenance_are_escaped():
    evil = '<b>&"tone"$x'
    page = render_report(
        "<Title>",
        evaluation=_evaluation(traits=(evil,)),
        matrix=_matrix((evil, "plain")),
        provenance={"<script>alert(1)</script>": "a & b", "nested": {"k": "<v>"}},
    )
    assert "<b>" not in page and "<script>" not in page and "<Title>" not in page
    assert "&lt;b&gt;&amp;&quot;tone&quot;$x" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "a &amp; b" in page


def test_matrix_highlights_the_in_domain_diagonal():
    table = section_of(_full(), "matrix")
    assert table.count('class="diagonal"') == 2
    assert '<td class="diagonal">90.0% <small>(n = 10)</small></td>' in table
    assert "<td>60.0% <small>(n = 10)</small></td>" in table


def test_write_report_writes_the_file_atomically(tmp_path):
    path = tmp_path / "reports" / "reward.html"
    assert write_report(path, title="Reward report", training=_training()) == path
    assert path.read_text(encoding="utf-8") == render_report("Reward report", training=_training())
    assert [p.name for p in path.parent.iterdir()] == ["reward.html"]


def test_renders_the_real_evaluation_of_a_length_loving_reward():
    def longer_is_better(prompts, responses, traits):
        return np.array([float(len(r)) for r in responses])

    pairs = [
        RewardPair("q", "short and right", "a much longer but wrong answer", trait="concise"),
        RewardPair("q", "a long, careful and correct answer", "wrong", trait="helpful"),
        RewardPair("q", "ok", "rambling and wrong reply", trait="concise"),
        RewardPair("q", "detailed correct explanation", "no", trait="helpful"),
    ]
    evaluation = evaluate(longer_is_better, pairs, bootstrap_samples=50)
    matrix = generalization_matrix(
        {"concise": longer_is_better, "helpful": longer_is_better}, pairs, bootstrap_samples=50
    )
    page = render_report("real", evaluation=evaluation, matrix=matrix)
    shortcuts = section_of(page, "shortcuts")
    assert "accuracy drops to 0.0%" in shortcuts and "Spearman +1.000" in shortcuts
    assert page.count("data:image/png;base64,") == 3
