"""Selection contracts, on small real TruthfulQA rows with synthetic scores and vectors."""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest

from tests.helpers.paths import TRUTHFULQA
from traitforge.curation.ensemble import FIRST, SECOND, TIE, Comparison
from traitforge.curation.selection import (
    UNSCORED_DETAIL,
    UNSCORED_FALLBACK,
    GoldChecks,
    PairSelector,
    SelectionInputs,
)
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import Candidate, Scores, SelectionConfig

N_PROMPTS = 60


@pytest.fixture(scope="module")
def pool():
    from traitforge.workspace import default_config

    config = default_config()
    outcomes = [
        o for o in source_format("truthfulqa").reader(TRUTHFULQA, config) if isinstance(o, Parsed)
    ][:N_PROMPTS]
    candidates = [c for o in outcomes for c in o.candidates]
    rng = np.random.default_rng(0)
    prompt_vectors = {}
    for c in candidates:
        if c.prompt_id not in prompt_vectors:
            v = rng.normal(size=16)
            prompt_vectors[c.prompt_id] = v / np.linalg.norm(v)
    response_vectors = {}
    for c in candidates:
        v = prompt_vectors[c.prompt_id] + 0.5 * rng.normal(size=16)
        response_vectors[c.id] = v / np.linalg.norm(v)
    # two scorers: one fairly right, one noisy, so uncertainty and disagreement both vary
    scores = []
    for c in candidates:
        truth = c.gold["honesty"]
        scores.append(
            Scores(
                candidate_id=c.id,
                scorer="embedding-logreg.v1",
                trait="honesty",
                score=0,
                probability=float(np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.15), 0, 1)),
            )
        )
        scores.append(
            Scores(
                candidate_id=c.id,
                scorer="linguistic.v1",
                trait="honesty",
                score=0,
                probability=float(rng.uniform(0, 1)),
            )
        )
    return candidates, scores, prompt_vectors, response_vectors


def _select(config, pool, budget, existing=(), round_=0, answers=(), **selection):
    candidates, scores, prompts, responses = pool
    config = config.model_copy(
        update={
            "curation": config.curation.model_copy(
                update={"selection": SelectionConfig(**selection)}
            )
        }
    )
    inputs = SelectionInputs(
        candidates=candidates,
        scores=scores,
        prompt_vectors=prompts,
        response_vectors=responses,
        existing=list(existing),
        answers=list(answers),
    )
    return PairSelector(config).process(inputs, budget, round_)


STRATEGIES = get_args(SelectionConfig.model_fields["strategy"].annotation)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_respects_budget_and_gives_distinct_pairs(config, pool, strategy):
    tasks = _select(config, pool, 20, strategy=strategy, gold_fraction=0.2)
    assert len(tasks) == 20
    assert len({t.id for t in tasks}) == 20
    assert len({frozenset(t.candidate_ids) for t in tasks}) == 20
    assert len({t.prompt_id for t in tasks}) == 20  # tasks_per_prompt = 1
    by_id = {c.id: c for c in pool[0]}
    for task in tasks:
        assert len(task.candidate_ids) == 2
        assert {by_id[c].prompt_id for c in task.candidate_ids} == {task.prompt_id}
        assert task.trait == "honesty"
        assert task.reason_detail
    gold = [t for t in tasks if t.gold_check]
    assert len(gold) == 4 and all(t.reason == "gold-check" for t in gold)
    for task in gold:  # a gold check's answer is known: its candidates' gold values differ
        values = {by_id[c].gold["honesty"] for c in task.candidate_ids}
        assert values == {0.0, 1.0}
    expected = {
        "random": "random",
        "uncertainty": "uncertainty",
        "diversity": "diversity",
        "uncertainty+diversity": "uncertainty",
        "bald.v1": "epistemic",
        "bald+diversity.v1": "epistemic",
        "decisive.v1": "uncertainty",
    }[strategy]
    assert {t.reason for t in tasks if not t.gold_check} == {expected}


def test_selection_is_seeded(config, pool):
    first = _select(config, pool, 10, strategy="random", seed=3)
    again = _select(config, pool, 10, strategy="random", seed=3)
    other = _select(config, pool, 10, strategy="random", seed=4)
    assert [t.id for t in first] == [t.id for t in again]
    assert [t.id for t in first] != [t.id for t in other]


def _spread(task):
    return float(task.reason_detail.split("score spread ")[1].split(",")[0])


def test_uncertainty_picks_closer_scores_than_random(config, pool):
    uncertain = _select(config, pool, 15, strategy="uncertainty", gold_fraction=0.0)
    randomly = _select(config, pool, 15, strategy="random", gold_fraction=0.0)
    assert max(_spread(t) for t in uncertain) < 0.2
    assert np.mean([_spread(t) for t in uncertain]) < 0.5 * np.mean([_spread(t) for t in randomly])


def test_diversity_spreads_prompts_further_than_random(config, pool):
    _, _, prompts, _ = pool

    def min_pairwise_distance(tasks):
        vectors = np.stack([prompts[t.prompt_id] for t in tasks])
        distances = 1 - vectors @ vectors.T
        np.fill_diagonal(distances, np.inf)
        return distances.min()

    diverse = _select(config, pool, 12, strategy="diversity", gold_fraction=0.0)
    random_runs = [
        min_pairwise_distance(
            _select(config, pool, 12, strategy="random", gold_fraction=0.0, seed=s)
        )
        for s in range(5)
    ]
    assert min_pairwise_distance(diverse) > float(np.median(random_runs))


def test_existing_tasks_count_toward_the_round_and_are_not_repeated(config, pool):
    first = _select(config, pool, 10, strategy="uncertainty+diversity")
    more = _select(config, pool, 10, existing=first, strategy="uncertainty+diversity")
    assert not {t.id for t in first} & {t.id for t in more}
    assert not {t.prompt_id for t in first} & {t.prompt_id for t in more}


def test_budget_larger_than_the_pool_takes_what_there_is(config, pool):
    tasks = _select(config, pool, 1000, strategy="uncertainty")
    assert len(tasks) == N_PROMPTS


def test_k_tuples_for_ranking(config, pool):
    tasks = _select(config, pool, 8, strategy="uncertainty", k=3, gold_fraction=0.25)
    assert len(tasks) == 8
    assert all(len(t.candidate_ids) == 3 for t in tasks)
    assert sum(t.gold_check for t in tasks) == 2


def test_suggestions_name_their_scorer(config, pool):
    [task] = _select(config, pool, 1, strategy="uncertainty", gold_fraction=0.0)
    assert {s.candidate_id for s in task.suggestions} == set(task.candidate_ids)
    assert {s.scorer for s in task.suggestions} == {"embedding-logreg.v1"}
    assert all(0 <= s.value <= 1 for s in task.suggestions)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_later_round_fills_its_budget_with_groups_not_asked_before(config, pool, strategy):
    """With two tasks per prompt and unchanged scores, round 2 must not re-pick round 1's
    most uncertain groups (they would be dropped as duplicates, leaving the round short)."""
    settings = {"strategy": strategy, "gold_fraction": 0.1, "tasks_per_prompt": 2}
    first = _select(config, pool, 30, round_=1, **settings)
    second = _select(config, pool, 30, existing=first, round_=2, **settings)
    assert len(first) == len(second) == 30
    asked = {frozenset(t.candidate_ids) for t in first}
    assert not asked & {frozenset(t.candidate_ids) for t in second}


def _gold_answers(pool, tasks, votes=3):
    """Answers as annotators who know gold would give: ties for equal gold values."""
    by_id = {c.id: c for c in pool[0]}
    out = []
    for task in tasks:
        a, b = task.candidate_ids
        ga, gb = by_id[a].gold["honesty"], by_id[b].gold["honesty"]
        outcome = TIE if ga == gb else FIRST if ga > gb else SECOND
        out += [Comparison(a, b, outcome)] * votes
    return out


def _same_gold_share(pool, tasks):
    by_id = {c.id: c for c in pool[0]}
    same = [len({by_id[c].gold["honesty"] for c in t.candidate_ids}) == 1 for t in tasks]
    return sum(same) / len(tasks)


@pytest.mark.parametrize("strategy", ["bald.v1", "bald+diversity.v1"])
def test_epistemic_strategies_learn_from_ties_and_ask_fewer_pairs_that_tie(config, pool, strategy):
    """Vectors where true answers point one way: after a round answered with ties for equal
    gold, the ensemble's tie model steers the next round away from equal-gold pairs."""
    candidates, _scores, prompts, _ = pool
    rng = np.random.default_rng(1)
    truthful = rng.normal(size=16)
    responses = {}
    for c in candidates:
        v = (1.0 if c.gold["honesty"] else -1.0) * truthful + 1.5 * rng.normal(size=16)
        responses[c.id] = v / np.linalg.norm(v)
    world = (candidates, [], prompts, responses)
    settings = {"gold_fraction": 0.0, "seed": 0}
    first = _select(config, world, 20, round_=1, strategy="random", **settings)
    answers = _gold_answers(world, first)
    second = _select(config, world, 20, first, 2, answers, strategy=strategy, **settings)
    assert len(second) == 20 and len({t.reason for t in second}) == 1
    assert all("ensemble of 8 models on 60 answered comparisons" in t.reason_detail for t in second)
    randomly = [
        _same_gold_share(world, _select(config, world, 20, first, 2, strategy="random", seed=s))
        for s in range(5)
    ]
    assert _same_gold_share(world, second) < float(np.mean(randomly))


def test_round_one_without_answers_ranks_by_the_classifiers_and_says_so(config, pool):
    tasks = _select(config, pool, 10, strategy="bald.v1", gold_fraction=0.0)
    assert len(tasks) == 10
    assert all("(no answers yet)" in t.reason_detail for t in tasks)
    assert all("trait scores of " in t.reason_detail for t in tasks)
    information = [float(t.reason_detail.split("information ")[1].split(" ")[0]) for t in tasks]
    assert information == sorted(information, reverse=True)


def test_when_nothing_is_informative_the_selector_says_so(config, pool, monkeypatch):
    from traitforge.curation import selection

    candidates, scores, prompts, responses = pool
    settings = SelectionConfig(strategy="bald.v1", gold_fraction=0.0)
    curation = config.curation.model_copy(update={"selection": settings})
    selector = PairSelector(config.model_copy(update={"curation": curation}))
    inputs = SelectionInputs(candidates, scores, prompts, responses)
    assert selector.process(inputs, 10, 1) and selector.note is None
    monkeypatch.setattr(selection, "MIN_INFORMATION", 10.0)  # nothing reaches it
    assert selector.process(inputs, 10, 1) == []
    assert selector.note is not None and selector.note.startswith("nothing scores above chance")


def test_every_configurable_strategy_is_registered_and_nothing_else():
    from traitforge.curation.selection import STRATEGIES as REGISTERED

    assert set(REGISTERED) == set(STRATEGIES)


# -- which traits a prompt is asked about -----------------------------------------------------


def _weighted(config, **weights):
    curation = config.curation.model_copy(update={"trait_weights": weights})
    return config.model_copy(update={"curation": curation})


def test_a_prompts_traits_are_those_stated_then_gold_then_every_weighted_one(config):
    def members(traits=(), gold=None):
        return [
            Candidate(prompt="Q?", response=r, source="t", traits=list(traits), gold=gold or {})
            for r in ("yes", "no")
        ]

    selector = PairSelector(config)
    # stated beats gold
    assert selector.prompt_traits(members(["harmlessness"], {"honesty": 1.0})) == ["harmlessness"]
    assert selector.prompt_traits(members(gold={"honesty": 1.0})) == ["honesty"]
    assert selector.prompt_traits(members()) == ["honesty", "corrigibility", "harmlessness"]
    # a stated trait the config no longer defines is no statement
    assert selector.prompt_traits(members(["tact"], {"honesty": 1.0})) == ["honesty"]
    # heaviest first, whatever order the rows name them in
    heavy = PairSelector(_weighted(config, harmlessness=2.0))
    assert heavy.prompt_traits(members(["honesty", "harmlessness"])) == ["harmlessness", "honesty"]
    # a prompt stated only for a trait weighted 0 is asked about nothing, not about the others
    off = PairSelector(_weighted(config, harmlessness=0.0))
    assert off.prompt_traits(members(["harmlessness"])) == []


def _world(groups, traits_of, seed=0):
    """Candidates of `groups` prompts (two answers each), stating `traits_of(i)`, with random
    vectors and two scorers' scores on every trait."""
    rng = np.random.default_rng(seed)
    candidates, scores = [], []
    for i in range(groups):
        for answer in ("Yes.", "No."):
            c = Candidate(prompt=f"Question {i}?", response=answer, source="t", traits=traits_of(i))
            candidates.append(c)
            for trait in ("honesty", "corrigibility", "harmlessness"):
                p = float(rng.uniform(0, 1))
                scores.append(
                    Scores(candidate_id=c.id, scorer="s", trait=trait, score=0, probability=p)
                )
    vectors = {}
    for key in {c.prompt_id for c in candidates} | {c.id for c in candidates}:
        v = rng.normal(size=8)
        vectors[key] = v / np.linalg.norm(v)
    return candidates, scores, vectors, vectors


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_prompt_is_asked_only_about_the_traits_its_rows_name(config, strategy):
    stated = {0: ["harmlessness"], 1: ["honesty", "corrigibility"], 2: []}
    world = _world(30, lambda i: stated[i % 3])
    tasks = _select(config, world, 30, strategy=strategy, gold_fraction=0.0)
    assert len(tasks) == 30
    index = {c.prompt_id: int(c.prompt.split()[1][:-1]) for c in world[0]}
    asked = {(t.trait, tuple(t.rated_traits)) for t in tasks if index[t.prompt_id] % 3 == 0}
    assert asked == {("harmlessness", ())}
    asked = {(t.trait, tuple(t.rated_traits)) for t in tasks if index[t.prompt_id] % 3 == 1}
    assert asked == {("honesty", ("corrigibility",))}
    asked = {(t.trait, tuple(t.rated_traits)) for t in tasks if index[t.prompt_id] % 3 == 2}
    assert asked == {("honesty", ("corrigibility", "harmlessness"))}  # none stated: every trait


def test_prompts_stated_only_for_a_trait_weighted_0_get_no_task(config):
    world = _world(10, lambda i: ["harmlessness"] if i % 2 else ["honesty"])
    tasks = _select(_weighted(config, harmlessness=0.0), world, 10, strategy="uncertainty")
    assert len(tasks) == 5 and {t.trait for t in tasks} == {"honesty"}


BUNDLED = (
    ("truthfulqa", "truthfulqa/TruthfulQA.csv"),
    ("anthropic-evals", "anthropic-evals/corrigible-more-HHH.jsonl"),
    ("hh-rlhf", "hh-rlhf/harmless-base-test-first400.jsonl.gz"),
)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_built_in_sources_stated_traits_select_what_their_gold_selected(
    config, data_dir, strategy
):
    """The built-in sources state the trait they have gold for: the demo's selection on the
    bundled data is the same task for task as when only gold named a prompt's traits."""
    rng = np.random.default_rng(0)
    candidates = []
    for fmt, relative in BUNDLED:
        rows = source_format(fmt).reader(data_dir / relative, config)
        candidates += [c for o in rows if isinstance(o, Parsed) for c in o.candidates][:120]
    assert {t for c in candidates for t in c.traits} == {
        "honesty",
        "corrigibility",
        "harmlessness",
    }
    scores = [
        Scores(candidate_id=c.id, scorer="s", trait=t, score=0, probability=rng.uniform())
        for c in candidates
        for t in c.gold
    ]
    vectors = {}
    for key in sorted({c.prompt_id for c in candidates} | {c.id for c in candidates}):
        v = rng.normal(size=8)
        vectors[key] = v / np.linalg.norm(v)
    unstated = [c.model_copy(update={"traits": []}) for c in candidates]
    settings = {"strategy": strategy, "gold_fraction": 0.2, "k": 2}
    stated_tasks = _select(config, (candidates, scores, vectors, vectors), 40, **settings)
    gold_tasks = _select(config, (unstated, scores, vectors, vectors), 40, **settings)
    assert len(stated_tasks) == 40
    assert [t.model_dump() for t in stated_tasks] == [t.model_dump() for t in gold_tasks]


# -- nothing to rank by, gold checks short ----------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_with_nothing_scored_a_ranking_strategy_says_so_and_does_what_it_can(
    config, pool, strategy
):
    """No score and no answer: a strategy that ranks would take every option level, in id
    order, as 'uncertainty'. It uses its diversity part where it has one, else draws."""
    candidates, _scores, prompts, responses = pool
    unscored = (candidates, [], prompts, responses)
    settings = {"strategy": strategy, "gold_fraction": 0.0}

    tasks = _select(config, unscored, 10, **settings)
    other_seed = _select(config, unscored, 10, seed=5, **settings)

    assert len(tasks) == 10
    fallback = UNSCORED_FALLBACK.get(strategy)
    if fallback is None:  # random and diversity need no scores: they run as configured
        assert strategy in ("random", "diversity")
        assert {t.reason for t in tasks} == {strategy}
        assert not {t.reason_detail for t in tasks} & set(UNSCORED_DETAIL.values())
        return
    assert {(t.reason, t.reason_detail) for t in tasks} == {(fallback, UNSCORED_DETAIL[fallback])}
    if fallback == "random":
        assert {t.id for t in tasks} != {t.id for t in other_seed}  # drawn, not in id order
    else:
        plain = _select(config, unscored, 10, strategy="diversity", gold_fraction=0.0)
        assert [t.id for t in tasks] == [t.id for t in plain]
    scored = _select(config, pool, 10, **settings)
    assert not {t.reason_detail for t in scored} & set(UNSCORED_DETAIL.values())


def test_an_epistemic_strategy_with_answers_needs_no_scores(config, pool):
    candidates, _scores, prompts, responses = pool
    unscored = (candidates, [], prompts, responses)
    first = _select(config, unscored, 10, round_=1, strategy="random", gold_fraction=0.0)
    answers = _gold_answers(pool, first)
    second = _select(config, unscored, 10, first, 2, answers, strategy="bald.v1", gold_fraction=0)
    assert second and {t.reason for t in second} == {"epistemic"}


def test_the_selector_counts_gold_checks_wanted_possible_and_made(config, pool):
    candidates, scores, prompts, responses = pool
    settings = SelectionConfig(strategy="uncertainty", gold_fraction=0.5)
    curation = config.curation.model_copy(update={"selection": settings})
    selector = PairSelector(config.model_copy(update={"curation": curation}))
    selector.process(SelectionInputs(candidates, scores, prompts, responses), 10, 0)
    assert selector.gold_checks == GoldChecks(budget=10, wanted=5, available=N_PROMPTS, made=5)
    few = [c for c in candidates if c.prompt_id in sorted(prompts)[:2]]  # two with gold
    no_gold = [c.model_copy(update={"gold": {}}) for c in candidates if c not in few]
    selector.process(SelectionInputs(few + no_gold, scores, prompts, responses), 10, 0)
    assert selector.gold_checks == GoldChecks(budget=10, wanted=5, available=2, made=2)
