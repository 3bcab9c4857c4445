"""The whole closed loop as one self-contained HTML page: what came in, what was dropped and
why, how often annotators tied, how the annotators agree, and how the reward model improved
round after round.

It is built from the report kit (`traitforge.reporting`: the inline style, escaped tables,
base64 PNG plots on a bare Agg figure, one formatter per kind of number) and shows the latest
model with the reward report's own accuracy, shortcut, calibration and matrix sections
(`traitforge.reward.report`). Every piece may be missing (round 1 has no model yet), and a
missing piece becomes a short "not yet" line, never an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from traitforge.annotators.backends import is_simulated
from traitforge.app.held_out import EXPORT, GOLD, JUDGED
from traitforge.reporting import (
    Column,
    escape_html,
    fmt_num,
    fmt_pct,
    fmt_pct_ci,
    html_page,
    html_section,
    html_table,
    key_values_table,
    png_image,
)
from traitforge.reward.report import evaluation_sections, fmt_accuracy, matrix_section
from traitforge.schemas.loop import LoopRound
from traitforge.schemas.results import (
    AgreementResult,
    AnnotatorQuality,
    EvaluationResult,
    LengthPositionFit,
    LengthPositionResult,
    TrainingSummary,
    TraitAccuracy,
    TraitTies,
)
from traitforge.workspace.files import atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_SCORE_PANELS = 9  # more histograms than this stop being readable in one figure
SCORE_BINS = 20
# Krippendorff's own rule of thumb: alpha >= .8 is reliable, >= .667 allows tentative claims.
ALPHA_RELIABLE, ALPHA_TENTATIVE = 0.8, 0.667
EVALUATION_SETS = {  # LoopRound.evaluated_on keys, as the report names them
    GOLD: "gold pairs of held-out prompts",
    JUDGED: "annotators' pairs of held-out prompts",
    EXPORT: "the export's test split",
}

# Wider than the reward report: the rounds table grows a column per trait.
_EXTRA_STYLE = """
body { max-width: 80rem; }
.summary { font-size: 1.05rem; background: #f7f7f7; padding: .6rem .8rem; }
#rounds table { font-size: .9rem; }
#rounds td, #annotators td { white-space: nowrap; }
#rounds td:nth-child(5) { white-space: pre; }  /* one scorer key a line */
#rounds :is(td, th):is(:nth-child(5), :nth-child(6)) { text-align: left; }
#annotators .quality :is(td, th):last-child { text-align: left; white-space: normal; }
.pending { color: #666; font-style: italic; }
.wide { overflow-x: auto; }
.tag { font-size: .75rem; padding: 0 .35rem; border-radius: .6rem; margin-left: .3rem; }
.tag.simulated { background: #e3eafc; color: #1a3d8f; }
.tag.flagged { background: #fdecea; color: #a31515; }
"""


@dataclass
class WorkspaceReportData:
    """Everything the page shows, gathered by the caller; the renderer does no I/O."""

    workspace: str  # path shown in the title
    counts: dict[str, int]  # pipeline stage -> count, in pipeline order
    drops: dict[str, int]  # drop reason -> count
    score_distributions: dict[str, list[float]]  # "scorer/trait" -> probabilities in [0, 1]
    agreement: AgreementResult | None
    rounds: list[LoopRound]  # every round so far, in order
    round: int | None = None  # set: a per-round report, showing rounds up to this one


def render_workspace_report(data: WorkspaceReportData) -> str:
    """The report as an HTML string, identical for identical input."""
    rounds = [r for r in data.rounds if data.round is None or r.round <= data.round]
    latest = next((r for r in reversed(rounds) if r.evaluation), None)
    exported = _last_export(rounds)
    title = f"traitforge loop report: {data.workspace}"
    if data.round is not None:
        title += f" (round {data.round})"
    sections = [
        _summary(data, rounds, latest),
        _pipeline_section(data.counts, data.drops, exported.ties if exported else {}),
        _scores_section(data.score_distributions),
        _annotators_section(data.agreement),
        _length_position_section(exported.length_position if exported else None),
        _rounds_section(rounds),
        *_latest_sections(latest),
    ]
    return html_page(title, "\n".join(sections), _EXTRA_STYLE)


def write_workspace_report(path: Path, data: WorkspaceReportData) -> Path:
    """Render and write atomically, so a killed run never leaves half a report."""
    atomic_write_text(path, render_workspace_report(data))
    return path


def _summary(
    data: WorkspaceReportData, rounds: Sequence[LoopRound], latest: LoopRound | None
) -> str:
    scope = (
        f"This report covers round {data.round}; later rounds are left out. "
        if data.round is not None
        else ""
    )
    if not rounds:
        done = "no loop round has run yet."
    else:
        last = _last_export(rounds) or rounds[-1]
        done = (
            f"{_plural(len(rounds), 'round')} so far; after round {last.round}: "
            f"{_plural(last.judgements_total, 'label')}, "
            f"{_plural(sum(last.pairs.values()), 'pair')}."
        )
        if rounds[-1].stopped:
            done += f" The loop stopped at round {rounds[-1].round}: {rounds[-1].stopped}."
    if latest is None or latest.evaluation is None:
        model = "No reward model has been evaluated yet."
        note = next((r.evaluation_note for r in reversed(rounds) if r.evaluation_note), None)
        if note:
            model = f"No reward model has been evaluated yet: {note}."
    else:
        ev = latest.evaluation
        baseline = ev.shortcuts.length_baseline_accuracy
        gap = fmt_num(100 * (ev.accuracy - baseline), 1, sign=True)
        model = (
            f"Latest reward model (round {latest.round}): accuracy {_accuracy_ci(ev)} "
            f"against a length baseline of {fmt_pct(baseline)} ({gap} points)"
        )
        model += f", on {_evaluated_on(latest)}." if latest.evaluated_on else "."
        trained = _last_export(rounds)
        if trained and trained.round > latest.round and trained.evaluation_note:
            model += f" Round {trained.round}: {_note_text(trained)}."
    return (
        f'<p class="summary">{escape_html(scope)}Workspace '
        f"<code>{escape_html(data.workspace)}</code>: "
        f"{escape_html(done)} {escape_html(model)}</p>"
    )


def _last_export(rounds: Sequence[LoopRound]) -> LoopRound | None:
    """The latest round that exported: a stopped round has no pairs, ties or drops of its
    own, and those of the round before it still hold."""
    return next((r for r in reversed(rounds) if not r.stopped), None)


def _pipeline_section(
    counts: Mapping[str, int], drops: Mapping[str, int], ties: Mapping[str, TraitTies]
) -> str:
    parts = []
    if counts:
        rows = list(counts.items())
        parts.append(
            html_table([("Stage", lambda r: r[0]), ("Count", lambda r: f"{r[1]:,}")], rows)
        )
        size = (7, 0.5 + 0.4 * len(rows))
        parts.append(png_image(lambda fig: _funnel_chart(fig, rows), size, "counts at every stage"))
    else:
        parts.append(_pending("Nothing ingested yet."))
    parts.append("<h3>Drops</h3>")
    if drops:
        # largest first: the reason that costs most data is the one to look at
        rows = sorted(drops.items(), key=lambda r: (-r[1], r[0]))
        rows.append(("Total", sum(drops.values())))
        parts.append(
            html_table([("Reason", lambda r: r[0]), ("Dropped", lambda r: f"{r[1]:,}")], rows)
        )
    else:
        parts.append(_pending("Nothing dropped yet."))
    parts.append("<h3>Ties</h3>")
    if ties:
        parts.append(
            "<p>Answers that put every candidate level: answers, not drops. They count in the "
            "agreement figures; a task with only ties gives no pair.</p>"
        )
        parts.append(html_table(_TIE_COLUMNS, sorted(ties.items())))
    else:
        parts.append(_pending("No tie counts recorded yet."))
    return html_section("pipeline", "Pipeline", "\n".join(parts))


_TIE_COLUMNS: list[Column] = [
    ("Trait", lambda item: item[0]),
    ("Answers", lambda item: f"{item[1].answers:,}"),
    ("Tied", lambda item: f"{item[1].tied:,}"),
    ("Share tied", lambda item: fmt_pct(item[1].share)),
    ("Tasks with only ties", lambda item: f"{item[1].tasks:,}"),
]


def _funnel_chart(fig: Figure, rows: Sequence[tuple[str, int]]) -> None:
    names, values = [r[0] for r in rows], [r[1] for r in rows]
    ax = fig.subplots()
    bars = ax.barh(range(len(rows)), values, color="#4c72b0")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize="small")
    ax.set_yticks(range(len(rows)), names, parse_math=False)
    ax.invert_yaxis()  # first stage on top, like a funnel
    ax.set_xlim(0, max(max(values), 1) * 1.15)  # room for the labels
    ax.set_xlabel("count")


_SCORE_COLUMNS: list[Column] = [
    ("Scorer / trait", lambda item: item[0]),
    ("Scores", lambda item: f"{len(item[1]):,}"),
    ("Mean", lambda item: fmt_num(_mean(item[1]))),
    ("Median", lambda item: fmt_num(_median(item[1]))),
    ("At least 0.5", lambda item: fmt_pct(_mean([float(v >= 0.5) for v in item[1]]))),
]


def _scores_section(distributions: Mapping[str, Sequence[float]]) -> str:
    items = sorted(
        (name, [v for v in values if math.isfinite(v)]) for name, values in distributions.items()
    )
    if not items:
        return html_section("scores", "Trait scores", _pending("No trait scores yet."))
    shown = items[:MAX_SCORE_PANELS]
    cols = min(3, len(shown))
    size = (3.2 * cols, 0.4 + 2.4 * math.ceil(len(shown) / cols))
    parts = [png_image(lambda fig: _histograms(fig, shown, cols), size, "trait score histograms")]
    if len(items) > len(shown):
        parts.append(
            f"<p>Histograms of the first {len(shown)} of {len(items)} by name; "
            "the table lists all of them.</p>"
        )
    parts.append(html_table(_SCORE_COLUMNS, items))
    return html_section("scores", "Trait scores", "\n".join(parts))


def _histograms(fig: Figure, items: Sequence[tuple[str, list[float]]], cols: int) -> None:
    rows = math.ceil(len(items) / cols)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, (name, values) in zip(axes.flat, items, strict=False):
        ax.hist(values, bins=SCORE_BINS, range=(0, 1), color="#4c72b0")
        ax.set_title(name, fontsize="small", parse_math=False)
        ax.set_xlim(0, 1)
        if not values:
            ax.text(0.5, 0.5, "no scores", ha="center", va="center", transform=ax.transAxes)
    for ax in list(axes.flat)[len(items) :]:
        ax.set_visible(False)
    fig.supxlabel("P(trait)", fontsize="small")


_TRAIT_ALPHA_COLUMNS: list[Column] = [
    ("Trait", lambda item: item[0]),
    ("Preference alpha", lambda item: fmt_num(item[1].preference_alpha)),
    ("Preference units", lambda item: item[1].preference_units),
    ("Rating alpha", lambda item: fmt_num(item[1].rating_alpha)),
    ("Rating units", lambda item: item[1].rating_units),
]


def _annotators_section(agreement: AgreementResult | None) -> str:
    if not agreement:
        return html_section("annotators", "Annotators", _pending("No annotations pulled yet."))
    overall = [
        ("Preference (nominal)", fmt_num(agreement.preference_alpha)),
        ("Rating (ordinal)", fmt_num(agreement.rating_alpha)),
    ]
    parts = [
        "<h3>Agreement (Krippendorff's alpha)</h3>",
        key_values_table("Question", overall),
        f"<p>Alpha is 1 for perfect agreement and 0 for chance; {ALPHA_RELIABLE} and above is "
        f"reliable, {ALPHA_TENTATIVE} and above allows tentative conclusions; n/a means too "
        "few items were answered by two annotators.</p>",
    ]
    if traits := agreement.traits:
        parts.append(html_table(_TRAIT_ALPHA_COLUMNS, sorted(traits.items())))
    parts.append("<h3>Annotator quality</h3>")
    if annotators := agreement.annotators:
        parts.append(_annotator_table(annotators))
    else:
        parts.append(_pending("No annotator has answered yet."))
    return html_section("annotators", "Annotators", "\n".join(parts))


def _annotator_table(annotators: Mapping[str, AnnotatorQuality]) -> str:
    # written by hand rather than with html_table: the tags are markup, the names are escaped
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Annotator", "Answers", "Agreement", "Gold accuracy", "Flagged", "Reasons")
    )
    rows = []
    for name, q in sorted(annotators.items()):
        tags = ""
        if is_simulated(name):
            tags += '<span class="tag simulated">simulated</span>'
        if q.flagged:
            tags += '<span class="tag flagged">flagged</span>'
        cells = [
            f"{escape_html(name)}{tags}",
            escape_html(q.answers),
            _with_n(q.agreement, q.compared),
            _with_n(q.gold_accuracy, q.gold_tasks),
            "yes" if q.flagged else "no",
            escape_html("; ".join(q.reasons) or "-"),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(['<table class="quality">', f"<tr>{head}</tr>", *rows, "</table>"])


def _odds_ratio(fit: LengthPositionFit) -> str:
    text = fmt_num(fit.length_odds_ratio, 2)
    if fit.length_odds_ratio_ci:
        low, high = fit.length_odds_ratio_ci
        text += f" [{fmt_num(low, 2)}, {fmt_num(high, 2)}]"
    return text


_LENGTH_POSITION_COLUMNS: list[Column] = [
    ("Votes", lambda item: f"{item[1].votes:,}"),
    ("Ties", lambda item: f"{item[1].ties:,}"),
    ("First shown won", lambda item: fmt_pct(item[1].first_wins)),
    ("Position [95% CI]", lambda item: fmt_pct_ci(item[1].position, item[1].position_ci)),
    ("Length odds ratio [95% CI]", lambda item: _odds_ratio(item[1])),
    ("Longer won", lambda item: fmt_pct(item[1].longer_won)),
    ("Length pseudo-R²", lambda item: fmt_num(item[1].length_pseudo_r2)),
    ("Note", lambda item: item[1].note or ""),
]


def _length_position_section(result: LengthPositionResult | None) -> str:
    """The latest export's regression of the votes on position and length."""
    title = "Length and position in the answers"
    if result is None:
        return html_section("length-position", title, _pending("No length or position fit yet."))
    parts = [
        "<p>Each decided two-way vote (ties left out) asks: did the response shown first win? "
        "<em>Position</em> is the fitted chance that it wins when both are equally long (50% "
        "means the order did not matter); the <em>length odds ratio</em> is how the odds of "
        "winning change when a response is twice as long (1 means length did not sway the "
        "votes); <em>longer won</em> is the share of the votes between responses of different "
        "length that the longer one won; <em>length pseudo-R²</em> (McFadden) is how much of "
        "the votes length explains beyond position, from 0 to 1. A fit needs at least "
        f"{result.min_votes} decided votes.</p>",
        "<h3>Per trait</h3>",
        html_table(
            [("Trait", lambda item: item[0]), *_LENGTH_POSITION_COLUMNS],
            sorted(result.traits.items()),
        ),
        "<h3>Per annotator</h3>",
    ]
    if result.annotators:
        columns = [("Annotator", lambda item: item[0]), *_LENGTH_POSITION_COLUMNS]
        parts.append(html_table(columns, sorted(result.annotators.items())))
    else:
        parts.append(_pending("No annotator has a decided two-way vote yet."))
    return html_section("length-position", title, "\n".join(parts))


def _rounds_section(rounds: Sequence[LoopRound]) -> str:
    if not rounds:
        return html_section("rounds", "Rounds", _pending("No round has run yet."))
    traits = sorted({t for r in rounds if r.evaluation for t in r.evaluation.per_trait})
    columns: list[Column] = [
        ("Round", lambda r: r.round),
        ("Labels", lambda r: f"{r.judgements_total:,}"),
        ("Pairs", lambda r: "-" if r.stopped else f"{sum(r.pairs.values()):,}"),
        ("Tasks", lambda r: f"{r.tasks:,}"),
        ("Selected with", lambda r: "\n".join(r.selected_with) or "-"),
        ("Strategy", lambda r: "\n".join(x for x in (r.strategy, r.acquisition) if x) or "-"),
        ("Tied answers", _tied_cell),
        ("Accuracy [CI]", lambda r: _overall(r, _accuracy_ci)),
        ("Length baseline", lambda r: _overall(r, _baseline)),
        ("Evaluated on", _evaluated_on_cell),
        *[(t, _trait_cell(t)) for t in traits],
    ]
    parts = [f'<div class="wide">{html_table(columns, rounds)}</div>']
    parts += [
        f'<p class="stopped">Round {r.round} stopped, selecting no task: '
        f"{escape_html(r.stopped)}. It trained nothing and no round ran after it.</p>"
        for r in rounds
        if r.stopped
    ]
    parts += [
        f'<p class="selection-warning">Round {r.round}: {escape_html(w)}</p>'
        for r in rounds
        for w in r.warnings
    ]
    parts += [
        f'<p class="evaluation-note">Round {r.round}: {escape_html(_note_text(r))}.</p>'
        for r in rounds
        if r.evaluation_note and not r.stopped
    ]
    if traits:
        parts.append("<p>Per trait: accuracy (length baseline on the same pairs).</p>")
    evaluated = [r for r in rounds if r.evaluation]
    if evaluated:
        parts.append(
            png_image(
                lambda fig: _progress_chart(fig, evaluated, traits), (8, 4), "accuracy by round"
            )
        )
    else:
        parts.append(_pending("No reward model has been evaluated yet."))
    return html_section("rounds", "Rounds", "\n".join(parts))


def _tied_cell(r: LoopRound) -> str:
    """Tied answers of every trait after the round; "-" without a tie record (no answers yet,
    or a round file written before ties were counted)."""
    if not r.ties:
        return "-"
    tied = sum(t.tied for t in r.ties.values())
    answers = sum(t.answers for t in r.ties.values())
    return f"{tied:,} of {answers:,} ({fmt_pct(tied / answers if answers else None)})"


def _accuracy_ci(evaluation: EvaluationResult) -> str:
    return fmt_accuracy(evaluation.accuracy, evaluation.accuracy_ci, evaluation.pairs)


def _evaluated_on(r: LoopRound) -> str:
    """'gold pairs of held-out prompts (120 pairs)', one part per evaluation set."""
    return " and ".join(
        f"{EVALUATION_SETS.get(name, name)} ({_plural(n, 'pair')})"
        for name, n in r.evaluated_on.items()
    )


def _evaluated_on_cell(r: LoopRound) -> str:
    if r.evaluated_on:
        return ", ".join(f"{name}: {n:,}" for name, n in r.evaluated_on.items())
    if r.evaluation:
        return f"{r.evaluation.pairs:,} pairs"  # a round.json from before the field
    return "none" if r.evaluation_note else "-"


def _note_text(r: LoopRound) -> str:
    """A round's evaluation note, said as what happened: partial, or no evaluation."""
    note = r.evaluation_note or ""
    return note if r.evaluation else f"no evaluation: {note}"


def _baseline(evaluation: EvaluationResult) -> str:
    return fmt_pct(evaluation.shortcuts.length_baseline_accuracy)


def _overall(r: LoopRound, show: Callable[[EvaluationResult], str]) -> str:
    if r.evaluation:
        return show(r.evaluation)
    if r.stopped:
        return "stopped"
    return "none" if r.evaluation_note else "not yet"  # the note below the table says why


def _trait_cell(trait: str) -> Callable[[LoopRound], str]:
    def cell(r: LoopRound) -> str:
        t = r.evaluation.per_trait.get(trait) if r.evaluation else None
        return f"{fmt_pct(t.accuracy)} ({fmt_pct(t.length_baseline)})" if t else "-"

    return cell


def _progress_chart(fig: Figure, rounds: Sequence[LoopRound], traits: Sequence[str]) -> None:
    """Accuracy per round, solid, with the length baseline of the same pairs dashed beside it:
    overall in black, one colour per trait."""
    from matplotlib import colormaps

    xs = [r.round for r in rounds]
    evaluations = [r.evaluation for r in rounds if r.evaluation]
    overall = [(e.accuracy, e.shortcuts.length_baseline_accuracy) for e in evaluations]
    series = [("all traits", overall)] + [
        (t, [_point(e.per_trait.get(t)) for e in evaluations]) for t in traits
    ]
    palette = ["black", *colormaps["tab10"].colors]
    ax = fig.subplots()
    for i, (name, points) in enumerate(series):
        color = palette[i % len(palette)]
        ax.plot(xs, [p[0] for p in points], marker="o", color=color, label=name)
        ax.plot(xs, [p[1] for p in points], linestyle="--", color=color, lw=1)
    ax.plot([], [], linestyle="--", color="#888", lw=1, label="length baseline (dashed)")
    ax.axhline(0.5, color="#888", linestyle=":", linewidth=1)
    ax.set_xticks(xs, [f"{r.round}\n{r.judgements_total:,} labels" for r in rounds])
    ax.set(ylim=(0, 1.05), xlabel="round", ylabel="pairwise accuracy")
    legend = fig.legend(loc="outside right upper", fontsize="small")
    for text in legend.get_texts():
        text.set_parse_math(False)  # a "$" in a trait name must not switch to math mode


def _point(trait: TraitAccuracy | None) -> tuple[float, float]:
    """(accuracy, length baseline); NaN where a round lacks the trait, so matplotlib leaves
    a gap instead of failing."""
    return (trait.accuracy, trait.length_baseline) if trait else (math.nan, math.nan)


def _latest_sections(latest: LoopRound | None) -> list[str]:
    if latest is None or latest.evaluation is None:
        return [html_section("latest", "Latest reward model", _pending("No reward model yet."))]
    ev = latest.evaluation
    intro = f"<p>Round {latest.round}"
    if latest.model:
        intro += f", model <code>{escape_html(latest.model)}</code>"
    used = _evaluated_on(latest) if latest.evaluated_on else _plural(ev.pairs, "held-out pair")
    intro += f", evaluated on {escape_html(used)}.</p>"
    if latest.evaluation_note:
        intro += f"\n<p>{escape_html(latest.evaluation_note)}.</p>"
    if latest.training:
        intro += "\n" + _training_table(latest.training)
    if not latest.matrix:
        intro += "\n" + _pending("No generalization matrix in this round.")
    sections = [html_section("latest", f"Latest reward model (round {latest.round})", intro)]
    sections += evaluation_sections(ev)
    if latest.matrix and latest.matrix.models:
        sections.append(matrix_section(latest.matrix))
    return sections


_TRAINING_COLUMNS: list[Column] = [
    ("Model", lambda item: item[0]),
    ("Training pairs", lambda item: f"{item[1].pairs:,}"),
    ("Epochs", lambda item: fmt_num(item[1].epochs, 1) + (" (capped)" * item[1].epochs_capped)),
    ("Steps", lambda item: f"{item[1].steps:,}"),
    ("Seconds", lambda item: fmt_num(item[1].seconds, 1)),
]


def _training_table(training: Mapping[str, TrainingSummary]) -> str:
    """Distinct training pairs and the passes over them, apart; says when reward.max_epochs
    held the passes below what reward.min_steps asked for."""
    parts = [html_table(_TRAINING_COLUMNS, sorted(training.items()))]
    capped = sorted(name for name, t in training.items() if t.epochs_capped)
    if capped:
        parts.append(
            f"<p>Epochs capped at reward.max_epochs for {escape_html(', '.join(capped))}: too "
            "few pairs to reach reward.min_steps optimizer steps.</p>"
        )
    return "\n".join(parts)


def _pending(text: str) -> str:
    return f'<p class="pending">{escape_html(text)}</p>'


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered, mid = sorted(values), len(values) // 2
    return ordered[mid] if len(values) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _with_n(value: float | None, n: object) -> str:
    return f"{fmt_pct(value)} <small>(n = {escape_html(n)})</small>"
