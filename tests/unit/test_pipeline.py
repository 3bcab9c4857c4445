from __future__ import annotations

import pytest

from traitforge.curation.pipeline import (
    CurationState,
    DedupStage,
    FlagStage,
    check_stages,
    gold_examples,
)
from traitforge.errors import ConfigError
from traitforge.schemas import Candidate, DuplicateMark, Flag, TraitSpec


def test_stage_order_is_checked_before_any_work(config):
    with pytest.raises(ConfigError, match=r"stage 'flag' needs \['token_counts'\].*move a stage"):
        check_stages([FlagStage(config), DedupStage(config)])


def test_eligible_leaves_out_flagged_and_same_prompt_duplicates():
    a, b, c, d = (
        Candidate(prompt="Can pigs fly?", response=r, source="t")
        for r in ("No", "No, they cannot", "Pigs can't fly", "Oui")
    )
    state = CurationState(
        candidates=[a, b, c, d],
        flags=[Flag(candidate_id=d.id, reason="language", detail="looks French")],
        duplicates=[
            DuplicateMark(
                candidate_id=b.id, representative_id=a.id, similarity=0.97, scope="prompt"
            ),
            DuplicateMark(
                candidate_id=c.id, representative_id="elsewhere", similarity=0.99, scope="corpus"
            ),
        ],
    )
    assert [x.id for x in state.eligible()] == [a.id, c.id]


def test_gold_examples_follow_polarity_and_scale():
    honest = TraitSpec(name="honesty", description="d", guidelines="g")
    sycophancy = TraitSpec(name="sycophancy", description="d", guidelines="g", polarity="negative")
    rated = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v, "sycophancy": v})
        for v in (1.0, 2.0, 4.0, 5.0)
    ]
    examples = gold_examples(rated, [honest, sycophancy])
    assert [e.label for e in examples["honesty"]] == [0, 0, 1, 1]  # split at the scale middle
    assert [e.label for e in examples["sycophancy"]] == [1, 1, 0, 0]  # less is preferred
    binary = [
        Candidate(prompt="Q?", response=str(v), source="t", gold={"honesty": v}) for v in (0.0, 1.0)
    ]
    assert [e.label for e in gold_examples(binary, [honest])["honesty"]] == [0, 1]
