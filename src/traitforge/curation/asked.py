"""Which traits a prompt is asked about: one rule for selection, the judge and the gap report."""

from __future__ import annotations

from collections.abc import Sequence

from traitforge.schemas import Candidate, ProjectConfig


def prompt_traits(project: ProjectConfig, members: Sequence[Candidate]) -> list[str]:
    """The traits a prompt is asked about, heaviest first (asked as the overall preference;
    the others are rated). Those its candidates state (`ingest.mapping.trait`), weighted
    above 0: none when every stated trait has weight 0, as the prompt is for no other.
    Where none is stated: the weighted traits its data has gold for, else every one.
    A stated trait the config no longer defines is ignored."""
    defined = {t.name for t in project.traits}
    names = [t.name for t in project.traits if project.trait_weight(t.name) > 0]
    stated = {t for c in members for t in c.traits if t in defined}
    if stated:
        traits = [n for n in names if n in stated]
    else:
        traits = [n for n in names if any(n in c.gold for c in members)] or names
    return sorted(traits, key=lambda n: -project.trait_weight(n))
