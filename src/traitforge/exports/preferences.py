"""Per prompt and trait, how strongly each candidate is preferred, from gold labels.

Gold labels become the same `RankedGroup` that aggregated judgements become
(`traitforge.annotators.aggregation`), so the pair strategies never need to know where a
preference came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from traitforge.annotators.aggregation import RankedGroup
from traitforge.schemas import Candidate, TraitSpec


def gold_groups(candidates: Iterable[Candidate], trait: TraitSpec) -> list[RankedGroup]:
    """One group per prompt, from the candidates that carry a gold value for `trait`."""
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if trait.name in candidate.gold:
            by_prompt[candidate.prompt_id].append(candidate)
    return [
        RankedGroup(
            trait=trait,
            prompt_id=prompt_id,
            candidates=members,
            origin="gold",
            scores={c.id: trait.preference(c.gold[trait.name]) for c in members},
        )
        for prompt_id, members in sorted(by_prompt.items())
    ]
