"""Export: the workspace's preferences as pairs, a split DatasetDict, and its card."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from traitforge.annotators.aggregation import (
    DropCounter,
    RankedGroup,
    TaskAnswers,
    TieCounter,
    answers_by_task,
    judgement_groups,
    without_annotators,
)
from traitforge.annotators.agreement import agreement_report
from traitforge.annotators.biases import length_position_report, vote_rows
from traitforge.annotators.records import group_tasks
from traitforge.curation.scorers.judge import KEY as JUDGE_KEY
from traitforge.errors import ExportError
from traitforge.exports.audit import export_fingerprint
from traitforge.exports.card import length_stats, render_card
from traitforge.exports.dataset import SPLITS, build_dataset_dict, quiet_datasets, write_copies
from traitforge.exports.judge_agreement import judge_agreement, judge_scores
from traitforge.exports.preferences import gold_groups, judge_groups
from traitforge.exports.split import split_of
from traitforge.exports.strategies import balance_lengths, pairs_from_group
from traitforge.schemas import (
    AgreementResult,
    ComparisonTask,
    ExportConfig,
    JudgeAgreement,
    PreferencePair,
    ProjectConfig,
    TraitTies,
)
from traitforge.schemas.config import COPY_FORMATS, Origin, parse_strategy
from traitforge.schemas.results import AuditResult, LengthPositionResult
from traitforge.workspace import Store
from traitforge.workspace.files import EXPORT_FOLDER, atomic_directory, check_output_folder


@dataclass
class ExportReport:
    out: Path
    counts: dict[str, dict[str, int]]  # trait -> split -> human pairs (gold or judgements)
    drops: dict[str, int]
    origins: dict[str, str]  # trait -> "gold" | "judgements" | "none"
    agreement: AgreementResult | None = None  # when pairs come from judgements
    ties: dict[str, TraitTies] = field(default_factory=dict)  # trait -> ties among the answers
    files: list[Path] = field(default_factory=list)
    # trait -> split -> pairs from the trait judge's ratings (export.ai_feedback), kept apart
    # from `counts` so they are never taken for human pairs; {} when the setting is off.
    ai_feedback: dict[str, dict[str, int]] = field(default_factory=dict)
    judge_agreement: JudgeAgreement | None = None  # once the judge scored answered tasks
    # Length and position bias in the votes, per trait and annotator; None without judgements.
    length_position: LengthPositionResult | None = None

    @property
    def total(self) -> int:
        """Every pair in the dataset, AI-feedback ones included."""
        return sum(sum(c.values()) for c in (*self.counts.values(), *self.ai_feedback.values()))


@dataclass
class _Built:
    pairs: list[PreferencePair]
    drops: DropCounter
    origins: dict[str, str]
    agreement: AgreementResult | None  # None when there are no judgements
    ties: dict[str, TraitTies]
    judge_agreement: JudgeAgreement | None = None
    length_position: LengthPositionResult | None = None


def build_pairs(
    store: Store,
    config: ProjectConfig,
    *,
    origin: Origin | None = None,
    strategy: str | None = None,
    trait_strategies: Mapping[str, str] | None = None,
) -> tuple[list[PreferencePair], DropCounter, dict[str, str]]:
    """Every pair the config's strategy yields, per trait, with drop counts and origins.
    `origin`, `strategy` and `trait_strategies` replace those export settings for this call."""
    built = _build(store, _overridden(config, origin, strategy, trait_strategies))
    return built.pairs, built.drops, built.origins


def _overridden(
    config: ProjectConfig,
    origin: Origin | None = None,
    strategy: str | None = None,
    trait_strategies: Mapping[str, str] | None = None,
) -> ProjectConfig:
    """The config with export settings replaced, validated like a config file's."""
    changes: dict[str, object] = {"origin": origin, "strategy": strategy}
    if trait_strategies is not None:
        changes["trait_strategies"] = dict(trait_strategies)
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return config
    export = ExportConfig.model_validate({**config.export.model_dump(), **changes})
    return config.model_copy(update={"export": export})


def _build(store: Store, config: ProjectConfig) -> _Built:
    candidates = {c.id: c for c in store.candidates()}
    drops = DropCounter()
    ties = TieCounter()
    pairs: dict[str, PreferencePair] = {}
    origins: dict[str, str] = {}
    tasks = list(store.tasks())
    judgements = list(store.judgements())
    answers = answers_by_task(tasks, judgements, candidates, drops)
    settings = config.annotation.aggregation
    agreement = length_position = None
    if answers:
        # Measured on every answer, flagged annotators included: flagging needs their answers.
        agreement = agreement_report(tasks, judgements, candidates.values(), config)
        rows = vote_rows(tasks, judgements, candidates, config.traits, _shown(store, tasks, config))
        length_position = length_position_report(rows, [t.name for t in config.traits])
        if settings.exclude_flagged:
            answers = without_annotators(answers, agreement.flagged, drops)
    judged = judge_scores(store.scores())
    ai_drops = DropCounter()
    for trait in config.traits:
        groups = []
        if config.export.origin in ("auto", "judgements"):
            groups = judgement_groups(
                answers, candidates, trait, drops, method=settings.method, ties=ties
            )
        if not groups and config.export.origin in ("auto", "gold"):
            groups = gold_groups(candidates.values(), trait)
        origins[trait.name] = groups[0].origin if groups else "none"
        if config.export.ai_feedback:
            groups += judge_groups(
                candidates.values(), trait, judged, _human_prompts(trait.name, groups, answers)
            )
        strategy = config.export.strategy_for(trait.name)
        found: dict[str, PreferencePair] = {}
        for group in groups:
            counter = ai_drops if group.origin == "ai-feedback" else drops
            for pair in pairs_from_group(group, strategy, counter):
                if pair.id in pairs or pair.id in found:
                    counter["same pair from another task"] += 1
                else:
                    found[pair.id] = pair
        if parse_strategy(strategy)[0] == "length-balanced":
            # Human and AI-feedback pairs apart: each must be balanced for whoever filters
            # on `origin`.
            human = [p for p in found.values() if p.origin != "ai-feedback"]
            judged_pairs = [p for p in found.values() if p.origin == "ai-feedback"]
            found = {
                p.id: p
                for p in balance_lengths(human, drops) + balance_lengths(judged_pairs, ai_drops)
            }
        pairs.update(found)
    # AI-feedback drops keep their own label: a reader must never take them for human data.
    for reason, n in ai_drops.items():
        drops[f"ai-feedback: {reason}"] += n
    pairs_by_id = sorted(pairs.values(), key=lambda p: p.id)
    judge = judge_agreement(answers, candidates, config.traits, judged)
    return _Built(pairs_by_id, drops, origins, agreement, ties.by_trait(), judge, length_position)


def _shown(
    store: Store, tasks: Sequence[ComparisonTask], config: ProjectConfig
) -> dict[str, list[str]]:
    """Task id -> candidate ids in the order annotators saw them, as pushed."""
    shown: dict[str, list[str]] = {}
    for name in group_tasks(tasks, config.annotation.argilla.dataset):
        shown.update(store.presented_orders(name))
    return shown


def _human_prompts(trait: str, groups: Sequence[RankedGroup], answers: TaskAnswers) -> set[str]:
    """Prompts with human data on `trait`: gold or answered groups, and answered tasks on it
    (tied ones too: a tie is the annotators' answer, which the judge must not overrule)."""
    prompts = {g.prompt_id for g in groups}
    prompts |= {
        task.prompt_id
        for task, _ in answers.values()
        if trait == task.trait or trait in task.rated_traits
    }
    return prompts


def export_dataset(
    store: Store,
    config: ProjectConfig,
    out: Path,
    version: str,
    copies: Sequence[str] | None = None,
    *,
    strategy: str | None = None,
    overwrite: bool = False,
    home: Path | None = None,
    audit: AuditResult | None = None,
) -> ExportReport:
    """Build pairs, store them, and write DIR atomically: a killed export leaves the previous
    DIR (or none) in place, never a half-written one. DIR must be new, empty or an earlier
    export (see `check_output_folder` for `overwrite` and `home`); that is checked, like the
    copies, before anything is stored or created. `copies` (formats) replaces export.copies
    and `strategy` export.strategy for this export; the provenance records the strategy used.
    `audit` (the workspace's latest label audit) puts its source verdicts in the card when it
    scored these very pairs, and says it is stale when not."""
    copies = list(copies or config.export.copies)
    unknown = [f for f in copies if f not in COPY_FORMATS]
    if unknown:
        raise ExportError(
            f"unknown copy format(s) {unknown}; expected any of {list(COPY_FORMATS)} "
            "(--copy or export.copies)"
        )
    config = _overridden(config, strategy=strategy)
    check_output_folder(out, EXPORT_FOLDER, overwrite=overwrite, home=home)
    built = _build(store, config)
    pairs, drops, origins = built.pairs, built.drops, built.origins
    # Agreement figures describe the pairs only when some of them come from judgements.
    agreement = built.agreement if "judgements" in origins.values() else None
    if not pairs:
        tied = sum(t.tied for t in built.ties.values())
        raise ExportError(
            f"no pairs to export (drops: {dict(drops) or 'none'}; answers that tied every "
            f"candidate: {tied}). Ingest candidates with gold "
            "labels (e.g. `traitforge ingest --format truthfulqa FILE`) or pull annotator "
            "judgements first; with export.origin: judgements, only annotated tasks count"
        )
    with store.transaction():
        store.replace_pairs(pairs)

    splits: dict[str, list[PreferencePair]] = {name: [] for name in SPLITS}
    for pair in pairs:
        splits[split_of(pair.prompt_id, config.export.seed, config.export.test_fraction)].append(
            pair
        )
    dataset_dict = build_dataset_dict(splits)
    sources = sorted({s for p in pairs for s in p.provenance.sources})
    counts = _counts(config, splits, human=True)
    ai_feedback = _counts(config, splits, human=False) if config.export.ai_feedback else {}
    provenance = {
        "traitforge_version": version,
        "config": config.model_dump(mode="json"),
        "counts": counts,
        "drops": dict(sorted(drops.items())),
        "ties": {name: t.model_dump(mode="json") for name, t in built.ties.items()},
        "origins": origins,
        "sources": sources,
        "guideline_versions": {t.name: t.guideline_version for t in config.traits},
        "annotators": sorted({a for p in pairs for a in p.provenance.annotators}),
        "simulated_annotators": any(p.provenance.simulated for p in pairs),
        "length": {
            t.name: length_stats([p for p in pairs if p.trait == t.name]) for t in config.traits
        },
        "aggregation_method": config.annotation.aggregation.method if agreement else None,
        "agreement": agreement.model_dump(mode="json") if agreement else None,
        "ai_feedback": {"scorer": JUDGE_KEY, "counts": ai_feedback} if ai_feedback else None,
        "judge_agreement": built.judge_agreement.model_dump(mode="json")
        if built.judge_agreement
        else None,
        "length_position": built.length_position.model_dump(mode="json")
        if built.length_position
        else None,
    }
    report = ExportReport(
        out=out,
        counts=counts,
        drops=dict(drops),
        origins=origins,
        agreement=agreement,
        ties=built.ties,
        ai_feedback=ai_feedback,
        judge_agreement=built.judge_agreement,
        length_position=built.length_position,
    )
    with (
        atomic_directory(out, EXPORT_FOLDER, overwrite=overwrite, home=home) as staging,
        quiet_datasets(),
    ):
        dataset_dict.save_to_disk(str(staging), num_shards=dict.fromkeys(SPLITS, 1))
        report.files = write_copies(dataset_dict, staging, copies)
        (staging / "README.md").write_text(
            render_card(
                config,
                splits,
                drops,
                origins,
                sources,
                version,
                agreement,
                ties=built.ties,
                judge=built.judge_agreement,
                length_position=built.length_position,
                audit=audit,
                audit_stale=audit is not None and audit.export != export_fingerprint(pairs),
            ),
            encoding="utf-8",
        )
        (staging / "provenance.json").write_text(
            json.dumps(provenance, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    report.files = [out / f.relative_to(staging) for f in report.files]
    return report


def _counts(
    config: ProjectConfig, splits: Mapping[str, list[PreferencePair]], human: bool
) -> dict[str, dict[str, int]]:
    """trait -> split -> pairs: human ones (gold or judgements), or AI-feedback ones."""
    return {
        t.name: {
            name: sum(p.trait == t.name and (p.origin != "ai-feedback") == human for p in ps)
            for name, ps in splits.items()
        }
        for t in config.traits
    }
