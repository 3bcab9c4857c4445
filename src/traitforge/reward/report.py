"""A reward-model evaluation as one self-contained HTML page.

Plots are PNGs embedded as base64 and the style sheet is inline, so the file opens offline,
can sit next to a dataset card, and renders byte-identically for the same input.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitforge.workspace.files import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Verdict thresholds: rules of thumb, stated here so a reader can disagree with them.
BASELINE_MARGIN = 0.05  # a model should beat "the longer response wins" by at least this
SHORTER_GAP = 0.1  # accuracy drop tolerated on pairs where the chosen response is shorter
SPEARMAN_LIMIT = 0.3  # |rank correlation| between response length and reward
FLIP_LIMIT = 0.1  # share of preferences a meaningless format edit may flip

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.diagonal { font-weight: bold; background: #fff3c4; }
.headline .big { font-size: 2rem; font-weight: bold; }
.verdict { margin: .3rem 0; padding: .3rem .6rem; border-left: 4px solid; }
.verdict.ok { border-color: #2e7d32; background: #edf7ed; }
.verdict.warn { border-color: #c62828; background: #fdecea; }
.verdict.na { border-color: #888; background: #f3f3f3; }
img { max-width: 100%; }
"""

Column = tuple[str, Callable[[Any], object]]

_TRAIT_COLUMNS: list[Column] = [
    ("Trait", lambda item: item[0]),
    ("Pairs", lambda item: item[1]["pairs"]),
    ("Accuracy", lambda item: fmt_pct(item[1]["accuracy"])),
    ("Confidence interval", lambda item: fmt_ci(item[1]["accuracy_ci"])),
    ("Length baseline", lambda item: fmt_pct(item[1]["length_baseline"])),
]
# shifts are in units of the reward's standard deviation (see evaluation._format_sensitivity)
_FORMAT_COLUMNS: list[Column] = [
    ("Perturbation", lambda item: item[0]),
    ("Mean shift (reward std)", lambda item: fmt_num(item[1]["mean_shift"], sign=True)),
    ("Mean abs shift (reward std)", lambda item: fmt_num(item[1]["mean_abs_shift"])),
    ("Flip rate", lambda item: fmt_pct(item[1]["flip_rate"])),
    ("Accuracy after", lambda item: fmt_pct(item[1]["accuracy_after"])),
]
_TRAINING_COLUMNS: list[Column] = [
    ("Model", lambda fit: fit["name"]),
    ("Pairs", lambda fit: fit["pairs"]),
    ("Max length", lambda fit: fit["length"]["max_length"]),
    ("Over max length", lambda fit: f"{fit['length']['over']} of {fit['length']['pairs']}"),
    ("Policy", lambda fit: fit["length"]["policy"]),
    ("Truncated", lambda fit: fit["length"]["truncated"]),
    ("Dropped", lambda fit: fit["length"]["dropped"]),
    ("Longest", lambda fit: fit["length"]["longest"]),
    ("Over by trait", lambda fit: _counts(fit["length"].get("over_by_trait", {}))),
    ("Seconds", lambda fit: fmt_num(fit["seconds"], 1)),
    ("Pairs/s", lambda fit: fmt_num(fit["pairs_per_second"], 1)),
    ("Train loss", lambda fit: fmt_num(fit["train_loss"], 4)),
    ("Device", lambda fit: f"{fit['device']} {fit['precision']}"),
]


def render_report(
    title: str,
    evaluation: dict | None = None,
    matrix: dict | None = None,
    training: list[dict] | None = None,
    provenance: dict | None = None,
) -> str:
    """The report as an HTML string; a section appears only when its input is given."""
    sections: list[str] = []
    if evaluation is not None:
        sections.append(accuracy_section(evaluation))
        if evaluation.get("shortcuts"):
            sections.append(shortcut_section(evaluation))
        if evaluation.get("calibration"):
            sections.append(calibration_section(evaluation["calibration"]))
    if matrix and matrix.get("models"):
        sections.append(matrix_section(matrix))
    if training:
        sections.append(
            html_section("training", "Training", html_table(_TRAINING_COLUMNS, training))
        )
    if provenance:
        rows = [(key, _plain(value)) for key, value in provenance.items()]
        sections.append(html_section("provenance", "Provenance", key_values_table("Key", rows)))
    body = "\n".join(sections) or "<p>Nothing to report.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape_html(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{escape_html(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def write_report(
    path: Path,
    title: str,
    evaluation: dict | None = None,
    matrix: dict | None = None,
    training: list[dict] | None = None,
    provenance: dict | None = None,
) -> Path:
    """Render and write atomically, so a killed run never leaves half a report."""
    atomic_write_text(path, render_report(title, evaluation, matrix, training, provenance))
    return path


def shortcut_verdicts(evaluation: Mapping[str, Any]) -> list[tuple[str, str]]:
    """One plain-language (level, text) line per check; level is 'ok', 'warn' or 'na'."""
    s, acc = evaluation["shortcuts"], evaluation["accuracy"]
    base, shorter = s["length_baseline_accuracy"], s["accuracy_chosen_shorter"]
    rho = fmt_num(s["length_reward_spearman"], sign=True)
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
            abs(s["length_reward_spearman"]) > SPEARMAN_LIMIT,
            f"reward tracks response length (Spearman {rho}).",
            f"reward is nearly independent of response length (Spearman {rho}).",
        ),
    ]
    for name, f in s.get("format", {}).items():
        flips = f"the {name} edit flips {fmt_pct(f['flip_rate'])} of preferences"
        lines.append(_check(f["flip_rate"] > FLIP_LIMIT, f"{flips}.", f"{flips}."))
    return lines


def _check(failed: bool, warning: str, fine: str) -> tuple[str, str]:
    return ("warn", warning) if failed else ("ok", fine)


def accuracy_section(evaluation: Mapping[str, Any]) -> str:
    level = f"{evaluation.get('confidence_level', 0.95):.0%} CI"
    baseline = evaluation.get("shortcuts", {}).get("length_baseline_accuracy")
    parts = [
        f'<p class="headline"><span class="big">{fmt_pct(evaluation["accuracy"])}</span> '
        f"pairwise accuracy on {evaluation['pairs']} pairs, {level} "
        f"{fmt_ci(evaluation.get('accuracy_ci'))}; length baseline (the longer response wins): "
        f"{fmt_pct(baseline)}.</p>"
    ]
    if skipped := evaluation.get("skipped"):
        parts.append(f"<p>Pairs skipped, not scored: {escape_html(_counts(skipped))}.</p>")
    if r := evaluation.get("rewards"):
        parts.append(
            f"<p>Rewards: mean {fmt_num(r['mean'])}, std {fmt_num(r['std'])}, "
            f"mean margin (chosen - rejected) {fmt_num(r['mean_margin'])}.</p>"
        )
    if per_trait := evaluation.get("per_trait"):
        parts.append(html_table(_TRAIT_COLUMNS, per_trait.items()))
        parts.append(
            png_image(lambda fig: _trait_chart(fig, per_trait), (7, 3.5), "accuracy per trait")
        )
    return html_section("accuracy", "Accuracy", "\n".join(parts))


def shortcut_section(evaluation: Mapping[str, Any]) -> str:
    s = evaluation["shortcuts"]
    shorter = f"{fmt_pct(s['accuracy_chosen_shorter'])} {fmt_ci(s['accuracy_chosen_shorter_ci'])}"
    checks = [
        ("Length baseline (the longer response wins)", fmt_pct(s["length_baseline_accuracy"])),
        (f"Accuracy when the chosen is shorter (n = {s['chosen_shorter_pairs']})", shorter),
        (
            "Spearman correlation of length and reward",
            fmt_num(s["length_reward_spearman"], sign=True),
        ),
    ]
    body = [
        key_values_table("Check", checks),
        html_table(_FORMAT_COLUMNS, s.get("format", {}).items()),
    ]
    body += [_verdict(level, text) for level, text in shortcut_verdicts(evaluation)]
    return html_section("shortcuts", "Shortcut checks", "\n".join(body))


def calibration_section(cal: Mapping[str, Any]) -> str:
    rows = [
        ("ECE", fmt_num(cal["ece"])),
        ("Brier score", fmt_num(cal["brier"])),
        ("Log loss", fmt_num(cal["log_loss"])),
        ("Mean P(chosen wins)", fmt_pct(cal["mean_probability"])),
    ]
    body = [key_values_table("Metric", rows)]
    if cal["bins"]:
        body.append(
            png_image(
                lambda fig: _reliability_chart(fig, cal["bins"]), (4.5, 4.5), "reliability diagram"
            )
        )
    return html_section("calibration", "Calibration", "\n".join(body))


def matrix_section(matrix: Mapping[str, Any]) -> str:
    models, traits, cells = matrix["models"], matrix["traits"], matrix["cells"]
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


def _matrix_cell(model: str, trait: str, cell: Mapping[str, Any]) -> str:
    # the diagonal is a model tested on its own trait: in-domain, unlike every other cell
    css = ' class="diagonal"' if model == trait else ""
    return f"<td{css}>{fmt_pct(cell['accuracy'])} <small>(n = {cell['pairs']})</small></td>"


def _trait_chart(fig: Figure, per_trait: Mapping[str, Mapping[str, Any]]) -> None:
    names, xs = list(per_trait), range(len(per_trait))
    acc = [per_trait[n]["accuracy"] for n in names]
    cis = [per_trait[n]["accuracy_ci"] or (a, a) for n, a in zip(names, acc, strict=True)]
    below = [max(a - lo, 0) for a, (lo, _) in zip(acc, cis, strict=True)]
    above = [max(hi - a, 0) for a, (_, hi) in zip(acc, cis, strict=True)]
    baseline = [per_trait[n]["length_baseline"] for n in names]
    ax = fig.subplots()
    ax.bar(xs, acc, yerr=[below, above], capsize=4, color="#4c72b0", label="accuracy")
    ax.scatter(xs, baseline, marker="D", color="#dd8452", zorder=3, label="length baseline")
    ax.axhline(0.5, color="#888", linestyle=":", linewidth=1, label="chance")
    # parse_math=False: a "$" in a trait name must not switch matplotlib into math mode
    ax.set_xticks(xs, names, rotation=30, ha="right", parse_math=False)
    ax.set(ylim=(0, 1.05), ylabel="pairwise accuracy")
    fig.legend(loc="outside upper center", ncols=3, fontsize="small")


def _reliability_chart(fig: Figure, bins: Sequence[Mapping[str, Any]]) -> None:
    predicted, observed = [b["predicted"] for b in bins], [b["observed"] for b in bins]
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#888", label="perfect calibration")
    ax.plot(predicted, observed, marker="o", color="#4c72b0", label="model")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(preferred)", ylabel="observed frequency")
    ax.legend(loc="upper left", fontsize="small")


def _heatmap(fig: Figure, matrix: Mapping[str, Any]) -> None:
    from matplotlib.patches import Rectangle

    models, traits, cells = matrix["models"], matrix["traits"], matrix["cells"]
    values = [[cells[m][t]["accuracy"] for t in traits] for m in models]
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


def png_image(draw: Callable[[Figure], None], size: tuple[float, float], alt: str) -> str:
    """Draw on a fresh Agg figure and return it as an inline <img>.

    No pyplot: the figure is never registered globally, so nothing leaks or needs closing,
    and the caller's matplotlib backend is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape_html(alt)}" src="data:image/png;base64,{data}">'


def html_section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{escape_html(heading)}</h2>\n{body}\n</section>'


def html_table(columns: Sequence[Column], items: Iterable[Any]) -> str:
    """An HTML table with one row per item; every cell is escaped."""
    head = "".join(f"<th>{escape_html(header)}</th>" for header, _ in columns)
    rows = [
        "<tr>" + "".join(f"<td>{escape_html(cell(i))}</td>" for _, cell in columns) + "</tr>"
        for i in items
    ]
    return "\n".join(["<table>", f"<tr>{head}</tr>", *rows, "</table>"])


def key_values_table(key: str, rows: Iterable[tuple[str, object]]) -> str:
    return html_table([(key, lambda row: row[0]), ("Value", lambda row: row[1])], rows)


def _verdict(level: str, text: str) -> str:
    label = {"ok": "OK", "warn": "Warning", "na": "Not tested"}[level]
    return f'<p class="verdict {level}"><strong>{label}:</strong> {escape_html(text)}</p>'


def escape_html(value: object) -> str:
    return html.escape(str(value))


def _plain(value: object) -> str:
    """Strings as they are; anything else (a config, a list) as sorted JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.items()) or "-"


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


def fmt_ci(interval: Sequence[float] | None) -> str:
    return f"[{fmt_pct(interval[0])}, {fmt_pct(interval[1])}]" if interval else "n/a"


def fmt_num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"
