"""The dataset card (README.md beside the data): counts, drops, ties, lengths, sources, config."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

import yaml

from traitforge.exports.audit import doubtful_sources, verdict_line
from traitforge.reporting import fmt_ci, fmt_num, fmt_pct, fmt_pct_ci
from traitforge.schemas import (
    AgreementResult,
    JudgeAgreement,
    PreferencePair,
    ProjectConfig,
    TraitTies,
)
from traitforge.schemas.results import AuditResult, LengthPositionFit, LengthPositionResult
from traitforge.workspace import dump_config


def length_stats(pairs: list[PreferencePair]) -> dict[str, float]:
    """Word counts of chosen vs rejected. A large gap warns of a length shortcut."""
    if not pairs:
        return {}
    chosen = [len(p.chosen.split()) for p in pairs]
    rejected = [len(p.rejected.split()) for p in pairs]
    return {
        "chosen_mean_words": round(statistics.fmean(chosen), 2),
        "rejected_mean_words": round(statistics.fmean(rejected), 2),
        "chosen_median_words": float(statistics.median(chosen)),
        "rejected_median_words": float(statistics.median(rejected)),
        "share_chosen_longer": round(
            sum(c > r for c, r in zip(chosen, rejected, strict=True)) / len(pairs), 4
        ),
    }


def render_card(
    config: ProjectConfig,
    splits: Mapping[str, list[PreferencePair]],
    drops: Mapping[str, int],
    origins: Mapping[str, str],
    sources: list[str],
    version: str,
    agreement: AgreementResult | None = None,
    ties: Mapping[str, TraitTies] | None = None,
    judge: JudgeAgreement | None = None,
    length_position: LengthPositionResult | None = None,
    audit: AuditResult | None = None,
    audit_stale: bool = False,
) -> str:
    traits = [t.name for t in config.traits]
    licenses = sorted(
        {config.ingest.sources[s].license for s in sources if s in config.ingest.sources}
    )
    front = {
        "license": licenses or ["other"],
        "task_categories": ["text-classification"],
        "tags": ["preference", "reward-modeling", "traitforge", *traits],
    }
    out = ["---", yaml.safe_dump(front, sort_keys=False).rstrip(), "---", ""]
    out += [
        "# Trait preference pairs",
        "",
        f"Preference pairs for the traits {', '.join(traits)}, exported by traitforge "
        f"{version} in TRL's preference format (`prompt`, `chosen`, `rejected`).",
        "",
        "Load it with `datasets.load_from_disk(PATH)`. The split is by prompt: no prompt "
        "appears in both splits.",
        "",
    ]

    out += [
        "## Pairs per trait and split",
        "",
        "| trait | origin | " + " | ".join(splits) + " | total |",
        "|---|---|" + "---:|" * (len(splits) + 1),
    ]
    ai_rows = []
    for trait in traits:
        for ai in (False, True):
            counts = [
                sum(p.trait == trait and (p.origin == "ai-feedback") == ai for p in ps)
                for ps in splits.values()
            ]
            if ai and not sum(counts):
                continue
            origin = "ai-feedback" if ai else origins.get(trait, "none")
            row = f"| {trait} | {origin} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |"
            (ai_rows if ai else out).append(row)
    out += ai_rows
    out.append("")
    if ai_rows:
        out += [
            "Rows with origin `ai-feedback` are pairs from the trait judge's ratings, for "
            "prompts and traits that have no annotator answer or gold label: no person chose "
            "them. Filter them out with the `origin` column to train on human pairs only.",
            "",
        ]

    out += ["## Dropped", "", "Data that did not become a pair, and why.", ""]
    if drops:
        out += ["| reason | count |", "|---|---:|"]
        out += [f"| {reason} | {n} |" for reason, n in sorted(drops.items())]
    else:
        out.append("Nothing was dropped.")
    out.append("")

    if ties:
        out += _ties_section(ties)

    if agreement is not None:
        out += _agreement_section(agreement, config.annotation.aggregation.method)

    if judge is not None:
        out += _judge_section(judge)

    out += [
        "## Length of chosen vs rejected (words)",
        "",
        "If chosen responses are usually longer, a reward model can learn length instead "
        "of the trait: check `share_chosen_longer` before training.",
        "",
        "| trait | split | chosen mean | rejected mean | chosen median | rejected median "
        "| share chosen longer |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for trait in traits:
        for name, ps in splits.items():
            stats = length_stats([p for p in ps if p.trait == trait])
            if stats:
                out.append(
                    f"| {trait} | {name} | {stats['chosen_mean_words']} | "
                    f"{stats['rejected_mean_words']} | {stats['chosen_median_words']} | "
                    f"{stats['rejected_median_words']} | {stats['share_chosen_longer']} |"
                )
    out.append("")

    if length_position is not None:
        out += length_position_section(length_position)

    if audit is not None:
        out += audit_section(audit, audit_stale)

    out += ["## Sources", "", "| source | license | attribution |", "|---|---|---|"]
    for source in sources:
        info = config.ingest.sources.get(source)
        if info is None:
            out.append(f"| {source} | not declared | add it under `ingest.sources.{source}` |")
        else:
            link = f" ({info.url})" if info.url else ""
            out.append(f"| {source} | {info.license} | {info.attribution}{link} |")
    out += ["", "## Annotation guidelines", ""]
    out += [f"- {t.name}: guideline version `{t.guideline_version}`" for t in config.traits]
    out += ["", "## Resolved config", "", "```yaml", dump_config(config).rstrip(), "```", ""]
    return "\n".join(out)


def _ties_section(ties: Mapping[str, TraitTies]) -> list[str]:
    """How often annotators put the candidates level: answers, not drops."""
    out = [
        "## Ties",
        "",
        "Answers to a trait's preference question that put every candidate level: neither is "
        "better. A tie is an answer, not a drop: it counts in the agreement figures, and a task "
        "whose every answer tied gives no pair.",
        "",
        "| trait | answers | tied | share tied | tasks tied |",
        "|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {name} | {t.answers} | {t.tied} | {fmt_pct(t.share)} | {t.tasks} |"
        for name, t in ties.items()
    ]
    out.append("")
    return out


def _agreement_section(agreement: AgreementResult, method: str) -> list[str]:
    """Krippendorff's alpha and the flagged annotators: how far to trust the votes."""
    out = [
        "## Annotator agreement",
        "",
        f"Votes aggregated by `{method}`. Krippendorff's alpha: nominal on the preference "
        "question, ordinal on ratings; n/a where it is undefined (fewer than two annotators "
        "per unit, or no variation). Overall: preference "
        f"{fmt_num(agreement.preference_alpha)}, ratings {fmt_num(agreement.rating_alpha)}.",
        "",
        "| trait | preference alpha | units | rating alpha | units |",
        "|---|---:|---:|---:|---:|",
    ]
    out += [
        f"| {name} | {fmt_num(t.preference_alpha)} | {t.preference_units} | "
        f"{fmt_num(t.rating_alpha)} | {t.rating_units} |"
        for name, t in agreement.traits.items()
    ]
    flagged = [(who, q) for who, q in agreement.annotators.items() if q.flagged]
    out.append("")
    out.append(
        f"{len(agreement.annotators)} annotators, {len(flagged)} flagged"
        + (":" if flagged else ".")
    )
    out += [f"- {who}: {'; '.join(q.reasons)}" for who, q in flagged]
    out.append("")
    return out


def _judge_section(judge: JudgeAgreement) -> list[str]:
    """How often the trait judge orders a pair as the annotators' majority does."""
    out = [
        "## Trait judge agreement with annotators",
        "",
        f"`{judge.scorer}` against the annotators' majority on each answered pair of "
        "candidates: the share of pairs it orders the same way, with its 95% Wilson interval. "
        "Pairs whose votes split evenly, that the judge rated level, or that it did not rate "
        "are left out and counted.",
        "",
        "| trait | agreement | 95% CI | pairs | annotator ties | judge ties | unscored |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    out += [
        f"| {name} | {fmt_pct(t.share)} | {fmt_ci(t.share_ci)} | {t.compared} | "
        f"{t.annotator_ties} | {t.judge_ties} | {t.unscored} |"
        for name, t in judge.traits.items()
    ]
    out.append("")
    return out


def audit_section(audit: AuditResult, stale: bool) -> list[str]:
    """The latest label audit's source verdicts, when it scored these very pairs."""
    out = ["## Label audit", ""]
    if stale:
        return [
            *out,
            "The latest label audit (`traitforge audit`) scored an earlier export with other "
            "pairs, so its verdicts are left out here; run `traitforge audit` and export again "
            "to see them.",
            "",
        ]
    flagged = sum(len(t.flagged) for t in audit.traits.values())
    judged = [v for t in audit.traits.values() for v in t.sources if v.share is not None]
    out += [
        "`traitforge audit` judged each source of a trait by a model fitted on the trait's "
        "other sources only (on the frozen embeddings curation cached), and a cross-fitted "
        f"committee flagged {flagged} pair(s) whose label it confidently disagrees with "
        "(listed in the workspace's audit.json).",
        "",
    ]
    doubtful = doubtful_sources(audit)
    if doubtful:
        out += [
            "These sources' labels disagree with what their trait's other sources teach; "
            "check their polarity and columns before training on them:",
            "",
            *(f"- {verdict_line(trait, v)}" for trait, v in doubtful),
            "",
        ]
    elif judged:
        out += [f"All {len(judged)} source(s) it could judge are consistent with the others.", ""]
    else:
        out += [
            "No source could be judged: each needs another source of its trait, and both "
            f"at least {audit.min_source_pairs} pairs.",
            "",
        ]
    return out


def length_position_section(result: LengthPositionResult) -> list[str]:
    """How far the annotators' own votes follow length and position, per trait and annotator."""
    out = [
        "## Length and position in the answers",
        "",
        "Every two-way comparison an annotator decided (ties are counted and left out) is one "
        "vote: did the response shown first win? A logistic regression of that on the length "
        "ratio (words, first over second) separates two shortcuts a reward model can learn "
        "from these votes. *Position* is the chance that the first-shown response wins when "
        "both are equally long: 50% means the order did not matter. *Length odds ratio* is "
        "how the odds of winning change when a response is twice as long: 1 means length did "
        "not sway the votes, 2 that doubling the length doubled the odds. *Longer won* is the "
        "share of the votes between responses of different length that the longer one won, "
        "and *length pseudo-R²* (McFadden) is how much of the votes length explains beyond "
        "position, from 0 (nothing) to 1 (everything). Intervals are 95% Wald intervals; a fit "
        f"needs at least {result.min_votes} decided votes.",
        "",
    ]
    for title, fits in (("trait", result.traits), ("annotator", result.annotators)):
        if not fits:
            out += [f"No {title} has a decided two-way vote yet.", ""]
            continue
        out += [
            f"| {title} | votes | ties | first shown won | position [95% CI] "
            "| length odds ratio [95% CI] | longer won | length pseudo-R² | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        out += [f"| {name} | {_fit_cells(fit)} |" for name, fit in fits.items()]
        out.append("")
    return out


def _fit_cells(fit: LengthPositionFit) -> str:
    ratio = fmt_num(fit.length_odds_ratio, 2)
    if fit.length_odds_ratio_ci:
        low, high = fit.length_odds_ratio_ci
        ratio += f" [{fmt_num(low, 2)}, {fmt_num(high, 2)}]"
    cells = [
        str(fit.votes),
        str(fit.ties),
        fmt_pct(fit.first_wins),
        fmt_pct_ci(fit.position, fit.position_ci),
        ratio,
        fmt_pct(fit.longer_won),
        fmt_num(fit.length_pseudo_r2),
        fit.note or "",
    ]
    return " | ".join(cells)
