"""How far annotators agree, and which annotators to distrust.

Krippendorff's alpha (the `krippendorff` package) measures agreement beyond chance: nominal on
the preference question (per candidate pair, first, second or tie: a tie is a value of its own,
so a tie beside a vote for A is a disagreement), ordinal on ratings. Per
annotator, agreement with the consensus of the *other* annotators and accuracy on gold-check
tasks; an annotator below `AggregationConfig.min_agreement` or `min_gold_accuracy` is flagged,
and aggregation may leave them out (`exclude_flagged`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping
from itertools import combinations
from typing import Literal

import numpy as np

from traitforge.annotators.aggregation import DropCounter, annotator_values, answers_by_task
from traitforge.schemas import (
    AgreementResult,
    AnnotatorQuality,
    Candidate,
    ComparisonTask,
    Judgement,
    ProjectConfig,
    TraitAgreement,
)

# Nominal codes of one annotator's answer on one candidate pair (first, second in task order).
FIRST, SECOND, TIE = 0, 1, 2

# unit -> annotator -> value: the reliability data before it becomes a matrix.
Units = Mapping[Hashable, Mapping[str, float]]


def krippendorff_alpha(units: Units, level: Literal["nominal", "ordinal"]) -> float | None:
    """Alpha over the units answered by at least two annotators; None where it is undefined
    (no such unit, or a single value in the whole data: no variation to agree on)."""
    import krippendorff

    pairable = {u: v for u, v in units.items() if len(v) >= 2}
    if not pairable:
        return None
    if len({x for v in pairable.values() for x in v.values()}) < 2:
        return None
    coders = sorted({a for v in pairable.values() for a in v})
    keys = sorted(pairable, key=repr)
    matrix = np.full((len(coders), len(keys)), np.nan)
    for j, key in enumerate(keys):
        for a, value in pairable[key].items():
            matrix[coders.index(a), j] = value
    try:
        alpha = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
    except (ValueError, ZeroDivisionError):
        return None
    return alpha if math.isfinite(alpha) else None


def agreement_report(
    tasks: Iterable[ComparisonTask],
    judgements: Iterable[Judgement],
    candidates: Iterable[Candidate],
    config: ProjectConfig,
) -> AgreementResult:
    """Alpha per trait and overall, and each annotator's agreement and gold accuracy."""
    by_id = {c.id: c for c in candidates}
    answers = answers_by_task(tasks, judgements, by_id, DropCounter())
    # Unreadable answers are dropped and counted by the export; here they simply don't count.
    ignored = DropCounter()
    preference: dict[str, dict[Hashable, dict[str, float]]] = defaultdict(dict)
    comparisons: dict[Hashable, dict[str, float]] = {}
    ratings: dict[str, dict[Hashable, dict[str, float]]] = defaultdict(dict)
    scaled: dict[Hashable, dict[str, float]] = {}
    gold: dict[str, list[float]] = defaultdict(list)
    answered: Counter[str] = Counter()
    traits = {t.name: t for t in config.traits}

    for task_id in sorted(answers):
        task, task_answers = answers[task_id]
        present = [c for c in task.candidate_ids if c in by_id]
        for judgement in task_answers:
            who = judgement.annotator_id
            answered[who] += 1
            for trait in config.traits:
                if trait.name != task.trait and trait.name not in task.rated_traits:
                    continue
                values = annotator_values(judgement, task, trait, set(present), ignored)
                for first, second in combinations([c for c in present if c in values], 2):
                    unit = (task.id, trait.name, first, second)
                    code = _code(values[first], values[second])
                    comparisons.setdefault(unit, {})[who] = code
                    if trait.name == task.trait:
                        preference[trait.name].setdefault(unit, {})[who] = code
            if task.gold_check and task.trait in traits:
                values = annotator_values(
                    judgement, task, traits[task.trait], set(present), ignored
                )
                accuracy = _gold_accuracy(values, [by_id[c] for c in present], task.trait, config)
                if accuracy is not None:
                    gold[who].append(accuracy)
            for candidate_id, given in judgement.ratings.items():
                if candidate_id not in present:
                    continue
                for name, rating in given.items():
                    trait = traits.get(name)
                    if trait is None or not trait.scale.contains(rating):
                        continue
                    unit = (task.id, candidate_id, name)
                    ratings[name].setdefault(unit, {})[who] = rating
                    # Pooled over traits whose scales differ, so on a common [0, 1] footing.
                    span = trait.scale.max - trait.scale.min
                    scaled.setdefault(unit, {})[who] = (rating - trait.scale.min) / span

    trait_figures = {
        t.name: TraitAgreement(
            preference_alpha=krippendorff_alpha(preference[t.name], "nominal"),
            preference_units=sum(len(v) >= 2 for v in preference[t.name].values()),
            rating_alpha=krippendorff_alpha(ratings[t.name], "ordinal"),
            rating_units=sum(len(v) >= 2 for v in ratings[t.name].values()),
        )
        for t in config.traits
    }
    pooled = {u: v for per_trait in preference.values() for u, v in per_trait.items()}
    consensus = _consensus_agreement(comparisons)
    settings = config.annotation.aggregation
    annotators = {}
    for who in sorted(answered):
        matched, compared = consensus.get(who, (0, 0))
        agreement = matched / compared if compared else None
        accuracy = sum(gold[who]) / len(gold[who]) if gold[who] else None
        reasons = []
        if agreement is not None and agreement < settings.min_agreement:
            reasons.append(
                f"agreement with the consensus {agreement:.2f} < min_agreement "
                f"{settings.min_agreement:g} ({compared} units)"
            )
        if accuracy is not None and accuracy < settings.min_gold_accuracy:
            reasons.append(
                f"gold accuracy {accuracy:.2f} < min_gold_accuracy "
                f"{settings.min_gold_accuracy:g} ({len(gold[who])} gold tasks)"
            )
        annotators[who] = AnnotatorQuality(
            answers=answered[who],
            agreement=agreement,
            compared=compared,
            gold_accuracy=accuracy,
            gold_tasks=len(gold[who]),
            flagged=bool(reasons),
            reasons=tuple(reasons),
        )
    return AgreementResult(
        preference_alpha=krippendorff_alpha(pooled, "nominal"),
        rating_alpha=krippendorff_alpha(scaled, "ordinal"),
        traits=trait_figures,
        annotators=annotators,
    )


def _code(first: float, second: float) -> int:
    if first > second:
        return FIRST
    return SECOND if second > first else TIE


def _consensus_agreement(units: Units) -> dict[str, tuple[int, int]]:
    """Per annotator, (units matching the others' majority, units where the others had one).

    The consensus leaves the annotator out: with self included, a lone annotator would agree
    with their own vote, and a random one among three would look better than they are.
    """
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for answers in units.values():
        for who, value in answers.items():
            others = Counter(v for a, v in answers.items() if a != who).most_common(2)
            if not others or (len(others) == 2 and others[0][1] == others[1][1]):
                continue  # nobody else answered, or the others are split: no consensus
            tally[who][1] += 1
            tally[who][0] += int(others[0][0] == value)
    return {who: (m, n) for who, (m, n) in tally.items()}


def _gold_accuracy(
    values: Mapping[str, float], members: list[Candidate], trait: str, config: ProjectConfig
) -> float | None:
    """Share of the candidate pairs with distinct gold values that the answer orders like gold.

    A tie in the answer counts as wrong: the known answer distinguishes the two.
    """
    spec = config.trait(trait)
    known = [c for c in members if trait in c.gold and c.id in values]
    right = total = 0
    for a, b in combinations(known, 2):
        truth = spec.preference(a.gold[trait]) - spec.preference(b.gold[trait])
        if truth == 0:
            continue
        total += 1
        right += int((values[a.id] - values[b.id]) * truth > 0)
    return right / total if total else None
