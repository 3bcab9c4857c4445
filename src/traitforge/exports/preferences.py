"""Per prompt and trait, how strongly each candidate is preferred, from gold labels (or the
trait judge's ratings, for AI-feedback pairs).

Gold labels become the same `RankedGroup` that aggregated judgements become
(`traitforge.annotators.aggregation`), so the pair strategies never need to know where a
preference came from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping

from traitforge.annotators.aggregation import RankedGroup
from traitforge.curation.scorers.judge import KEY as JUDGE_KEY
from traitforge.schemas import Candidate, TraitSpec


def _by_prompt(
    candidates: Iterable[Candidate], keep: Callable[[Candidate], bool]
) -> list[tuple[str, list[Candidate]]]:
    """The kept candidates grouped by prompt, in prompt-id order."""
    by_prompt: dict[str, list[Candidate]] = defaultdict(list)
    for candidate in candidates:
        if keep(candidate):
            by_prompt[candidate.prompt_id].append(candidate)
    return sorted(by_prompt.items())


def gold_groups(candidates: Iterable[Candidate], trait: TraitSpec) -> list[RankedGroup]:
    """One group per prompt, from the candidates that carry a gold value for `trait`."""
    return [
        RankedGroup(
            trait=trait,
            prompt_id=prompt_id,
            candidates=members,
            origin="gold",
            scores={c.id: trait.preference(c.gold[trait.name]) for c in members},
        )
        for prompt_id, members in _by_prompt(candidates, lambda c: trait.name in c.gold)
    ]


def judge_groups(
    candidates: Iterable[Candidate],
    trait: TraitSpec,
    judged: Mapping[tuple[str, str], float],
    human_prompts: Collection[str],
) -> list[RankedGroup]:
    """AI-feedback groups: per prompt with no human answer or gold label on `trait`, the
    candidates the trait judge rated, preferred by its score. Origin 'ai-feedback', so these
    pairs are never counted, trained or evaluated on as annotators' judgements."""

    def keep(c: Candidate) -> bool:
        return (c.id, trait.name) in judged and c.prompt_id not in human_prompts

    return [
        RankedGroup(
            trait=trait,
            prompt_id=prompt_id,
            candidates=members,
            origin="ai-feedback",
            scores={c.id: judged[(c.id, trait.name)] for c in members},
            scorers=[JUDGE_KEY],
        )
        for prompt_id, members in _by_prompt(candidates, keep)
        if len(members) >= 2
    ]
