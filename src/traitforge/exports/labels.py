"""The workspace's preferences put to uses other than the exported dataset: labels for the
trait classifiers from annotators' judgements, and the held-out gold pairs that reward models
are evaluated on."""

from __future__ import annotations

from collections import defaultdict

from traitforge.curation.scorers import Example
from traitforge.exports.exporter import build_pairs
from traitforge.exports.split import split_of
from traitforge.schemas import PreferencePair, ProjectConfig
from traitforge.workspace import Store


def judgement_examples(store: Store, config: ProjectConfig) -> dict[str, list[Example]]:
    """Classifier labels from annotators: chosen sides are positives, rejected negatives; a
    response chosen and rejected equally often is left out."""
    pairs, _, _ = build_pairs(
        store, config, origin="judgements", strategy="all-pairs", trait_strategies={}
    )
    votes: dict[tuple[str, str], int] = defaultdict(int)
    for pair in pairs:
        votes[(pair.trait, pair.chosen_id)] += 1
        votes[(pair.trait, pair.rejected_id)] -= 1
    examples: dict[str, list[Example]] = defaultdict(list)
    for (trait, candidate_id), balance in sorted(votes.items()):
        if balance:
            examples[trait].append(Example(candidate_id, int(balance > 0)))
    return dict(examples)


def held_out_gold(store: Store, config: ProjectConfig) -> list[PreferencePair]:
    """Gold-labelled pairs of the test prompts, by id: the export's split puts a prompt on
    the same side whatever the origin, so no model trained on an export has seen them."""
    pairs, _, _ = build_pairs(store, config, origin="gold")
    settings = config.export
    return [
        p for p in pairs if split_of(p.prompt_id, settings.seed, settings.test_fraction) == "test"
    ]
