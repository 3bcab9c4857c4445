"""Budgets per trait: the split itself, and selection following it on a three-trait pool."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from tests.helpers.paths import TRUTHFULQA
from traitforge.curation.selection import PairSelector, SelectionInputs
from traitforge.curation.sources import Parsed, source_format
from traitforge.curation.trait_budget import TraitShare, allocate, describe, shortfall_note
from traitforge.schemas import Candidate, ProjectConfig, Scores, SelectionConfig

# -- allocate ---------------------------------------------------------------------------------


def test_equal_shares_split_the_budget_evenly_with_the_remainder_by_name():
    assert allocate("equal", 10, {"a": 50, "b": 50, "c": 50}) == {"a": 4, "b": 3, "c": 3}


def test_a_trait_with_fewer_open_prompts_passes_its_share_on():
    assert allocate("equal", 30, {"a": 4, "b": 100, "c": 100}) == {"a": 4, "b": 13, "c": 13}


def test_a_trait_without_open_prompts_gets_nothing_and_the_others_share_it():
    assert allocate("equal", 9, {"a": 0, "b": 10, "c": 10}) == {"a": 0, "b": 5, "c": 4}


def test_proportional_follows_open_prompts():
    assert allocate("proportional", 10, {"a": 80, "b": 20}) == {"a": 8, "b": 2}


def test_explicit_weights_and_a_trait_left_out_gets_nothing():
    shares = allocate({"a": 3, "b": 1}, 8, {"a": 100, "b": 100, "c": 100})
    assert shares == {"a": 6, "b": 2, "c": 0}


def test_explicit_weights_pass_on_only_among_weighted_traits():
    assert allocate({"a": 1, "b": 1}, 10, {"a": 2, "b": 100, "c": 100}) == {"a": 2, "b": 8, "c": 0}


def test_never_more_than_the_capacity_in_all():
    shares = allocate("equal", 100, {"a": 3, "b": 5})
    assert shares == {"a": 3, "b": 5}


def test_no_budget_or_no_traits():
    assert allocate("equal", 0, {"a": 5}) == {"a": 0}
    assert allocate("equal", 5, {}) == {}


def test_the_rule_is_described_as_printed():
    assert describe("equal") == "equal shares"
    assert describe({"b": 1, "a": 2.5}) == "weights a 2.5, b 1"


def test_the_shortfall_says_why():
    full = TraitShare("a", open_prompts=10, share=5, selected=5)
    assert shortfall_note(full, left_open=5) is None
    out = TraitShare("a", open_prompts=3, share=5, selected=3)
    assert "ran out of open prompts" in (shortfall_note(out, left_open=0) or "")
    dull = TraitShare("a", open_prompts=10, share=5, selected=2)
    assert "other 8 open prompts was worth asking" in (shortfall_note(dull, left_open=8) or "")


# -- config -----------------------------------------------------------------------------------


def test_weights_must_be_non_negative_and_one_positive():
    with pytest.raises(ValidationError, match="negative weight"):
        SelectionConfig(trait_budget={"honesty": -1})
    with pytest.raises(ValidationError, match="no trait a weight above 0"):
        SelectionConfig(trait_budget={"honesty": 0})
    with pytest.raises(ValidationError):
        SelectionConfig(trait_budget="balanced")


def test_weights_must_name_defined_traits(config):
    data = config.model_dump()
    data["curation"]["selection"]["trait_budget"] = {"honesty": 1, "kindness": 1}
    with pytest.raises(ValidationError, match=r"names traits \['kindness'\]"):
        ProjectConfig.model_validate(data)


# -- selection --------------------------------------------------------------------------------

TRAITS = ("honesty", "corrigibility", "harmlessness")
PROMPTS_PER_TRAIT = {"honesty": 40, "corrigibility": 15, "harmlessness": 5}


@pytest.fixture(scope="module")
def three_traits():
    """TruthfulQA rows restated as three traits' prompts: 40 honesty, 15 corrigibility, 5
    harmlessness, with gold values and one scorer's probabilities on each row's trait."""
    from traitforge.workspace import default_config

    outcomes = [
        o
        for o in source_format("truthfulqa").reader(TRUTHFULQA, default_config())
        if isinstance(o, Parsed)
    ][: sum(PROMPTS_PER_TRAIT.values())]
    assigned = [t for t in TRAITS for _ in range(PROMPTS_PER_TRAIT[t])]
    rng = np.random.default_rng(1)
    candidates: list[Candidate] = []
    scores: list[Scores] = []
    prompts: dict[str, np.ndarray] = {}
    responses: dict[str, np.ndarray] = {}
    for outcome, trait in zip(outcomes, assigned, strict=True):
        for c in outcome.candidates:
            c = c.model_copy(update={"traits": [trait], "gold": {trait: c.gold["honesty"]}})
            candidates.append(c)
            prompts.setdefault(c.prompt_id, _unit(rng.normal(size=8)))
            responses[c.id] = _unit(prompts[c.prompt_id] + 0.5 * rng.normal(size=8))
            p = float(np.clip(0.3 + 0.4 * c.gold[trait] + rng.normal(0, 0.15), 0, 1))
            scores.append(
                Scores(
                    candidate_id=c.id,
                    scorer="embedding-logreg.v1",
                    trait=trait,
                    score=0,
                    probability=p,
                )
            )
    return candidates, scores, prompts, responses


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _selector(config, **selection) -> PairSelector:
    settings = SelectionConfig(**selection)
    return PairSelector(
        config.model_copy(
            update={"curation": config.curation.model_copy(update={"selection": settings})}
        )
    )


def _run(config, pool, budget, **selection):
    selector = _selector(config, **selection)
    tasks = selector.process(SelectionInputs(*pool), budget, 0)
    return selector, tasks


@pytest.mark.parametrize("strategy", ["uncertainty", "random", "decisive.v1"])
def test_equal_shares_give_every_trait_its_part(config, three_traits, strategy):
    selector, tasks = _run(config, three_traits, 30, strategy=strategy, gold_fraction=0.0)
    got = Counter(t.trait for t in tasks)
    # 10 each, but harmlessness has 5 prompts: its other 5 go to the two others (the odd one
    # by name).
    assert got == {"honesty": 12, "corrigibility": 13, "harmlessness": 5}
    shares = selector.trait_shares
    assert list(shares) == list(TRAITS)  # config order
    assert [shares[t].share for t in TRAITS] == [12, 13, 5]
    assert all(shares[t].selected == got[t] for t in TRAITS)


def test_without_budgets_per_trait_the_largest_trait_would_win(config, three_traits):
    """What the split is for: ranked together, honesty takes most of the round."""
    _, tasks = _run(config, three_traits, 30, strategy="uncertainty", gold_fraction=0.0)
    _, ranked = _run(
        config,
        three_traits,
        30,
        strategy="uncertainty",
        gold_fraction=0.0,
        trait_budget="proportional",
    )
    assert Counter(t.trait for t in ranked)["honesty"] == 20
    assert Counter(t.trait for t in tasks)["honesty"] == 12


def test_a_trait_that_runs_out_says_so_and_passes_the_rest_on(config, three_traits):
    selector, tasks = _run(config, three_traits, 45, strategy="uncertainty", gold_fraction=0.0)
    got = Counter(t.trait for t in tasks)
    assert got == {"honesty": 25, "corrigibility": 15, "harmlessness": 5}
    harmlessness = selector.trait_shares["harmlessness"]
    assert harmlessness.open_prompts == 5 and harmlessness.selected == 5
    corrigibility = selector.trait_shares["corrigibility"]
    assert corrigibility.note is None  # it got all its share
    assert harmlessness.line() == "harmlessness: 5 of a share of 5 (5 open prompts)"


def test_explicit_weights(config, three_traits):
    weights = {"honesty": 1, "corrigibility": 1}
    selector, tasks = _run(
        config, three_traits, 20, strategy="uncertainty", gold_fraction=0.0, trait_budget=weights
    )
    assert Counter(t.trait for t in tasks) == {"honesty": 10, "corrigibility": 10}
    assert selector.trait_shares["harmlessness"].share == 0


def test_gold_checks_are_split_between_traits(config, three_traits):
    selector, tasks = _run(config, three_traits, 30, strategy="uncertainty", gold_fraction=0.2)
    gold = Counter(t.trait for t in tasks if t.gold_check)
    assert sum(gold.values()) == 6 == selector.gold_checks.made
    assert gold == {"honesty": 2, "corrigibility": 2, "harmlessness": 2}
    assert Counter(t.trait for t in tasks) == {
        "honesty": 12,
        "corrigibility": 13,
        "harmlessness": 5,
    }


def test_a_trait_with_nothing_worth_asking_passes_its_share_on(config, three_traits, monkeypatch):
    """decisive.v1 skips groups below MIN_INFORMATION; make harmlessness's all fall below."""
    from traitforge.curation import acquisition, selection

    harmless = {c.id for c in three_traits[0] if c.traits == ["harmlessness"]}
    real = acquisition.Acquisition.score

    def score(self, groups, kind):
        info = real(self, groups, kind)
        return [
            i if not harmless & set(g) else type(i)(0.0, 0.0, i.tie)
            for g, i in zip(groups, info, strict=True)
        ]

    monkeypatch.setattr(acquisition.Acquisition, "score", score)
    selector, tasks = _run(config, three_traits, 30, strategy="decisive.v1", gold_fraction=0.0)
    got = Counter(t.trait for t in tasks)
    assert "harmlessness" not in got and sum(got.values()) == 30
    note = selector.trait_shares["harmlessness"].note or ""
    assert "was worth asking" in note
    assert selector.note and selector.note.startswith("harmlessness: nothing scores above chance")
    assert selection.MIN_INFORMATION > 0


def test_curate_prints_what_each_trait_got(capsys):
    from traitforge.cli.render import print_curation
    from traitforge.curation.pipeline import CurationReport

    shares = [
        TraitShare("honesty", 40, 12, 12),
        TraitShare(
            "harmlessness", 5, 5, 5, "it ran out of open prompts; the other traits took the rest"
        ),
    ]
    report = CurationReport(
        candidates=10,
        embedded={},
        flagged={},
        duplicates={},
        scored={},
        trained=[],
        new_tasks={"uncertainty": 17},
        tasks_in_round=17,
        budget=17,
        round=1,
        trait_shares=shares,
        trait_budget=describe("equal"),
    )
    print_curation(report)
    out = " ".join(capsys.readouterr().out.split())
    assert "Budget per trait (equal shares):" in out
    assert "honesty: 12 of a share of 12 (40 open prompts)" in out
    assert "harmlessness: 5 of a share of 5 (5 open prompts); it ran out of open prompts" in out
