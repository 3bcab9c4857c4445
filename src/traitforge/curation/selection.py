"""Pre-ranking and selection: which comparisons are worth a human's time, under a budget."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import NamedTuple

import numpy as np

from traitforge.curation.acquisition import Acquisition, Information, Kind
from traitforge.curation.asked import prompt_traits
from traitforge.curation.ensemble import Comparison
from traitforge.curation.trait_budget import TraitShare, allocate, shortfall_note
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    ProjectConfig,
    Scores,
    SelectionConfig,
    Suggestion,
)

DISAGREEMENT_WEIGHT = 0.5  # how much scorer disagreement adds to closeness of scores
POOL_FACTOR = 3  # uncertainty+diversity: the diverse pick is made among 3x budget uncertain
# Epistemic strategies skip a group whose answer is expected to teach less than this (nats of
# BALD, or bits of classifier entropy, times the chance of a decisive answer): ~0 means the
# models agree on the answer, or agree it is a tie.
MIN_INFORMATION = 1e-4
# strategy -> what its acquisition scores (see acquisition.py)
EPISTEMIC: dict[str, Kind] = {
    "bald.v1": "bald",
    "bald+diversity.v1": "bald",
    "decisive.v1": "decisive",
}


@dataclass
class SelectionInputs:
    """Everything selection reads, gathered by the pipeline (no I/O here)."""

    candidates: Sequence[Candidate]  # eligible: not flagged, not a same-prompt duplicate
    scores: Sequence[Scores]
    prompt_vectors: dict[str, np.ndarray]  # prompt id -> normalized embedding
    response_vectors: dict[str, np.ndarray]  # candidate id -> normalized embedding
    existing: Sequence[ComparisonTask] = field(default_factory=list)
    # Every answer so far, pair by pair: what epistemic strategies fit their ensemble to.
    answers: Sequence[Comparison] = field(default_factory=list)


@dataclass(frozen=True)
class Option:
    """One possible task: a tuple of candidates of one prompt, with why it would be useful."""

    prompt_id: str
    trait: str
    rated_traits: tuple[str, ...]
    candidate_ids: tuple[str, ...]
    uncertainty: float
    detail: str
    scored: bool = True  # some candidate has a calibrated score on one of the traits


@dataclass(frozen=True)
class GoldChecks:
    """A round's gold checks: how many the gold fraction asked for, how many open prompts
    could give one (candidates with different gold values on the asked trait), how many came."""

    budget: int  # tasks this selection was asked for
    wanted: int
    available: int
    made: int


# A strategy that ranks by scores, when nothing is scored and no answer is learnt from
# (see `PairSelector._by_strategy`): its diversity part where it has one, else a random draw;
# and how such a task reads. The random and diversity strategies need no scores.
UNSCORED_FALLBACK: dict[str, str] = {
    "uncertainty": "random",
    "uncertainty+diversity": "diversity",
    "bald.v1": "random",
    "bald+diversity.v1": "diversity",
    "decisive.v1": "random",
}
UNSCORED_DETAIL = {
    "random": "no scores yet: picked at random",
    "diversity": "no scores yet: chosen for diversity alone",
}


class PairSelector:
    """Chooses up to `budget` new tasks: a gold-check share first, then by strategy."""

    def __init__(self, config: ProjectConfig) -> None:
        self.project = config
        self.config: SelectionConfig = config.curation.selection
        self.note: str | None = None  # after `process`: why it chose fewer than the budget
        self.acquired_with: str | None = None  # after `process`: what epistemic scores came from
        self.gold_checks: GoldChecks | None = None  # after `process`
        # After `process`: the strategy used instead ('random' or 'diversity') when no score
        # nor answer could rank the open options; None when the configured one ranked them.
        self.unscored: str | None = None
        # After `process`: each trait's share of the budget and what it got, in config order.
        self.trait_shares: dict[str, TraitShare] = {}
        self._acquired: tuple[SelectionInputs, Acquisition] | None = None

    def process(self, inputs: SelectionInputs, budget: int, round_: int) -> list[ComparisonTask]:
        self.note = None
        self.acquired_with = None
        self.unscored = None
        self._acquired = None
        rng = random.Random(self.config.seed * 1_000_003 + round_)
        probabilities = _probabilities(inputs.scores)
        used_per_prompt: dict[str, int] = defaultdict(int)
        taken = {t.id for t in inputs.existing}
        for task in inputs.existing:
            used_per_prompt[task.prompt_id] += 1
        by_prompt: dict[str, list[Candidate]] = defaultdict(list)
        for c in inputs.candidates:
            by_prompt[c.prompt_id].append(c)
        open_prompts = sorted(
            p
            for p, members in by_prompt.items()
            if len(members) >= self.config.k and used_per_prompt[p] < self.config.tasks_per_prompt
        )
        # Groups already asked are no option: otherwise a prompt's most uncertain group would
        # be picked again and dropped below, leaving the round short.
        asked = {frozenset(t.candidate_ids) for t in inputs.existing}
        options = {
            p: [
                o
                for o in self._options(by_prompt[p], probabilities)
                if frozenset(o.candidate_ids) not in asked
            ]
            for p in open_prompts
        }

        gold = self._gold_checks(by_prompt, open_prompts, rng)
        gold = [o for o in gold if frozenset(o.candidate_ids) not in asked]
        chosen = self._by_trait(open_prompts, options, gold, inputs, budget, rng)
        tasks = []
        for option, reason, gold_check in chosen:
            task = ComparisonTask(
                prompt_id=option.prompt_id,
                candidate_ids=list(option.candidate_ids),
                trait=option.trait,
                rated_traits=list(option.rated_traits),
                reason=reason,
                reason_detail=option.detail,
                gold_check=gold_check,
                round=round_,
                suggestions=_suggestions(option, probabilities, self.project.curation.scorers),
            )
            if task.id not in taken:
                taken.add(task.id)
                tasks.append(task)
        return tasks

    def _by_trait(
        self,
        open_prompts: list[str],
        options: dict[str, list[Option]],
        gold: list[Option],
        inputs: SelectionInputs,
        budget: int,
        rng: random.Random,
    ) -> list[Pick]:
        """Each trait's share of the budget (`trait_budget`), its gold checks first; what a
        trait cannot use is passed on to the others until no trait can use more."""
        trait_of = {p: options[p][0].trait for p in open_prompts if options[p]}
        trait_of |= {o.prompt_id: o.trait for o in gold}
        prompts_of: dict[str, list[str]] = defaultdict(list)
        for p in open_prompts:
            if p in trait_of:
                prompts_of[trait_of[p]].append(p)
        rule = self.config.trait_budget
        shares = allocate(rule, budget, {t: len(ps) for t, ps in prompts_of.items()})
        self.trait_shares = {
            t: TraitShare(t, len(prompts_of[t]), shares[t]) for t in self._trait_order(prompts_of)
        }
        gold_of: dict[str, list[Option]] = defaultdict(list)
        for option in gold:
            gold_of[option.trait].append(option)
        n_gold = round(budget * self.config.gold_fraction)
        gold_room = {t: min(len(gold_of[t]), shares[t]) for t in prompts_of}
        gold_shares = allocate(rule, n_gold, gold_room)
        chosen: list[Pick] = [
            (o, "gold-check", True) for t in self.trait_shares for o in gold_of[t][: gold_shares[t]]
        ]
        self.gold_checks = GoldChecks(
            budget=budget, wanted=n_gold, available=len(gold), made=len(chosen)
        )
        picked = {o.prompt_id for o, _, _ in chosen}
        wanted = {t: shares[t] - gold_shares[t] for t in self.trait_shares}
        notes: list[str] = []
        exhausted: set[str] = set()
        while True:
            added = 0
            for trait, n in wanted.items():
                if n <= 0:
                    continue
                rest = [p for p in prompts_of[trait] if p not in picked and options[p]]
                self.note = None
                picks = self._by_strategy(rest, options, inputs, n, rng)
                if len(picks) < n:
                    exhausted.add(trait)
                    if self.note:
                        notes.append(f"{trait}: {self.note}" if len(wanted) > 1 else self.note)
                chosen += picks
                picked |= {o.prompt_id for o, _, _ in picks}
                added += len(picks)
            left = budget - len(chosen)
            room = {
                t: sum(p not in picked and bool(options[p]) for p in ps)
                for t, ps in prompts_of.items()
                if t not in exhausted
            }
            if not added or left <= 0 or not any(room.values()):
                break
            wanted = allocate(rule, left, room)
        for share in self.trait_shares.values():
            share.selected = sum(o.trait == share.trait for o, _, _ in chosen)
            left_open = sum(p not in picked for p in prompts_of[share.trait])
            share.note = shortfall_note(share, left_open)
        self.note = "; ".join(dict.fromkeys(notes)) or None
        return chosen

    def _trait_order(self, prompts_of: dict[str, list[str]]) -> list[str]:
        """The config's trait order, then any other trait a prompt was asked about."""
        named = [t.name for t in self.project.traits if t.name in prompts_of]
        return named + sorted(set(prompts_of) - set(named))

    # -- building options --------------------------------------------------------------------
    def prompt_traits(self, members: Sequence[Candidate]) -> list[str]:
        return prompt_traits(self.project, members)

    def _composite(
        self, candidate: Candidate, traits: Sequence[str], probabilities: _Probabilities
    ) -> tuple[float, float]:
        """(weighted mean probability over traits and scorers, mean scorer disagreement)."""
        total = weight_sum = disagreement = 0.0
        for trait in traits:
            values = probabilities.get((candidate.id, trait), {})
            if not values:
                continue
            weight = self.project.trait_weight(trait)
            # Plain arithmetic: this runs for every candidate of every open prompt per round.
            mean = sum(values.values()) / len(values)
            spread = sum((v - mean) ** 2 for v in values.values()) / len(values)
            total += weight * mean
            disagreement += weight * math.sqrt(spread)
            weight_sum += weight
        if weight_sum == 0:
            return 0.5, 0.0  # nothing scored yet: every candidate equally uncertain
        return total / weight_sum, disagreement / weight_sum

    def _options(self, members: list[Candidate], probabilities: _Probabilities) -> list[Option]:
        traits = self.prompt_traits(members)
        if not traits:
            return []
        composite = {c.id: self._composite(c, traits, probabilities) for c in members}
        ranked = sorted(members, key=lambda c: (-composite[c.id][0], c.id))
        k = self.config.k
        # k = 2: every pair; k > 2: windows of k neighbours in the ranking (close, so uncertain)
        groups = (
            list(combinations(ranked, 2))
            if k == 2
            else [tuple(ranked[i : i + k]) for i in range(len(ranked) - k + 1)]
        )
        options = []
        for group in groups:
            values = [composite[c.id][0] for c in group]
            spread = max(values) - min(values)
            disagreement = sum(composite[c.id][1] for c in group) / len(group)
            scored = any(probabilities.get((c.id, t)) for c in group for t in traits)
            options.append(
                Option(
                    prompt_id=members[0].prompt_id,
                    trait=traits[0],
                    rated_traits=tuple(traits[1:]),
                    candidate_ids=tuple(c.id for c in group),
                    uncertainty=round(1.0 - spread + DISAGREEMENT_WEIGHT * disagreement, 6),
                    detail=f"score spread {spread:.3f}, scorer disagreement {disagreement:.3f}",
                    scored=scored,
                )
            )
        return sorted(options, key=lambda o: (-o.uncertainty, o.candidate_ids))

    def _gold_checks(
        self, by_prompt: dict[str, list[Candidate]], prompts: Sequence[str], rng: random.Random
    ) -> list[Option]:
        """Tasks whose answer is known: candidates with clearly different gold values."""
        checks = []
        for prompt_id in prompts:
            members = by_prompt[prompt_id]
            traits = self.prompt_traits(members)
            if not traits:
                continue
            trait = traits[0]
            labelled = sorted(
                (c for c in members if trait in c.gold), key=lambda c: (-c.gold[trait], c.id)
            )
            if len(labelled) < self.config.k or labelled[0].gold[trait] == labelled[-1].gold[trait]:
                continue
            best, worst = labelled[0], labelled[-1]
            middle = [c for c in labelled[1:-1]][: self.config.k - 2]
            group = (best, *middle, worst)
            checks.append(
                Option(
                    prompt_id=prompt_id,
                    trait=trait,
                    rated_traits=tuple(traits[1:]),
                    candidate_ids=tuple(c.id for c in group),
                    uncertainty=0.0,
                    detail=f"gold {trait}: {best.gold[trait]:g} vs {worst.gold[trait]:g}",
                )
            )
        rng.shuffle(checks)
        return checks

    # -- strategies --------------------------------------------------------------------------
    def _by_strategy(
        self,
        prompts: list[str],
        options: dict[str, list[Option]],
        inputs: SelectionInputs,
        budget: int,
        rng: random.Random,
    ) -> list[Pick]:
        if budget <= 0 or not prompts:
            return []
        pool = OpenPool(prompts, options, inputs, budget, rng)
        fallback = UNSCORED_FALLBACK.get(self.config.strategy)
        learns_from_answers = self.config.strategy in EPISTEMIC and bool(inputs.answers)
        scored = any(o.scored for p in prompts for o in options[p])
        if fallback is not None and not learns_from_answers and not scored:
            # Nothing to rank by: the strategy would rank every option level and take them in
            # id order, under a reason that claims otherwise. Use what is left, and say so.
            self.unscored = fallback
            return [
                (replace(option, detail=UNSCORED_DETAIL[fallback]), reason, gold)
                for option, reason, gold in STRATEGIES[fallback](self, pool)
            ]
        return STRATEGIES[self.config.strategy](self, pool)

    def _random(self, pool: OpenPool) -> list[Pick]:
        order = list(pool.prompts)
        pool.rng.shuffle(order)
        return [(pool.rng.choice(pool.options[p]), "random", False) for p in order[: pool.budget]]

    def _uncertainty(self, pool: OpenPool) -> list[Pick]:
        best = {p: pool.options[p][0] for p in pool.prompts}  # the most uncertain option
        ranked = sorted(pool.prompts, key=lambda p: (-best[p].uncertainty, p))
        return [(best[p], "uncertainty", False) for p in ranked[: pool.budget]]

    def _diversity(self, pool: OpenPool) -> list[Pick]:
        prompts, options, inputs, budget, rng = pool
        spread = {p: _most_distinct(options[p], inputs.response_vectors) for p in prompts}
        order = _farthest_first(prompts, inputs.prompt_vectors, budget, rng, weight=lambda _: 1.0)
        return [(spread[p], "diversity", False) for p, _ in order]

    def _uncertainty_diversity(self, pool: OpenPool) -> list[Pick]:
        """Among the most uncertain prompts, spread out over embedding space."""
        prompts, options, inputs, budget, rng = pool
        best = {p: options[p][0] for p in prompts}
        shortlist = sorted(prompts, key=lambda p: (-best[p].uncertainty, p))
        order = _farthest_first(
            shortlist[: budget * POOL_FACTOR],
            inputs.prompt_vectors,
            budget,
            rng,
            weight=lambda p: best[p].uncertainty,
        )
        return [
            (
                replace(best[p], detail=f"{best[p].detail}, distance to chosen {d:.3f}"),
                "uncertainty",
                False,
            )
            for p, d in order
        ]

    def _epistemic(self, pool: OpenPool) -> list[Pick]:
        """bald.v1: the groups whose answers would teach the ensemble most, one per prompt.
        bald+diversity.v1: the same scores, spread over prompt space by weighted
        farthest-first from every prompt asked so far (BAL-PM's entropy term, greedily).
        decisive.v1: the groups whose direction the ensemble is least sure of, weighted by
        the chance that the answer is not a tie."""
        prompts, options, inputs, budget, rng = pool
        # Built once per selection: each trait's share asks the same ensemble.
        if self._acquired is None or self._acquired[0] is not inputs:
            self._acquired = (inputs, self._acquisition(inputs))
        acquisition = self._acquired[1]
        self.acquired_with = acquisition.source
        kind = EPISTEMIC[self.config.strategy]
        groups = [o.candidate_ids for p in prompts for o in options[p]]
        scored = dict(zip(groups, acquisition.score(groups, kind), strict=True))
        best: dict[str, tuple[Option, Information]] = {}
        for p in prompts:
            option = max(options[p], key=lambda o: (scored[o.candidate_ids].score, o.candidate_ids))
            if scored[option.candidate_ids].score >= MIN_INFORMATION:
                best[p] = (option, scored[option.candidate_ids])
        if not best:
            self.note = (
                f"nothing scores above chance: no open group of the {len(prompts)} open prompts "
                f"is expected to teach the {acquisition.source} anything (all below "
                f"{MIN_INFORMATION:g}; the models agree on every answer, or that it is a tie)"
            )
            return []
        ranked = sorted(best, key=lambda p: (-best[p][1].score, p))
        if self.config.strategy == "bald+diversity.v1":
            asked = sorted({t.prompt_id for t in inputs.existing} & set(inputs.prompt_vectors))
            order = _farthest_first(
                ranked,
                inputs.prompt_vectors,
                budget,
                rng,
                weight=lambda p: best[p][1].score,
                asked=[inputs.prompt_vectors[p] for p in asked],
            )
        else:
            order = [(p, 0.0) for p in ranked[:budget]]
        picks = []
        for p, distance in order:
            option, information = best[p]
            part = "epistemic" if kind == "bald" else "direction entropy"
            detail = (
                f"information {information.score:.4f} from the {acquisition.source} "
                f"({part} {information.epistemic:.4f}, P(tie) {information.tie:.2f})"
            )
            if self.config.strategy == "bald+diversity.v1":
                detail += f", distance to asked prompts {distance:.3f}"
            reason = "epistemic" if kind == "bald" else "uncertainty"
            picks.append(
                (replace(option, uncertainty=information.score, detail=detail), reason, False)
            )
        if len(picks) < budget and len(best) < len(prompts):
            self.note = (
                f"{len(prompts) - len(best)} open prompts skipped: nothing in them is expected to "
                f"teach the {acquisition.source} anything"
            )
        return picks

    def _acquisition(self, inputs: SelectionInputs) -> Acquisition:
        probabilities = _probabilities(inputs.scores)
        prompt_of = {c.id: c.prompt_id for c in inputs.candidates}
        by_prompt: dict[str, list[Candidate]] = defaultdict(list)
        for c in inputs.candidates:
            by_prompt[c.prompt_id].append(c)
        scored: dict[str, float] = {}
        for members in by_prompt.values():
            traits = self.prompt_traits(members)
            for c in members:
                if any(probabilities.get((c.id, t)) for t in traits):
                    scored[c.id] = self._composite(c, traits, probabilities)[0]
        vectors = {c.id: inputs.response_vectors[c.id] for c in inputs.candidates}
        return Acquisition.build(
            inputs.answers,
            prompt_of,
            inputs.prompt_vectors,
            vectors,
            scored,
            seed=self.config.seed,
            scorers=sorted({s.scorer for s in inputs.scores if s.probability is not None}),
        )


class OpenPool(NamedTuple):
    """What a strategy chooses from: the open prompts, their options not asked yet, the
    selection inputs, how many to choose, and the round's seeded generator."""

    prompts: list[str]
    options: dict[str, list[Option]]
    inputs: SelectionInputs
    budget: int
    rng: random.Random


Pick = tuple[Option, str, bool]  # (option, reason, gold check)
Strategy = Callable[[PairSelector, OpenPool], list[Pick]]
# The registry: `curation.selection.strategy` names one of these keys (SelectionConfig lists
# the same names; a test keeps the two equal). A new strategy is a method plus its key here.
STRATEGIES: dict[str, Strategy] = {
    "random": PairSelector._random,
    "uncertainty": PairSelector._uncertainty,
    "diversity": PairSelector._diversity,
    "uncertainty+diversity": PairSelector._uncertainty_diversity,
    **dict.fromkeys(EPISTEMIC, PairSelector._epistemic),
}

_Probabilities = dict[tuple[str, str], dict[str, float]]  # (candidate, trait) -> scorer -> p


def _probabilities(scores: Sequence[Scores]) -> _Probabilities:
    table: _Probabilities = defaultdict(dict)
    for s in scores:
        if s.probability is not None:
            table[(s.candidate_id, s.trait)][s.scorer] = s.probability
    return table


def _most_distinct(options: Sequence[Option], vectors: dict[str, np.ndarray]) -> Option:
    """The option whose responses are least alike (mean pairwise cosine), never a near copy."""

    def similarity(option: Option) -> float:
        pairs = list(combinations(option.candidate_ids, 2))
        return float(np.mean([float(vectors[a] @ vectors[b]) for a, b in pairs]))

    return min(options, key=lambda o: (similarity(o), o.candidate_ids))


def _farthest_first(
    prompts: Sequence[str],
    vectors: dict[str, np.ndarray],
    budget: int,
    rng: random.Random,
    weight: Callable[[str], float],
    asked: Sequence[np.ndarray] = (),
) -> list[tuple[str, float]]:
    """Greedy farthest-point traversal (k-center), each step maximising weight x distance to
    the nearest prompt already chosen, or `asked` before. Returns (prompt, that distance)."""
    if not prompts:
        return []
    matrix = np.stack([vectors[p] for p in prompts])
    weights = np.maximum(np.array([weight(p) for p in prompts], dtype=np.float64), 1e-6)
    chosen: list[tuple[str, float]] = []
    if len(asked):
        nearest = (1.0 - matrix @ np.stack(asked).T).min(axis=1)
    else:
        first = max(range(len(prompts)), key=lambda i: (weights[i], rng.random()))
        chosen = [(prompts[first], 0.0)]
        nearest = 1.0 - matrix @ matrix[first]
        nearest[first] = -np.inf
    while len(chosen) < min(budget, len(prompts)):
        i = int(np.argmax(weights * nearest))
        chosen.append((prompts[i], float(nearest[i])))
        nearest = np.minimum(nearest, 1.0 - matrix @ matrix[i])
        nearest[i] = -np.inf  # a chosen prompt's distance to itself is 0 already; keep it out
    return chosen


def _suggestions(
    option: Option, probabilities: _Probabilities, scorer_order: Sequence[str]
) -> list[Suggestion]:
    """Per candidate and trait, the first configured scorer's probability, named."""
    suggestions = []
    for candidate_id in option.candidate_ids:
        for trait in (option.trait, *option.rated_traits):
            values = probabilities.get((candidate_id, trait), {})
            scorer = next((s for s in scorer_order if s in values), None)
            if scorer is not None:
                suggestions.append(
                    Suggestion(
                        candidate_id=candidate_id, trait=trait, value=values[scorer], scorer=scorer
                    )
                )
    return suggestions
