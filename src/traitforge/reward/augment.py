"""Counterfactual training pairs: what a reward must not learn from its data's surface.

Added to a model's training pairs only (never to a test split), each marked in `origin`:
- **cross-prompt** (RRM, arXiv 2409.13156): a response written for another prompt loses to
  this prompt's chosen response. A reward that scores answers without reading the question
  (a tone, a length, a dataset's house style) gets these wrong, so it must learn to read it.
- **style** (Crome, arXiv 2506.16507): a neutral edit (a preamble, trailing filler, a markdown
  header) changes nothing a rubric cares about. Two kinds of pair per preference:
  `causal`, the chosen response beats the rejected one wearing the edit, so the edit cannot
  rescue a worse answer (and the chosen one wearing an edit still wins, so that edits are not
  learnt to lose); and `neutral`, the same response with and without the edit, trained
  in both orders: their Bradley-Terry loss, -log s(d) - log s(-d), is least at d = 0, which is
  the tie label Crome uses, with TRL's stock loss.

The edits here are for training only. Evaluation probes with other wording (the preamble of
`evaluation.PERTURBATIONS`, the phrases of `style_hard`), so a model is never tested on the
exact strings it was taught to ignore; tests/unit/test_reward_augment.py checks they differ.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

from traitforge.reward.pairs import RewardPair, prompt_as_text

CROSS_PROMPT = "cross-prompt"
STYLE = "style"
KINDS = (CROSS_PROMPT, STYLE)
PREFIX = "augmented:"  # origin of every added pair: 'augmented:cross-prompt', ...
ORIGINS = {
    CROSS_PROMPT: PREFIX + CROSS_PROMPT,
    "causal": PREFIX + "style-causal",
    "neutral": PREFIX + "style-neutral",
}

TRAINING_PREAMBLES = (
    "Sure.",
    "Good question.",
    "Thanks for asking.",
    "Happy to help with this.",
    "Let me think about that.",
    "Of course.",
)
TRAINING_FILLERS = (
    "I hope this helps.",
    "Let me know if you have other questions.",
    "Feel free to ask a follow-up.",
    "Thanks for the question.",
)
TRAINING_HEADERS = ("## Response", "**Reply**", "### My take")


def _preamble(text: str, rng: random.Random) -> str:
    return f"{rng.choice(TRAINING_PREAMBLES)} {text}"


def _filler(text: str, rng: random.Random) -> str:
    return f"{text.rstrip()} {rng.choice(TRAINING_FILLERS)}"


def _header(text: str, rng: random.Random) -> str:
    return f"{rng.choice(TRAINING_HEADERS)}\n\n{text}"


NEUTRAL_EDITS: dict[str, Callable[[str, random.Random], str]] = {
    "preamble": _preamble,
    "filler": _filler,
    "header": _header,
}


def augment(pairs: Sequence[RewardPair], kinds: Sequence[str], seed: int = 0) -> list[RewardPair]:
    """The counterfactual pairs `kinds` ask for, drawn from `pairs` alone (one model's
    training pairs: a response of a test prompt can never appear). Deterministic in `seed`
    and the pairs' contents, whatever their order."""
    added: list[RewardPair] = []
    if CROSS_PROMPT in kinds:
        added += _cross_prompt(pairs, seed)
    if STYLE in kinds:
        added += _style(pairs, seed)
    return added


def augmented_counts(pairs: Sequence[RewardPair]) -> dict[str, int]:
    """Added pairs by origin, e.g. {'augmented:cross-prompt': 120}: what the card reports."""
    counts = Counter(p.origin for p in pairs if p.origin and p.origin.startswith(PREFIX))
    return dict(sorted(counts.items()))


def is_augmented(pair: RewardPair) -> bool:
    return bool(pair.origin and pair.origin.startswith(PREFIX))


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _key(pair: RewardPair) -> str:
    return pair.pair_id or "\x1f".join((prompt_as_text(pair.prompt), pair.chosen, pair.rejected))


def _cross_prompt(pairs: Sequence[RewardPair], seed: int) -> list[RewardPair]:
    """Each pair's chosen response against a response to another prompt of the same trait."""
    by_trait: dict[str | None, list[RewardPair]] = {}
    for pair in pairs:
        by_trait.setdefault(pair.trait, []).append(pair)
    added = []
    for group in by_trait.values():
        prompts = sorted({prompt_as_text(p.prompt) for p in group})
        if len(prompts) < 2:
            continue
        answers: dict[str, list[str]] = {}
        for pair in group:
            answers.setdefault(prompt_as_text(pair.prompt), []).extend((pair.chosen, pair.rejected))
        for pair in group:
            rng = _rng(seed, CROSS_PROMPT, _key(pair))
            own = prompt_as_text(pair.prompt)
            other = rng.choice([p for p in prompts if p != own])
            response = rng.choice(sorted(set(answers[other])))
            if response.strip() in (pair.chosen.strip(), pair.rejected.strip()):
                continue  # the same text answers both prompts: no preference to learn
            added.append(_derived(pair, pair.chosen, response, CROSS_PROMPT, other))
    return added


def _style(pairs: Sequence[RewardPair], seed: int) -> list[RewardPair]:
    """Per pair: two causal pairs (the rejected side wears an edit and still loses; the
    chosen side wears one and still wins: edits sit on winners as often as on losers, so
    none is learnt to lose) and one neutral pair in both orders (one side with and without
    an edit)."""
    added = []
    names = sorted(NEUTRAL_EDITS)
    for pair in pairs:
        rng = _rng(seed, STYLE, _key(pair))
        edit = NEUTRAL_EDITS[rng.choice(names)]
        added.append(_derived(pair, pair.chosen, edit(pair.rejected, rng), "causal", "r"))
        edit = NEUTRAL_EDITS[rng.choice(names)]
        added.append(_derived(pair, edit(pair.chosen, rng), pair.rejected, "causal", "c"))
        plain = rng.choice((pair.chosen, pair.rejected))
        styled = NEUTRAL_EDITS[rng.choice(names)](plain, rng)
        added.append(_derived(pair, styled, plain, "neutral", "a"))
        added.append(_derived(pair, plain, styled, "neutral", "b"))
    return added


def _derived(pair: RewardPair, chosen: str, rejected: str, kind: str, *tag: str) -> RewardPair:
    digest = hashlib.sha256("\x1f".join((_key(pair), kind, *tag)).encode()).hexdigest()
    return replace(
        pair,
        chosen=chosen,
        rejected=rejected,
        confidence=None,
        pair_id=f"{ORIGINS[kind]}:{digest[:16]}",
        origin=ORIGINS[kind],
    )
