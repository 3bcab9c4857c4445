"""What a curate round could not do, each said with what to do about it.

A trait no candidate is for, a trait the round asks no question about, gold checks fewer than
`gold_fraction` asks for, tasks picked at random because nothing was scored: each is a gap a
team would otherwise find only after annotating. Computed from what selection was given and
what it chose, so `curate` and the loop report the same thing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from traitforge.curation.pool import PromptPool, plural
from traitforge.curation.scorers.classifier import MIN_EXAMPLES_PER_CLASS
from traitforge.curation.selection import GoldChecks
from traitforge.reporting import fmt_counts
from traitforge.schemas import Candidate, ComparisonTask, ProjectConfig


@dataclass(frozen=True)
class TraitGap:
    trait: str
    kind: Literal["no-candidates", "no-tasks"]
    message: str  # what happened, then what to do; starts with the trait's name


def trait_gaps(
    config: ProjectConfig,
    prompt_traits: Callable[[Sequence[Candidate]], list[str]],
    eligible: Sequence[Candidate],
    tasks: Sequence[ComparisonTask],
    round_: int,
) -> list[TraitGap]:
    """The project's traits that no eligible candidate is for, or that no task of `round_`
    asks about, in config order. `tasks`: every task, this run's new ones included;
    `prompt_traits`: the selector's rule for which traits a prompt is asked about."""
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for c in eligible:
        by_prompt[c.prompt_id].append(c)
    traits_of = {p: prompt_traits(members) for p, members in by_prompt.items()}
    in_round = [t for t in tasks if t.round == round_]
    asked = Counter(t.trait for t in in_round)
    gaps = []
    for spec in config.traits:
        name = spec.name
        if config.trait_weight(name) == 0:
            naming = sum(any(name in c.traits for c in m) for m in by_prompt.values())
            if naming:
                gaps.append(
                    TraitGap(
                        name,
                        "no-tasks",
                        f"{name}: curation.trait_weights gives it 0, so it is never asked, and "
                        f"the {plural(naming, 'prompt')} whose rows name it "
                        f"{'gets' if naming == 1 else 'get'} no question on it; give it a "
                        "weight above 0 to ask it",
                    )
                )
            continue
        prompts = [p for p, traits in traits_of.items() if name in traits]
        if not prompts:
            gaps.append(
                TraitGap(
                    name,
                    "no-candidates",
                    f"{name}: no candidates are for this trait (no eligible row names it in "
                    "its trait column, and none that names no trait has a gold label for it); "
                    f"add rows with trait: {name} (the column ingest.mapping.trait names), or "
                    "remove it from traits",
                )
            )
        elif not asked[name]:
            gaps.append(
                TraitGap(
                    name,
                    "no-tasks",
                    _unasked(config, name, prompts, traits_of, by_prompt, tasks, in_round, round_),
                )
            )
    return gaps


def _unasked(
    config: ProjectConfig,
    name: str,
    prompts: Sequence[str],
    traits_of: dict[str, list[str]],
    by_prompt: dict[str, list[Candidate]],
    tasks: Sequence[ComparisonTask],
    in_round: Sequence[ComparisonTask],
    round_: int,
) -> str:
    """Why a trait with candidates got no question this round, and what to do."""
    first = [p for p in prompts if traits_of[p][0] == name]
    if not first:
        heavier = sorted({traits_of[p][0] for p in prompts})
        rated = sum(name in t.rated_traits for t in in_round)
        return (
            f"{name}: no task in round {round_} asks about it (rated in "
            f"{plural(rated, 'task')}): each of its {plural(len(prompts), 'prompt')} is also "
            f"for {', '.join(heavier)}, which is asked first; name each row's trait "
            f"(ingest.mapping.trait) so a prompt is asked only about its own, or raise "
            f"curation.trait_weights.{name} above the others"
        )
    pool = PromptPool.count(
        [c for p in first for c in by_prompt[p]], tasks, config.curation.selection
    )
    if not pool.open:
        return f"{name}: no task in round {round_}, as its prompts are closed: {pool.note(1)}"
    spent = fmt_counts(Counter(t.trait for t in in_round), "{name} {n}")
    return (
        f"{name}: no task in round {round_}, though {plural(pool.open, 'prompt')} for it "
        f"{'is' if pool.open == 1 else 'are'} open: the round's {plural(len(in_round), 'task')} "
        f"went to other traits ({spent}); raise --budget, or name each row's trait "
        "(ingest.mapping.trait) so prompts are asked only about theirs"
    )


def gold_gap(checks: GoldChecks | None, fraction: float) -> str | None:
    """What to say when the round got fewer gold checks than `gold_fraction` asks for."""
    if checks is None or checks.made >= checks.wanted:
        return None
    if checks.available == 0:
        having = "no open prompt has"
    else:
        having = f"only {plural(checks.available, 'open prompt')} "
        having += "has" if checks.available == 1 else "have"
    return (
        f"gold checks: {checks.made} of the {checks.wanted} wanted "
        f"(curation.selection.gold_fraction {fraction:g} of {plural(checks.budget, 'task')}): "
        f"{having} candidates whose gold labels differ on the trait asked, so annotators' "
        f"gold accuracy rests on {plural(checks.made, 'check')}; ingest gold-labelled data "
        "for these traits, or lower curation.selection.gold_fraction (0 for none)"
    )


UNSCORED_CHOICE = {"random": "picked at random", "diversity": "chosen for diversity alone"}


def unscored_note(picked: int, scorers: Sequence[str], fallback: str) -> str:
    """What to say when nothing was scored, so selection used `fallback` ('random' or
    'diversity') instead of its strategy."""
    return (
        f"nothing was scored: the scorers in curation.scorers ({', '.join(scorers) or 'none'}) "
        f"gave no calibrated score to any candidate open for selection, so the "
        f"{plural(picked, 'new task')} {'was' if picked == 1 else 'were'} "
        f"{UNSCORED_CHOICE[fallback]}. "
        f"A classifier scorer needs labels ({MIN_EXAMPLES_PER_CLASS} positive and "
        f"{MIN_EXAMPLES_PER_CLASS} negative examples per trait, from gold or judgements): "
        "ingest gold-labelled data, or annotate these tasks, `traitforge pull`, then "
        "`traitforge classifiers train` before the next round"
    )
