"""Pair strategies: which (chosen, rejected) pairs a ranked group of candidates yields.

'length-balanced' forms every pair, like 'all-pairs', within a group; `balance_lengths` then
evens out the trait's pairs as a whole (the exporter calls it), since one prompt's handful of
candidates can rarely be balanced on its own.
"""

from __future__ import annotations

from itertools import combinations

from traitforge.annotators.aggregation import DropCounter, RankedGroup
from traitforge.schemas import Candidate, PreferencePair, Provenance
from traitforge.schemas.config import parse_strategy


def pairs_from_group(group: RankedGroup, strategy: str, drops: DropCounter) -> list[PreferencePair]:
    """Apply a pair strategy to one group. Degenerate pairs are dropped and counted."""
    kind, min_margin = parse_strategy(strategy)
    ranked = sorted(group.candidates, key=lambda c: (-group.scores[c.id], c.id))
    if len(ranked) < 2:
        return []
    if kind == "best-vs-worst":
        best, worst = ranked[0], ranked[-1]
        if group.scores[best.id] == group.scores[worst.id]:
            drops["tie: every candidate equally preferred"] += 1
            return []
        candidates = [(best, worst)]
    else:
        candidates = list(combinations(ranked, 2))
    pairs = []
    for chosen, rejected in candidates:
        margin = group.scores[chosen.id] - group.scores[rejected.id]
        if margin == 0:
            drops["tie: equal preference"] += 1
            continue
        if min_margin is not None and margin < min_margin:
            drops[f"margin below {min_margin:g}"] += 1
            continue
        if chosen.response.strip() == rejected.response.strip():
            drops["chosen and rejected have the same text"] += 1
            continue
        reason = _against_votes(group, chosen.id, rejected.id)
        if reason:
            drops[reason] += 1
            continue
        pairs.append(_pair(group, chosen, rejected, margin))
    return pairs


def balance_lengths(pairs: list[PreferencePair], drops: DropCounter) -> list[PreferencePair]:
    """As many pairs whose chosen response is shorter (in words, as the card counts) as pairs
    whose chosen response is longer, so that length cannot predict the label. The surplus side
    loses its pairs of smallest margin first (then by pair id, so the result is deterministic);
    each is dropped and counted. Pairs of equal length are kept."""
    longer, shorter, kept = [], [], []
    for pair in pairs:
        gap = len(pair.chosen.split()) - len(pair.rejected.split())
        (longer if gap > 0 else shorter if gap < 0 else kept).append(pair)
    keep = min(len(longer), len(shorter))
    for side, name in ((longer, "longer"), (shorter, "shorter")):
        side.sort(key=lambda p: (-p.margin, p.id))
        kept += side[:keep]
        if len(side) > keep:
            drops[f"length balance: surplus chosen-{name} pair"] += len(side) - keep
    return sorted(kept, key=lambda p: p.id)


def _against_votes(group: RankedGroup, chosen_id: str, rejected_id: str) -> str | None:
    """Why the annotators' own votes on this pair forbid it, if they do.

    An even split is a tie for every method: BT and NoisyBT would still order the two (NoisyBT
    by its estimated annotator skills, from a random start), but a reward signal should not rest
    on a model's tie-break. Under majority vote the pair's direction must also be its voters'
    majority; mean ranks over k candidates can disagree with it (Borda vs Condorcet).
    """
    if group.origin != "judgements":
        return None
    votes = group.votes_for(chosen_id, rejected_id)
    if votes.total and votes.first == votes.second:
        return "tie: annotators split evenly"
    if group.method == "majority" and votes.second > votes.first:
        return "majority of votes prefers the rejected side"
    return None


def _pair(
    group: RankedGroup, chosen: Candidate, rejected: Candidate, margin: float
) -> PreferencePair:
    votes = group.votes_for(chosen.id, rejected.id)
    agreement = votes.first / votes.total if votes.total else None
    return PreferencePair(
        prompt_id=group.prompt_id,
        prompt=chosen.prompt,
        chosen=chosen.response,
        rejected=rejected.response,
        chosen_id=chosen.id,
        rejected_id=rejected.id,
        trait=group.trait.name,
        margin=round(margin, 6),
        confidence=_rounded(group.confidence(chosen.id, rejected.id)),
        votes=votes.total,
        agreement=agreement,
        origin=group.origin,  # type: ignore[arg-type]
        provenance=Provenance(
            sources=sorted({chosen.source, rejected.source}),
            task_ids=[group.task_id] if group.task_id else [],
            annotators=group.annotators,
            guideline_version=group.trait.guideline_version if group.origin != "gold" else None,
            scorer_versions=group.scorers,
            simulated=group.simulated,
        ),
    )


def _rounded(value: float | None) -> float | None:
    """Six decimals, like the margin: optimizer noise below that must not change export bytes."""
    return None if value is None else round(value, 6)
