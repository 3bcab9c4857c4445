"""The label audit on real data: the bundled corrigibility files (two gold sources of one trait),
embedded by the real MiniLM model, with labels deliberately flipped or inverted in the input
files themselves. No Argilla server: the audit reads the store and the embedding cache only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from traitforge.app import workflows
from traitforge.app.workflows import bundled_data_dir
from traitforge.curation.embeddings import Embedder, EmbeddingCache
from traitforge.curation.scorers.features import prompt_texts
from traitforge.curation.sources.anthropic_evals import split_options
from traitforge.exports import build_pairs
from traitforge.exports.audit import INVERTED
from traitforge.schemas.records import prompt_text
from traitforge.schemas.results import SourceVerdict
from traitforge.workspace import Workspace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = 100  # of each file's 200: three sources of 100 pairs, embedded in seconds on a CPU
NEUTRAL, MORE = "corrigible-neutral-HHH", "corrigible-more-HHH"
# The third bundled corrigibility file. With two sources, each is judged by the other alone,
# so an inverted one makes the clean one read as inverted too: a third breaks the tie.
SURVIVAL = "survival-instinct"
FILES = (NEUTRAL, MORE, SURVIVAL)
SWAPPED = ("answer_not_matching_behavior", "answer_matching_behavior")


def _rows(name: str) -> list[dict[str, str]]:
    path = bundled_data_dir() / "anthropic-evals" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()][:ROWS]


def _swapped(row: dict[str, str]) -> dict[str, str]:
    """The row with its two answers' roles exchanged: the gold label flipped."""
    return {**row, SWAPPED[0]: row[SWAPPED[1]], SWAPPED[1]: row[SWAPPED[0]]}


def _workspace(root: Path, flipped: dict[str, set[int]], cache: Path | None) -> Workspace:
    """Ingest the files (the rows in `flipped[name]` swapped), export the pairs into the
    store, and embed every text (or reuse `cache`: flipping a label changes no text)."""
    ws = Workspace.open(root / "ws")
    inputs = root / "inputs"
    inputs.mkdir()
    paths = []
    for name in FILES:
        rows = [_swapped(r) if i in flipped.get(name, ()) else r for i, r in enumerate(_rows(name))]
        path = inputs / f"{name}.jsonl"  # the file name picks the polarity from the config
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    workflows.ingest(ws, "anthropic-evals", paths)
    with ws.store() as store:
        pairs, _, _ = build_pairs(store, ws.config)
        with store.transaction():
            store.replace_pairs(pairs)
        candidates = list(store.candidates())
    if cache is not None:
        shutil.copy(cache, ws.embedding_cache_path)
    else:
        with EmbeddingCache(ws.embedding_cache_path) as opened:
            embedder = Embedder(ws.config.curation.embedding, opened)
            embedder.setup()
            embedder.embed([c.response for c in candidates])
            embedder.embed(prompt_texts(candidates))
    return ws


@pytest.fixture(scope="module")
def embedded(tmp_path_factory) -> Path:
    """The embedding cache of the files' texts, made once by the real model."""
    root = tmp_path_factory.mktemp("clean")
    return _workspace(root, {}, None).embedding_cache_path


def test_the_audit_finds_most_of_a_tenth_of_real_labels_flipped(tmp_path, embedded):
    flips = set(range(0, ROWS, 10))  # 10 of corrigible-neutral's 100 rows
    ws = _workspace(tmp_path, {NEUTRAL: flips}, embedded)
    with ws.store() as store:
        pairs = list(store.pairs())
    prompts = {split_options(_rows(NEUTRAL)[i]["question"])[0] for i in flips}
    flipped = {p.id for p in pairs if prompt_text(p.prompt) in prompts}
    assert len(flipped) == len(flips)
    audit = workflows.audit(ws).traits["corrigibility"]
    found = {f.pair_id for f in audit.flagged}
    hits = len(found & flipped)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(flipped)
    print(
        f"flagged {len(found)} of {audit.pairs}, flipped {len(flipped)}, hits {hits}: "
        f"precision {precision:.2f}, recall {recall:.2f}"
    )
    # Measured: 13 of 296 pairs flagged, 7 of the 10 flips among them (precision 0.54,
    # recall 0.70); the bounds sit below that, the audit's rule was not tuned on this data.
    assert recall >= 0.6, (precision, recall, audit.note)
    assert precision >= 0.3, (precision, recall)
    assert not any(v.verdict == INVERTED for v in audit.sources), audit.sources


@pytest.fixture(scope="module")
def inverted(tmp_path_factory, embedded) -> dict[str, SourceVerdict]:
    """Source -> verdict, with every label of corrigible-more inverted."""
    ws = _workspace(tmp_path_factory.mktemp("inverted"), {MORE: set(range(ROWS))}, embedded)
    verdicts = {v.source: v for v in workflows.audit(ws).traits["corrigibility"].sources}
    print({name: (v.verdict, v.share) for name, v in verdicts.items()})
    return verdicts


def test_a_real_source_with_every_label_inverted_is_reported(inverted):
    assert inverted[f"anthropic-evals/{MORE}"].verdict == INVERTED
    # survival-instinct, unlike the two corrigible files in wording, is not blamed.
    assert inverted[f"anthropic-evals/{SURVIVAL}"].verdict != INVERTED


def test_the_clean_look_alike_of_an_inverted_source_is_not_reported(inverted):
    # Judged first by corrigible-more (inverted) and survival-instinct, corrigible-neutral
    # agreed with 24 of 99 labels: its near-copy's flipped labels dominated its rivals'
    # model. Set aside as the most inverted source, corrigible-more no longer judges it.
    assert inverted[f"anthropic-evals/{NEUTRAL}"].verdict != INVERTED
