"""Rich tables and summaries of each command's result."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from traitforge.app import workflows
from traitforge.cli._app import bold, console
from traitforge.curation.gaps import UNSCORED_CHOICE
from traitforge.curation.generation import GenerationReport
from traitforge.curation.ingest import IngestReport
from traitforge.curation.pool import plural
from traitforge.exports import ExportReport
from traitforge.reporting import fmt_counts, fmt_num, fmt_pct, fmt_pct_ci
from traitforge.reward.evaluation import interval_note, versus_chance
from traitforge.reward.report import style_hard_line
from traitforge.schemas import AgreementResult, EvaluationResult, MatrixResult, prompt_text
from traitforge.workspace import Workspace

if TYPE_CHECKING:
    from traitforge.annotators.backends import PullReport, PushReport, SimulationReport
    from traitforge.app.loop import LoopResult
    from traitforge.curation.pipeline import CurationReport
    from traitforge.curation.scorers import TrainResult
    from traitforge.reward.training import FitResult
    from traitforge.schemas import LoopRound
    from traitforge.schemas.results import AuditResult


def print_curation(report: CurationReport) -> None:
    print_training(report.trained)
    table = Table(title="Curation")
    table.add_column("step")
    table.add_column("result", overflow="fold")
    table.add_row("candidates", str(report.candidates))
    table.add_row("embedded texts", fmt_counts(report.embedded))
    table.add_row("flagged", fmt_counts(report.flagged))
    table.add_row(
        "duplicates",
        fmt_counts(report.duplicates) + "  (prompt: never paired; "
        "corpus: same response to other prompts, reported only)",
    )
    table.add_row("scores", fmt_counts(report.scored))
    new_tasks = fmt_counts(report.new_tasks)
    if report.unscored_tasks and report.unscored_by:
        how = UNSCORED_CHOICE[report.unscored_by]
        new_tasks += f" (no scores yet: {report.unscored_tasks} {how})"
    table.add_row("new tasks", new_tasks)
    if report.acquisition:
        table.add_row("scored by", report.acquisition)
    table.add_row(
        f"tasks in round {report.round}", f"{report.tasks_in_round} of {report.budget} wanted"
    )
    console.print(table)
    if len(report.trait_shares) > 1:  # one trait takes the whole budget: nothing to explain
        rule = report.trait_budget
        console.print(Text(f"Budget per trait ({rule}):"), soft_wrap=True)
        for share in report.trait_shares:
            console.print(Text(f"  {share.line()}"), soft_wrap=True)
    for note in report.scoring_notes:
        console.print(Text(note), soft_wrap=True)
    if report.selection_note:
        console.print(Text(f"Fewer tasks than wanted: {report.selection_note}"), soft_wrap=True)
    for warning in report.warnings:
        console.print(Text(f"warning: {warning}"), soft_wrap=True)
    if report.rechecks is not None:
        console.print(Text(report.rechecks.summary()), soft_wrap=True)


def print_rechecks_recorded(flagged: int, path: Path) -> None:
    """After `audit --recheck`: what the next `curate` will send back."""
    console.print(
        Text.assemble(
            f"re-check: {plural(flagged, 'flagged pair')} recorded in ",
            bold(path),
            "; the next `traitforge curate` (or loop round) sends those not sent yet back to "
            "annotators, first within its budget.",
        ),
        soft_wrap=True,
    )


def print_training(results: list[TrainResult]) -> None:
    if not results:
        return
    table = Table(title="Trait classifiers (cross-validated by prompt)")
    for column in ("scorer", "trait", "examples", "positives", "AUROC", "accuracy", "Brier"):
        table.add_column(column, justify="left" if column in ("scorer", "trait") else "right")
    for r in results:
        m = r.metrics
        table.add_row(
            r.path.parent.name,
            r.trait,
            str(r.examples),
            str(r.positives),
            f"{m['auroc']:.3f}",
            f"{m['accuracy']:.3f}",
            f"{m['brier']:.3f}",
        )
    console.print(table)


def print_fits(fits: list[FitResult]) -> None:
    """Each trained model: distinct pairs and epochs apart, and the epoch cap when it held."""
    for fit in fits:
        console.print(
            f"{fit.name}: {fit.summary()} in {fit.seconds:.1f} s "
            f"({fit.pairs_per_second:.1f} pairs/s over all epochs, {fit.device}, "
            f"{fit.precision}), final loss {fit.train_loss:.4f}",
            highlight=False,
            soft_wrap=True,
        )


def _accuracy_cell(accuracy: float, ci: list[float] | None, pairs: int) -> tuple[str, str | None]:
    """An accuracy cell, and the note on too few pairs for an interval, if any: printed below
    the table, whole, as a cell would wrap it."""
    note = interval_note(pairs)
    return (f"{fmt_pct(accuracy)} (no CI)", note) if note else (fmt_pct_ci(accuracy, ci), None)


def print_evaluation(result: EvaluationResult) -> None:
    table = Table(title=f"Reward model on {result.pairs} pairs")
    for column in ("trait", "pairs", "accuracy (CI)", "always-longer"):
        table.add_column(column, justify="left" if column == "trait" else "right")
    shortcuts = result.shortcuts
    rows = [
        (trait, row.pairs, row.accuracy, row.accuracy_ci, row.length_baseline)
        for trait, row in result.per_trait.items()
    ]
    rows.append(
        (
            "all",
            result.pairs,
            result.accuracy,
            result.accuracy_ci,
            shortcuts.length_baseline_accuracy,
        )
    )
    notes = []
    for name, pairs, accuracy, ci, baseline in rows:
        shown, note = _accuracy_cell(accuracy, ci, pairs)
        table.add_row(name, str(pairs), shown, fmt_pct(baseline))
        if note:
            notes.append(f"{name}: {note}")
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True)
    console.print(
        f"Chosen is the shorter answer: {fmt_pct(shortcuts.accuracy_chosen_shorter)} accuracy "
        f"on {shortcuts.chosen_shorter_pairs} pairs; Spearman(reward, length) "
        f"{fmt_num(shortcuts.length_reward_spearman)}\n"
        + "\n".join(
            f"Adding {name}: reward shift {fmt_num(v.mean_shift, sign=True)} sd, "
            f"flips {fmt_pct(v.flip_rate)}"
            for name, v in shortcuts.format.items()
        )
        + f"\nCalibration: ECE {fmt_num(result.calibration.ece)}, "
        f"Brier {fmt_num(result.calibration.brier)}",
        highlight=False,
    )
    if result.style_hard is not None:
        console.print(
            f"Style-hard accuracy {style_hard_line(result.style_hard)}",
            highlight=False,
            soft_wrap=True,
        )
    if result.skipped:
        console.print("Skipped, not scored: " + fmt_counts(result.skipped), highlight=False)
    if result.report:
        console.print(Text.assemble("Report: ", bold(result.report)))


def print_matrix(result: MatrixResult) -> None:
    table = Table(title="Cross-trait generalization (rows: model, columns: test pairs)")
    table.add_column("model")
    for trait in result.traits:
        table.add_column(trait, justify="right")
    for name in result.models:
        cells = result.cells[name]
        table.add_row(name, *(fmt_pct(cells[t].accuracy) for t in result.traits))
    console.print(table)
    console.print(Text.assemble("Report: ", bold(result.report)))


def print_loop(result: LoopResult) -> None:
    table = Table(title="Rounds")
    columns = ("round", "selected with", "tasks", "labels", "pairs", "RM accuracy", "longer wins")
    for column in columns:
        table.add_column(column, justify="left" if column == "selected with" else "right")
    notes = []  # below the table, whole: a cell would wrap them
    for r in result.rounds:
        evaluation = r.evaluation
        accuracy = baseline = "none" if r.evaluation_note else "n/a"
        said = []
        if evaluation:
            accuracy, note = _accuracy_cell(
                evaluation.accuracy, evaluation.accuracy_ci, evaluation.pairs
            )
            baseline = fmt_pct(evaluation.shortcuts.length_baseline_accuracy)
            if r.evaluated_on:
                used = ", ".join(f"{name} ({n} pairs)" for name, n in r.evaluated_on.items())
                said.append(f"evaluated on {used}")
            said += [note] if note else []
        if r.evaluation_note and not r.stopped:
            said.append(r.evaluation_note if evaluation else f"no evaluation: {r.evaluation_note}")
        if said:
            notes.append(f"Round {r.round}: " + "; ".join(said))
        table.add_row(
            str(r.round),
            ", ".join(r.selected_with) or "-",
            str(r.tasks),
            str(r.judgements_total),
            "-" if r.stopped else str(sum(r.pairs.values())),
            accuracy,
            baseline,
        )
    console.print(table)
    for note in notes:
        console.print(Text(note), soft_wrap=True)
    last = next((r for r in reversed(result.rounds) if r.evaluation), None)
    if last is not None:
        print_trait_models(last)
    for r in result.rounds:
        if r.stopped:
            console.print(
                Text(f"Round {r.round} stopped (no model trained, no round after it): {r.stopped}"),
                soft_wrap=True,
            )


def print_trait_models(record: LoopRound) -> None:
    """Each trait's reward model in one round: what it learned from, how it did on the
    held-out pairs, beside the length baseline, and whether that is told apart from chance."""
    evaluation = record.evaluation
    assert evaluation is not None
    table = Table(title=f"Reward model per trait, round {record.round} (held-out test pairs)")
    columns = ("trait", "trained on", "test pairs", "accuracy (CI)", "longer wins", "vs chance")
    for column in columns:
        left = column in ("trait", "vs chance")
        # the trait's name whole; the other cells wrap in a narrow terminal
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "trait")
    for trait, row in evaluation.per_trait.items():
        trained = record.training.get(trait)
        shown, _ = _accuracy_cell(row.accuracy, row.accuracy_ci, row.pairs)
        table.add_row(
            Text(trait),
            f"{trained.pairs} pairs" if trained else "-",
            str(row.pairs),
            shown,
            fmt_pct(row.length_baseline),
            versus_chance(row.accuracy, row.accuracy_ci, row.pairs),
        )
    console.print(table)


def print_loop_paths(result: LoopResult) -> None:
    console.print(Text.assemble("Dataset: ", bold(result.dataset)), soft_wrap=True)
    console.print(Text.assemble("Reward model: ", bold(result.model or "none yet")))
    console.print(Text.assemble("Report: ", bold(result.report)), soft_wrap=True)


def print_agreement(report: AgreementResult | None) -> None:
    """Krippendorff's alpha per trait, and each annotator's agreement and gold accuracy."""
    if report is None:
        return
    table = Table(title="Annotator agreement (Krippendorff's alpha)")
    for column in ("trait", "preference (nominal)", "units", "ratings (ordinal)", "units"):
        table.add_column(column, justify="left" if column == "trait" else "right")
    for trait, t in report.traits.items():
        table.add_row(
            trait,
            fmt_num(t.preference_alpha),
            str(t.preference_units),
            fmt_num(t.rating_alpha),
            str(t.rating_units),
        )
    table.add_row("overall", fmt_num(report.preference_alpha), "", fmt_num(report.rating_alpha), "")
    console.print(table)
    people = Table(title="Annotators")
    for column in ("annotator", "answers", "agreement with consensus", "gold accuracy", "flag"):
        people.add_column(column, justify="left" if column in ("annotator", "flag") else "right")
    for who, a in report.annotators.items():
        agreement = "n/a" if a.agreement is None else f"{fmt_num(a.agreement, 2)} of {a.compared}"
        gold = (
            "n/a" if a.gold_accuracy is None else f"{fmt_num(a.gold_accuracy, 2)} of {a.gold_tasks}"
        )
        people.add_row(
            who,
            str(a.answers),
            agreement,
            gold,
            "; ".join(a.reasons) if a.flagged else "",
        )
    console.print(people)


def print_push(report: PushReport, root: Path) -> None:
    if not report.datasets and not report.skipped:
        console.print(
            f"Nothing to push: {root} holds no comparison tasks; select some with "
            f"`traitforge curate --budget N -w {root}`",
            soft_wrap=True,
        )
        return
    table = Table(title=f"Push to {report.url}")
    for column in ("dataset", "tasks", "already there", "sent", "without vector"):
        table.add_column(column, justify="left" if column == "dataset" else "right")
    for d in report.datasets:
        table.add_row(d.dataset, str(d.tasks), str(d.present), str(d.sent), str(d.without_vector))
    console.print(table)
    if report.skipped:
        console.print("Not pushed: " + fmt_counts(dict(report.skipped)), highlight=False)


def print_pull(report: PullReport) -> None:
    table = Table(title=f"Pull from {report.url}")
    table.add_column("judgements")
    table.add_column("count", justify="right")
    for label, n in (
        ("new", report.new),
        ("edited since the last pull", report.changed),
        ("unchanged (pulled before)", report.unchanged),
        ("removed (answer withdrawn)", report.withdrawn),
    ):
        table.add_row(label, str(n))
    for status, n in sorted(report.ignored.items()):
        table.add_row(f"ignored: {status}", str(n))
    for reason, n in sorted(report.dropped.items()):
        table.add_row(f"dropped: {reason}", str(n))
    console.print(table)
    if report.missing_datasets:
        console.print(
            "Not on the server (run `traitforge push`): " + ", ".join(report.missing_datasets),
            highlight=False,
            soft_wrap=True,
        )


def print_simulation(report: SimulationReport) -> None:
    table = Table(title=f"Simulated annotators at {report.url}")
    table.add_column("annotator")
    table.add_column("answers", justify="right")
    for name, n in sorted(report.answered.items()):
        table.add_row(name, str(n))
    console.print(table)
    console.print(
        "Behaviour: " + fmt_counts(dict(report.behaviour)) + ". Run `traitforge pull` to store "
        "the answers.",
        highlight=False,
        soft_wrap=True,
    )
    if report.skipped:
        console.print("Not answered: " + fmt_counts(dict(report.skipped)), highlight=False)


def print_annotation_progress(ws: Workspace) -> None:
    progress = workflows.annotation_progress(ws)
    annotation = ws.config.annotation
    studio = annotation.backend == "label-studio"
    tool = "Label Studio" if studio else "Argilla"
    if isinstance(progress, str):
        console.print(f"{tool} progress unavailable: {progress}", highlight=False, soft_wrap=True)
        return
    each = (annotation.label_studio if studio else annotation.argilla).min_submitted
    for d in progress:
        # Argilla's own progress bar counts completed records only (0% until a record has
        # all its answers): say both, answers and completed records.
        submitted = sum(counts["submitted"] for counts in d.annotators.values())
        table = Table(
            title=f"{tool} {d.dataset}: {submitted} answer{'s' if submitted != 1 else ''} "
            f"submitted; {d.completed} of {d.records} records completed "
            f"({each} answer{'s' if each != 1 else ''} each), {d.pending} pending"
        )
        for column in ("annotator", "submitted", "draft", "discarded"):
            table.add_column(column, justify="left" if column == "annotator" else "right")
        for name, counts in sorted(d.annotators.items()):
            table.add_row(
                name, str(counts["submitted"]), str(counts["draft"]), str(counts["discarded"])
            )
        console.print(table)


def print_ingest(reports: list[IngestReport]) -> None:
    table = Table(title="Ingest", caption="rows: input rows; new / present: candidates")
    table.add_column("file", overflow="fold")
    table.add_column("format")
    for column in ("rows", "new", "present", "rejected", "skipped"):
        table.add_column(column, justify="right")
    for r in reports:
        table.add_row(
            r.path.name,
            r.format,
            str(r.rows_read),
            str(r.new),
            str(r.present),
            str(r.rows_rejected),
            str(r.rows_skipped),
        )
    console.print(table)
    for r in reports:
        for warning in r.warnings:
            console.print(f"warning: {warning}", highlight=False, soft_wrap=True)
        if r.metadata_columns:
            console.print(
                Text(f"{r.path.name}: columns kept as metadata: {', '.join(r.metadata_columns)}"),
                soft_wrap=True,
            )
        if r.restated:
            one = r.restated == 1
            console.print(
                Text(
                    f"{r.path.name}: {r.restated} stored "
                    f"{'candidate states' if one else 'candidates state'} other traits now; "
                    f"{'its' if one else 'their'} traits were updated (ids, scores and tasks "
                    "kept)"
                ),
                soft_wrap=True,
            )
        if isinstance(r, GenerationReport):
            console.print(
                f"{r.path.name}: {r.model} ({r.backend}) wrote {r.samples_generated} of "
                f"{r.samples_requested} samples; {r.samples_done_before} were done before, "
                f"{r.empty} were empty",
                highlight=False,
                soft_wrap=True,
            )
        if r.quarantine:
            reasons = fmt_counts(r.reasons, "{name} ({n})", empty="")
            console.print(
                f"{r.path.name}: set aside: {reasons}. Details: {r.quarantine}",
                highlight=False,
                soft_wrap=True,
            )


def print_export(report: ExportReport) -> None:
    table = Table(title="Export")
    for column in ("trait", "origin", "train", "test"):
        table.add_column(column, justify="right" if column in ("train", "test") else "left")
    for trait, counts in report.counts.items():
        table.add_row(
            trait,
            report.origins.get(trait, "none"),
            str(counts.get("train", 0)),
            str(counts.get("test", 0)),
        )
    for trait, counts in report.ai_feedback.items():
        if sum(counts.values()):
            # Their own rows: pairs no person chose are never shown as human ones.
            table.add_row(
                trait, "ai-feedback", str(counts.get("train", 0)), str(counts.get("test", 0))
            )
    console.print(table)
    if report.judge_agreement is not None:
        console.print(
            f"Trait judge ({report.judge_agreement.scorer}) agreement with the annotators' "
            "majority: "
            + ", ".join(
                f"{name} {fmt_pct_ci(t.share, t.share_ci)} on {t.compared} pairs "
                f"({t.annotator_ties} annotator ties, {t.judge_ties} judge ties, "
                f"{t.unscored} unscored left out)"
                for name, t in report.judge_agreement.traits.items()
            ),
            highlight=False,
            soft_wrap=True,
        )
    if report.drops:
        console.print(
            "Dropped: " + fmt_counts(report.drops, "{name} ({n})"),
            highlight=False,
            soft_wrap=True,
        )
    tied = {name: t for name, t in report.ties.items() if t.tied}
    if tied:
        # Ties are answers, not drops: printed apart so neither count hides in the other.
        console.print(
            "Tied (answers, not drops): "
            + ", ".join(
                f"{name} {t.tied} of {t.answers} answers ({fmt_pct(t.share)}), "
                f"{t.tasks} {'task' if t.tasks == 1 else 'tasks'} with only ties"
                for name, t in sorted(tied.items())
            ),
            highlight=False,
            soft_wrap=True,
        )
    console.print(
        Text.assemble(
            "Dataset: ",
            bold(report.out),
            f" ({report.total} pairs; load with datasets.load_from_disk)",
        ),
        soft_wrap=True,
    )


def print_candidates(listing: workflows.CandidateListing, root: Path) -> None:
    """One row per candidate; user text as Text (never markup). One prompt's candidates are
    shown in full, a listing of all prompts as one-line excerpts."""
    shown = listing.candidates
    if not shown:
        console.print(
            Text.assemble(
                "No candidates in ",
                bold(root),
                " yet: add some with `traitforge ingest --workspace ",
                str(root),
                " --format FORMAT PATH`.",
            ),
            soft_wrap=True,
        )
        return
    full = listing.prompt_id is not None
    if full:
        console.print(Text.assemble("Prompt ", bold(listing.prompt_id)))
        console.print(Text(prompt_text(shown[0].prompt)), soft_wrap=True)
    caption = f"{len(shown)} of {listing.total} candidates"
    if len(shown) < listing.total:
        caption += "; --limit 0 shows all"
    table = Table(title="Candidates", caption=caption)
    # One prompt's candidates share it (printed above); a listing names each one's prompt.
    columns = [] if full else ["prompt", "prompt text"]
    columns += ["source", "model", "traits", "gold", "response"]
    for column in columns:
        # The excerpts take the width left over, the response twice the prompt's share.
        ratio = {"prompt text": 1, "response": 2}.get(column)
        table.add_column(column, overflow="fold", ratio=ratio, no_wrap=column == "prompt")
    for c in shown:
        cells = [] if full else [c.prompt_id[:_ID_SHOWN], _excerpt(prompt_text(c.prompt))]
        cells += [
            c.source,
            c.model or "-",
            ", ".join(c.traits) or "-",
            ", ".join(f"{trait}={value:g}" for trait, value in sorted(c.gold.items())) or "-",
            c.response if full else _excerpt(c.response),
        ]
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)


_ID_SHOWN = 12  # a prefix this long names one prompt among millions; --prompt takes it
_EXCERPT = 80


def _excerpt(text: str) -> str:
    """The start of a text on one line."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 1] + "…"


def print_audit(result: AuditResult, written: Path, limit: int | None) -> None:
    """Per trait: what was audited, the flagged pairs (user text as Text, never markup), at most
    `limit` of them (None: all), and each source's verdict."""
    console.print(
        Text(f"Label audit: {result.folds} folds by prompt; {result.rule}."), soft_wrap=True
    )
    for trait, audit in result.traits.items():
        line = f"{trait}: {audit.pairs} pairs audited"
        if audit.unembedded:
            line += f" ({audit.unembedded} left out: not embedded)"
        if audit.threshold is not None:
            line += (
                f"; the committee agrees with {fmt_pct(audit.committee_share)}, "
                f"t = {fmt_num(audit.threshold)}"
            )
        line += f"; {len(audit.flagged)} flagged"
        console.print(Text(line + (f" ({audit.note})" if audit.note else "")), soft_wrap=True)
        shown = audit.flagged if limit is None else audit.flagged[:limit]
        if shown:
            caption = f"{len(shown)} of {len(audit.flagged)} flagged"
            if len(shown) < len(audit.flagged):
                caption += "; --limit 0 shows all, audit.json holds all"
            table = Table(title=f"Flagged {trait} pairs", caption=caption)
            for column in ("pair", "source", "P(chosen)", "prompt", "chosen", "rejected"):
                table.add_column(
                    column,
                    overflow="fold",
                    ratio=1 if column in ("prompt", "chosen", "rejected") else None,
                )
            for f in shown:
                table.add_row(
                    *(
                        Text(cell)
                        for cell in (
                            f.pair_id[:_ID_SHOWN],
                            f.source,
                            fmt_num(f.p_chosen),
                            _excerpt(f.prompt),
                            _excerpt(f.chosen),
                            _excerpt(f.rejected),
                        )
                    )
                )
            console.print(table)
        if audit.sources:
            table = Table(title=f"{trait} sources, each judged by a model of the others")
            for column in ("source", "pairs", "agree", "mean P(chosen)", "committee", "verdict"):
                table.add_column(column, overflow="fold")
            for v in audit.sources:
                table.add_row(
                    *(
                        Text(cell)
                        for cell in (
                            v.source,
                            str(v.pairs),
                            fmt_pct_ci(v.share, v.share_ci),
                            fmt_num(v.mean_p_chosen),
                            fmt_pct(v.committee_share),
                            v.verdict,
                        )
                    )
                )
            console.print(table)
    console.print(Text.assemble("Written: ", bold(written)), soft_wrap=True)
