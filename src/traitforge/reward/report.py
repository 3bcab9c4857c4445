"""A reward-model evaluation as one self-contained HTML page, built from the report kit
(`traitforge.reporting`): the accuracy, shortcut, calibration and matrix sections here are
also the workspace report's sections for its latest model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from traitforge.reporting import (
    Column,
    escape_html,
    fmt_ci,
    fmt_counts,
    fmt_num,
    fmt_pct,
    fmt_pct_ci,
    html_page,
    html_section,
    html_table,
    key_values_table,
    png_image,
)
from traitforge.reward.evaluation import interval_note, versus_chance
from traitforge.reward.style_hard import SUMMARY, VARIANTS
from traitforge.schemas.results import (
    Calibration,
    CalibrationBin,
    EvaluationResult,
    MatrixCell,
    MatrixResult,
    StyleHard,
    TraitAccuracy,
)
from traitforge.workspace.files import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Verdict thresholds: rules of thumb, stated here so a reader can disagree with them.
BASELINE_MARGIN = 0.05  # a model should beat "the longer response wins" by at least this
SHORTER_GAP = 0.1  # accuracy drop tolerated on pairs where the chosen response is shorter
SPEARMAN_LIMIT = 0.3  # |rank correlation| between response length and reward
FLIP_LIMIT = 0.1  # share of preferences a meaningless format edit may flip
STYLE_HARD_RATIO = 0.8  # style-hard accuracy should keep this share of the normal accuracy


def fmt_accuracy(value: float | None, ci: Sequence[float] | None, pairs: int) -> str:
    """An accuracy with its interval, or with the note that `pairs` are too few for one."""
    note = interval_note(pairs)
    return f"{fmt_pct(value)} ({note})" if note and value is not None else fmt_pct_ci(value, ci)


def fmt_interval(ci: Sequence[float] | None, pairs: int) -> str:
    return interval_note(pairs) or fmt_ci(ci)


def fmt_ratio(style_hard: StyleHard) -> str:
    """Style-hard accuracy as a multiple of the normal one: "0.79x normal"."""
    return "n/a" if style_hard.ratio is None else f"{style_hard.ratio:.2f}x normal"


def style_hard_line(style_hard: StyleHard) -> str:
    """Style-hard accuracy in one line, as the CLI and the card print it."""
    variants = ", ".join(f"{name} {fmt_pct(v)}" for name, v in style_hard.per_variant.items())
    note = interval_note(style_hard.pairs)
    shown = (
        fmt_pct(style_hard.accuracy)
        if note
        else fmt_pct_ci(style_hard.accuracy, style_hard.accuracy_ci)
    )
    line = f"{shown} on {style_hard.pairs} pairs ({fmt_ratio(style_hard)}; {SUMMARY}): {variants}"
    return f"{line}; {note}" if note else line


_TRAIT_COLUMNS: list[Column] = [
    ("Trait", lambda item: item[0]),
    ("Pairs", lambda item: item[1].pairs),
    ("Accuracy", lambda item: fmt_pct(item[1].accuracy)),
    ("Confidence interval", lambda item: fmt_interval(item[1].accuracy_ci, item[1].pairs)),
    ("Length baseline", lambda item: fmt_pct(item[1].length_baseline)),
    (
        "Versus chance",
        lambda item: versus_chance(item[1].accuracy, item[1].accuracy_ci, item[1].pairs),
    ),
]
# shifts are in units of the reward's standard deviation (see evaluation._format_sensitivity)
_FORMAT_COLUMNS: list[Column] = [
    ("Perturbation", lambda item: item[0]),
    ("Mean shift (reward std)", lambda item: fmt_num(item[1].mean_shift, sign=True)),
    ("Mean abs shift (reward std)", lambda item: fmt_num(item[1].mean_abs_shift)),
    ("Flip rate", lambda item: fmt_pct(item[1].flip_rate)),
    ("Accuracy after", lambda item: fmt_pct(item[1].accuracy_after)),
]
_STYLE_RULES = {v.name: v.description for v in VARIANTS}
_STYLE_HARD_COLUMNS: list[Column] = [
    ("Style-hard variant", lambda row: row[0]),
    ("Chosen / rejected", lambda row: row[1]),
    ("Pairs", lambda row: row[2]),
    ("Accuracy", lambda row: row[3]),
]


def _epochs_cell(fit: Mapping) -> str:
    epochs = fit.get("epochs")
    if epochs is None:
        return "-"
    return f"{fmt_num(epochs, 1)} (capped)" if fit.get("epochs_capped") else fmt_num(epochs, 1)


_TRAINING_COLUMNS: list[Column] = [
    ("Model", lambda fit: fit["name"]),
    ("Pairs", lambda fit: fit["pairs"]),
    ("Epochs", _epochs_cell),
    ("Steps", lambda fit: fit.get("steps", "-")),
    ("Max length", lambda fit: fit["length"]["max_length"]),
    ("Over max length", lambda fit: f"{fit['length']['over']} of {fit['length']['pairs']}"),
    ("Policy", lambda fit: fit["length"]["policy"]),
    ("Truncated", lambda fit: fit["length"]["truncated"]),
    ("Dropped", lambda fit: fit["length"]["dropped"]),
    ("Longest", lambda fit: fit["length"]["longest"]),
    ("Over by trait", lambda fit: fmt_counts(fit["length"].get("over_by_trait", {}), empty="-")),
    ("Seconds", lambda fit: fmt_num(fit["seconds"], 1)),
    ("Pairs/s", lambda fit: fmt_num(fit["pairs_per_second"], 1)),
    ("Train loss", lambda fit: fmt_num(fit["train_loss"], 4)),
    ("Device", lambda fit: f"{fit['device']} {fit['precision']}"),
]


def training_note(training: Sequence[Mapping]) -> str | None:
    """Which models reward.max_epochs kept from the epochs reward.min_steps asked for."""
    capped = [fit["name"] for fit in training if fit.get("epochs_capped")]
    if not capped:
        return None
    return (
        f"Epochs capped at reward.max_epochs for {', '.join(capped)}: too few pairs to reach "
        "reward.min_steps optimizer steps without passing over them more often."
    )


def render_report(
    title: str,
    evaluation: EvaluationResult | None = None,
    matrix: MatrixResult | None = None,
    training: list[dict] | None = None,
    provenance: dict | None = None,
) -> str:
    """The report as an HTML string; a section appears only when its input is given."""
    sections: list[str] = []
    if evaluation is not None:
        sections += evaluation_sections(evaluation)
    if matrix and matrix.models:
        sections.append(matrix_section(matrix))
    if training:
        body = html_table(_TRAINING_COLUMNS, training)
        if note := training_note(training):
            body += f"\n<p>{escape_html(note)}</p>"
        body += (
            "\n<p>Pairs: distinct training pairs; Pairs/s counts every pass over them "
            "(pairs x epochs).</p>"
        )
        sections.append(html_section("training", "Training", body))
    if provenance:
        rows = [(key, _plain(value)) for key, value in provenance.items()]
        sections.append(html_section("provenance", "Provenance", key_values_table("Key", rows)))
    return html_page(title, "\n".join(sections) or "<p>Nothing to report.</p>")


def write_report(
    path: Path,
    title: str,
    evaluation: EvaluationResult | None = None,
    matrix: MatrixResult | None = None,
    training: list[dict] | None = None,
    provenance: dict | None = None,
) -> Path:
    """Render and write atomically, so a killed run never leaves half a report."""
    atomic_write_text(path, render_report(title, evaluation, matrix, training, provenance))
    return path


def evaluation_sections(evaluation: EvaluationResult) -> list[str]:
    """Accuracy, shortcut checks and calibration: everything one evaluation shows."""
    return [
        accuracy_section(evaluation),
        shortcut_section(evaluation),
        calibration_section(evaluation.calibration),
    ]


def shortcut_verdicts(evaluation: EvaluationResult) -> list[tuple[str, str]]:
    """One plain-language (level, text) line per check; level is 'ok', 'warn' or 'na'."""
    s, acc = evaluation.shortcuts, evaluation.accuracy
    base, shorter = s.length_baseline_accuracy, s.accuracy_chosen_shorter
    rho = fmt_num(s.length_reward_spearman, sign=True)
    lines = [
        _check(
            acc < base + BASELINE_MARGIN,
            f"accuracy {fmt_pct(acc)} barely beats picking the longer response ({fmt_pct(base)}).",
            f"accuracy {fmt_pct(acc)} is well above the length baseline ({fmt_pct(base)}).",
        ),
        ("na", "no pair has a shorter chosen response, so length bias is untested.")
        if shorter is None
        else _check(
            shorter < acc - SHORTER_GAP,
            f"accuracy drops to {fmt_pct(shorter)} when the chosen response is the shorter one: "
            "the model may be rewarding length.",
            f"accuracy holds at {fmt_pct(shorter)} when the chosen response is the shorter one.",
        ),
        _check(
            abs(s.length_reward_spearman) > SPEARMAN_LIMIT,
            f"reward tracks response length (Spearman {rho}).",
            f"reward is nearly independent of response length (Spearman {rho}).",
        ),
    ]
    for trait, row in evaluation.per_trait.items():
        if versus_chance(row.accuracy, row.accuracy_ci, row.pairs) == "at chance":
            lines.append(
                (
                    "warn",
                    f"on {trait} the model is at chance: {fmt_pct(row.accuracy)} on {row.pairs} "
                    "pairs, an interval that holds 50%; its reward says little about that trait.",
                )
            )
    for name, f in s.format.items():
        flips = f"the {name} edit flips {fmt_pct(f.flip_rate)} of preferences"
        lines.append(_check(f.flip_rate > FLIP_LIMIT, f"{flips}.", f"{flips}."))
    if (hard := evaluation.style_hard) is not None:
        said = (
            f"{fmt_pct(hard.accuracy)} ({fmt_ratio(hard)}) when the chosen answer is worse styled"
        )
        lines.append(
            (
                "na",
                f"style-hard accuracy is {fmt_pct(hard.accuracy)}; with a normal accuracy of 0 "
                "there is no ratio to judge.",
            )
            if hard.ratio is None
            else _check(
                hard.ratio < STYLE_HARD_RATIO,
                f"accuracy falls to {said}: the model may be rewarding style, not the trait.",
                f"accuracy holds at {said}.",
            )
        )
    return lines


def _check(failed: bool, warning: str, fine: str) -> tuple[str, str]:
    return ("warn", warning) if failed else ("ok", fine)


def accuracy_section(evaluation: EvaluationResult) -> str:
    level = f"{fmt_pct(evaluation.confidence_level, 0)} CI"
    r = evaluation.rewards
    interval = interval_note(evaluation.pairs) or f"{level} {fmt_ci(evaluation.accuracy_ci)}"
    parts = [
        f'<p class="headline"><span class="big">{fmt_pct(evaluation.accuracy)}</span> '
        f"pairwise accuracy on {evaluation.pairs} pairs, {escape_html(interval)}; length "
        "baseline (the longer response wins): "
        f"{fmt_pct(evaluation.shortcuts.length_baseline_accuracy)}.</p>"
    ]
    if evaluation.skipped:
        parts.append(
            f"<p>Pairs skipped, not scored: {escape_html(fmt_counts(evaluation.skipped))}.</p>"
        )
    parts.append(
        f"<p>Rewards: mean {fmt_num(r.mean)}, std {fmt_num(r.std)}, "
        f"mean margin (chosen - rejected) {fmt_num(r.mean_margin)}.</p>"
    )
    if per_trait := evaluation.per_trait:
        parts.append(html_table(_TRAIT_COLUMNS, per_trait.items()))
        parts.append(
            png_image(lambda fig: _trait_chart(fig, per_trait), (7, 3.5), "accuracy per trait")
        )
    return html_section("accuracy", "Accuracy", "\n".join(parts))


def shortcut_section(evaluation: EvaluationResult) -> str:
    s = evaluation.shortcuts
    checks = [
        ("Length baseline (the longer response wins)", fmt_pct(s.length_baseline_accuracy)),
        (
            f"Accuracy when the chosen is shorter (n = {s.chosen_shorter_pairs})",
            fmt_accuracy(
                s.accuracy_chosen_shorter, s.accuracy_chosen_shorter_ci, s.chosen_shorter_pairs
            ),
        ),
        ("Spearman correlation of length and reward", fmt_num(s.length_reward_spearman, sign=True)),
    ]
    body = [key_values_table("Check", checks), html_table(_FORMAT_COLUMNS, s.format.items())]
    if (hard := evaluation.style_hard) is not None:
        body.append(_style_hard_table(hard))
    body += [_verdict(level, text) for level, text in shortcut_verdicts(evaluation)]
    return html_section("shortcuts", "Shortcut checks", "\n".join(body))


def _style_hard_table(hard: StyleHard) -> str:
    """One row per variant, then their mean; the ratio to the normal accuracy below."""
    rows = [
        (name, _STYLE_RULES.get(name, "-"), hard.variant_pairs.get(name, "-"), fmt_pct(value))
        for name, value in hard.per_variant.items()
    ]
    mean = fmt_accuracy(hard.accuracy, hard.accuracy_ci, hard.pairs)
    rows.append(("mean", SUMMARY, hard.pairs, mean))
    return (
        html_table(_STYLE_HARD_COLUMNS, rows)
        + f"\n<p>Style-hard accuracy {fmt_pct(hard.accuracy)}: {escape_html(fmt_ratio(hard))} "
        "accuracy. Fixed rules give the chosen answer the worse style and leave every answer's "
        "content as it was (after RM-Bench, where reward models average 46.6% on such "
        "pairs).</p>"
    )


def calibration_section(cal: Calibration) -> str:
    rows = [
        ("ECE", fmt_num(cal.ece)),
        ("Brier score", fmt_num(cal.brier)),
        ("Log loss", fmt_num(cal.log_loss)),
        ("Mean P(chosen wins)", fmt_pct(cal.mean_probability)),
    ]
    body = [key_values_table("Metric", rows)]
    if cal.bins:
        body.append(
            png_image(
                lambda fig: _reliability_chart(fig, cal.bins), (4.5, 4.5), "reliability diagram"
            )
        )
    return html_section("calibration", "Calibration", "\n".join(body))


def matrix_section(matrix: MatrixResult) -> str:
    models, traits, cells = matrix.models, matrix.traits, matrix.cells
    head = "".join(f"<th>{escape_html(t)}</th>" for t in ["Model \\ test trait", *traits])
    rows = [
        f"<tr><td>{escape_html(m)}</td>"
        + "".join(_matrix_cell(m, t, cells[m][t]) for t in traits)
        + "</tr>"
        for m in models
    ]
    table = "\n".join(["<table>", f"<tr>{head}</tr>", *rows, "</table>"])
    size = (2 + 1.1 * len(traits), 1 + 0.6 * len(models))
    chart = png_image(lambda fig: _heatmap(fig, matrix), size, "generalization heatmap")
    return html_section("matrix", "Generalization matrix", f"{table}\n{chart}")


def _matrix_cell(model: str, trait: str, cell: MatrixCell) -> str:
    # the diagonal is a model tested on its own trait: in-domain, unlike every other cell
    css = ' class="diagonal"' if model == trait else ""
    return f"<td{css}>{fmt_pct(cell.accuracy)} <small>(n = {cell.pairs})</small></td>"


def _trait_chart(fig: Figure, per_trait: Mapping[str, TraitAccuracy]) -> None:
    names, xs = list(per_trait), range(len(per_trait))
    acc = [per_trait[n].accuracy for n in names]
    cis = [per_trait[n].accuracy_ci or (a, a) for n, a in zip(names, acc, strict=True)]
    below = [max(a - lo, 0) for a, (lo, _) in zip(acc, cis, strict=True)]
    above = [max(hi - a, 0) for a, (_, hi) in zip(acc, cis, strict=True)]
    baseline = [per_trait[n].length_baseline for n in names]
    ax = fig.subplots()
    ax.bar(xs, acc, yerr=[below, above], capsize=4, color="#4c72b0", label="accuracy")
    ax.scatter(xs, baseline, marker="D", color="#dd8452", zorder=3, label="length baseline")
    ax.axhline(0.5, color="#888", linestyle=":", linewidth=1, label="chance")
    # parse_math=False: a "$" in a trait name must not switch matplotlib into math mode
    ax.set_xticks(xs, names, rotation=30, ha="right", parse_math=False)
    ax.set(ylim=(0, 1.05), ylabel="pairwise accuracy")
    fig.legend(loc="outside upper center", ncols=3, fontsize="small")


def _reliability_chart(fig: Figure, bins: Sequence[CalibrationBin]) -> None:
    predicted, observed = [b.predicted for b in bins], [b.observed for b in bins]
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", color="#4c72b0", label="model")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(preferred)", ylabel="observed frequency")
    ax.legend(loc="upper left", fontsize="small")


def _heatmap(fig: Figure, matrix: MatrixResult) -> None:
    from matplotlib.patches import Rectangle

    models, traits, cells = matrix.models, matrix.traits, matrix.cells
    values = [[cells[m][t].accuracy for t in traits] for m in models]
    ax = fig.subplots()
    image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for row, model in enumerate(models):
        for col, trait in enumerate(traits):
            value = values[row][col]
            ink = "black" if value > 0.6 else "white"  # viridis is bright only at the top
            ax.text(col, row, fmt_pct(value), ha="center", va="center", color=ink, fontsize="small")
            if model == trait:
                corner = (col - 0.5, row - 0.5)
                ax.add_patch(Rectangle(corner, 1, 1, fill=False, edgecolor="#e53935", lw=2.5))
    ax.set_xticks(range(len(traits)), traits, rotation=30, ha="right", parse_math=False)
    ax.set_yticks(range(len(models)), models, parse_math=False)
    ax.set(xlabel="test trait", ylabel="model")
    fig.colorbar(image, ax=ax, label="accuracy")


def _verdict(level: str, text: str) -> str:
    label = {"ok": "OK", "warn": "Warning", "na": "Not tested"}[level]
    return f'<p class="verdict {level}"><strong>{label}:</strong> {escape_html(text)}</p>'


def _plain(value: object) -> str:
    """Strings as they are; anything else (a config, a list) as sorted JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
