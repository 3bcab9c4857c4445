"""Counterfactual training pairs: what they are, where they come from, how they are marked."""

from __future__ import annotations

from traitforge.reward.augment import (
    CROSS_PROMPT,
    STYLE,
    TRAINING_FILLERS,
    TRAINING_HEADERS,
    TRAINING_PREAMBLES,
    augment,
    augmented_counts,
    is_augmented,
)
from traitforge.reward.evaluation import PERTURBATIONS
from traitforge.reward.pairs import RewardPair


def pairs(trait: str = "honesty", count: int = 6) -> list[RewardPair]:
    return [
        RewardPair(
            f"question {i}?", f"true answer {i}", f"false answer {i}", trait, 0.9, f"{trait}{i}"
        )
        for i in range(count)
    ]


def test_cross_prompt_pairs_put_this_prompts_chosen_over_another_prompts_response():
    given = pairs() + pairs("corrigibility")
    added = augment(given, [CROSS_PROMPT])
    assert len(added) == len(given)
    by_prompt = {(p.trait, p.prompt): p for p in given}
    for pair in added:
        own = by_prompt[(pair.trait, pair.prompt)]
        assert pair.chosen == own.chosen and pair.origin == "augmented:cross-prompt"
        others = [p for p in given if p.trait == pair.trait and p.prompt != pair.prompt]
        # drawn from another prompt of the same trait, never from the pair's own prompt
        assert any(pair.rejected in (o.chosen, o.rejected) for o in others)
        assert pair.confidence is None and is_augmented(pair)


def test_a_trait_with_one_prompt_gets_no_cross_prompt_pairs():
    one = [RewardPair("q?", "a", "b", "honesty", None, "x"), RewardPair("q?", "c", "d", "honesty")]
    assert augment(one, [CROSS_PROMPT]) == []


def test_style_pairs_keep_the_label_and_teach_ties_in_both_orders():
    given = pairs(count=3)
    added = augment(given, [STYLE])
    assert augmented_counts(added) == {"augmented:style-causal": 6, "augmented:style-neutral": 6}
    causal = [p for p in added if p.origin == "augmented:style-causal"]
    for on_rejected, on_chosen, original in zip(causal[::2], causal[1::2], given, strict=True):
        # the rejected answer wears a neutral edit and still loses to the plain chosen one
        assert on_rejected.chosen == original.chosen
        assert original.rejected in on_rejected.rejected
        assert on_rejected.rejected != original.rejected
        # and the chosen one wears one and still wins: edits are on winners as on losers
        assert on_chosen.rejected == original.rejected
        assert original.chosen in on_chosen.chosen and on_chosen.chosen != original.chosen
    neutral = [p for p in added if p.origin == "augmented:style-neutral"]
    for first, second in zip(neutral[::2], neutral[1::2], strict=True):
        assert (first.chosen, first.rejected) == (second.rejected, second.chosen)
        assert first.rejected in first.chosen  # the same response, with and without the edit
    assert len({p.pair_id for p in added}) == len(added)


def test_augmentation_is_deterministic_whatever_the_order_of_the_pairs():
    given = pairs() + pairs("corrigibility")
    forward = augment(given, [CROSS_PROMPT, STYLE], seed=3)
    backward = augment(list(reversed(given)), [CROSS_PROMPT, STYLE], seed=3)
    assert sorted(forward, key=str) == sorted(backward, key=str)
    assert augment(given, [CROSS_PROMPT, STYLE], seed=4) != forward


def test_added_pairs_use_only_the_texts_they_were_given():
    """Built from one model's training pairs, no test response can ever reach training."""
    train, test = pairs(count=4), pairs(count=8)[4:]
    texts = " ".join(t for p in train for t in (p.chosen, p.rejected))
    for pair in augment(train, [CROSS_PROMPT, STYLE]):
        assert not any(t.chosen in pair.chosen + pair.rejected for t in test)
        assert pair.prompt in {p.prompt for p in train}
        assert any(side in texts for side in (pair.chosen, pair.rejected))


def test_training_edits_are_not_the_wording_evaluation_probes_with():
    """A model taught to ignore exactly the evaluation's strings would pass it untaught."""
    probe = "An answer."
    probes = [change(probe).replace(probe, "").strip() for change in PERTURBATIONS.values()]
    training = [*TRAINING_PREAMBLES, *TRAINING_FILLERS, *TRAINING_HEADERS]
    for phrase in training:
        assert all(
            phrase.lower() not in p.lower() and (p.lower() not in phrase.lower() or not p)
            for p in probes
        )


def test_no_kinds_add_nothing():
    assert augment(pairs(), []) == []


def test_training_edits_share_no_phrase_with_style_hard_evaluation():
    from traitforge.reward.style_hard import EVALUATION_PHRASES

    training = [*TRAINING_PREAMBLES, *TRAINING_FILLERS, *TRAINING_HEADERS]
    for phrase in EVALUATION_PHRASES:
        assert not any(t.lower() in phrase.lower() or phrase.lower() in t.lower() for t in training)
