"""The label audit on synthetic embeddings where the gold label is a linear function of the
features: flipped labels are found, an inverted source is named, a clean one is not, and bad
input says what to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from traitforge.app import workflows
from traitforge.cli import app
from traitforge.curation.embeddings import Embedder, EmbeddingCache, text_key
from traitforge.errors import ExportError, WorkspaceError
from traitforge.exports import build_pairs
from traitforge.exports.audit import CONSISTENT, INVERTED, _source_names, audit_labels
from traitforge.schemas import Candidate
from traitforge.workspace import Workspace

DIM = 16
MARKUP = "a [/x] b"  # rich markup that would crash (or vanish) if printed as markup


def _workspace(tmp_path, sources, flip=None, embed=True, export=True):
    """A workspace with one honesty pair per prompt of each source (name -> (prompts,
    inverted)); the better side is the one with the larger u . response. `flip` maps a source
    to the prompt indices whose gold labels are swapped. Returns it and the flipped pair ids."""
    rng = np.random.default_rng(7)
    u = rng.normal(size=DIM)
    ws = Workspace.open(tmp_path / "ws")
    candidates, vectors, flipped_prompts = [], {}, set()
    for source, (prompts, inverted) in sources.items():
        for i in range(prompts):
            prompt = f"{source} question {i}?"
            vectors[prompt] = _unit(rng.normal(size=DIM))
            sides = [f"{source} answer {i} {side} {MARKUP}" for side in "ab"]
            for side in sides:
                vectors[side] = _unit(rng.normal(size=DIM))
            better = int(u @ vectors[sides[1]] > u @ vectors[sides[0]])
            swapped = inverted ^ (i in (flip or {}).get(source, ()))
            for k, side in enumerate(sides):
                gold = float((k == better) ^ swapped)
                candidates.append(
                    Candidate(prompt=prompt, response=side, source=source, gold={"honesty": gold})
                )
            if i in (flip or {}).get(source, ()):
                flipped_prompts.add(candidates[-1].prompt_id)
    with ws.store() as store:
        with store.transaction():
            store.add_candidates(candidates)
        pairs, _, _ = build_pairs(store, ws.config)
        if export:
            with store.transaction():
                store.replace_pairs(pairs)
    if embed:
        with EmbeddingCache(ws.embedding_cache_path) as cache:
            key = Embedder(ws.config.curation.embedding).cache_model  # as curation writes
            cache.put(key, {text_key(t): v for t, v in vectors.items()})
    return ws, {p.id for p in pairs if p.prompt_id in flipped_prompts}


def _unit(v):
    return v / np.linalg.norm(v)


def _audit(ws, **kwargs):
    with ws.store() as store:
        return audit_labels(store, ws.config, ws.embedding_cache_path, **kwargs)


def test_flipped_labels_are_flagged_with_high_precision_and_recall(tmp_path):
    # 10% of source b's gold labels flipped: 10 of its 100 pairs, among 300.
    ws, flipped = _workspace(
        tmp_path,
        {"a": (100, False), "b": (100, False), "c": (100, False)},
        flip={"b": range(0, 100, 10)},
    )
    audit = _audit(ws).traits["honesty"]
    found = {f.pair_id for f in audit.flagged}
    precision = len(found & flipped) / len(found)
    recall = len(found & flipped) / len(flipped)
    # Measured at this seed: precision 0.75 (12 flagged, 9 flipped), recall 0.9.
    assert recall >= 0.8, (precision, recall)
    assert precision >= 0.6, (precision, recall)
    assert audit.pairs == 300 and audit.unembedded == 0
    assert audit.threshold is not None and audit.threshold > 0.5
    assert all(1 - f.p_chosen >= audit.threshold for f in audit.flagged)
    # A few flips leave every source consistent with the others.
    assert [v.verdict for v in audit.sources] == [CONSISTENT] * 3


def test_a_source_with_every_label_inverted_is_reported_and_clean_ones_are_not(tmp_path):
    ws, _ = _workspace(
        tmp_path,
        {"a": (60, False), "b": (60, False), "c": (60, False), "inverted": (60, True)},
    )
    verdicts = {v.source: v for v in _audit(ws).traits["honesty"].sources}
    assert verdicts["inverted"].verdict == INVERTED
    assert verdicts["inverted"].share < 0.5 and verdicts["inverted"].share_ci[1] < 0.5
    for clean in "abc":
        # Judged by two clean sources and the inverted one, a clean source may read as noisy
        # (its rivals' model learnt a third of the signal backwards), never as inverted.
        assert verdicts[clean].verdict != INVERTED, verdicts[clean]
        assert verdicts[clean].share > 0.5


def test_a_large_inverted_source_is_set_aside_before_its_rivals_are_judged(tmp_path):
    """Judged by rivals that are mostly the inverted source, clean sources look inverted
    too; judged again without it, they are not."""
    ws, _ = _workspace(
        tmp_path, {"big-inverted": (150, True), "clean": (40, False), "other": (40, False)}
    )
    verdicts = {v.source: v for v in _audit(ws).traits["honesty"].sources}
    assert verdicts["big-inverted"].verdict == INVERTED
    assert verdicts["clean"].verdict == CONSISTENT, verdicts["clean"]
    assert verdicts["other"].verdict == CONSISTENT, verdicts["other"]


def test_two_sources_that_contradict_each_other_are_both_named(tmp_path):
    ws, _ = _workspace(tmp_path, {"inverted": (60, True), "clean": (60, False)})
    verdicts = {v.source: v.verdict for v in _audit(ws).traits["honesty"].sources}
    assert verdicts == {"inverted": INVERTED, "clean": INVERTED}  # nothing says which is wrong


def test_a_source_too_small_or_alone_is_not_judged(tmp_path):
    ws, _ = _workspace(tmp_path, {"alone": (30, False)})
    (verdict,) = _audit(ws).traits["honesty"].sources
    assert verdict.verdict == "not checked: no other source of this trait"
    assert verdict.share is None
    (verdict,) = _audit(ws, min_source_pairs=31).traits["honesty"].sources
    assert verdict.verdict == "not checked: 30 pairs, fewer than 31"


def test_files_of_one_source_are_judged_apart():
    # The anthropic-evals files share a source, each with its own polarity.
    candidate = Candidate(
        prompt="q",
        response="r",
        source="anthropic-evals",
        metadata={"file": "corrigible-neutral-HHH"},
    )
    assert _source_names([candidate]) == {candidate.id: "anthropic-evals/corrigible-neutral-HHH"}


def test_empty_workspace_says_to_ingest_and_export(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(
        ExportError,
        match=r"no exported pairs; run `traitforge ingest` and then `traitforge export`",
    ):
        _audit(ws)


def test_unexported_workspace_says_to_export(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)}, export=False)
    with pytest.raises(ExportError, match=r"no exported pairs; run `traitforge export` first"):
        _audit(ws)


def test_no_embeddings_says_to_curate(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)}, embed=False)
    with pytest.raises(
        ExportError, match=r"no embeddings of the exported pairs in .*run `traitforge curate"
    ):
        _audit(ws)
    assert not ws.embedding_cache_path.exists()  # asking created no cache


def test_too_few_folds_is_refused(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)})
    with pytest.raises(ExportError, match=r"--folds 1: a cross-fitted committee needs at least 2"):
        _audit(ws, folds=1)


def test_cli_prints_flagged_text_literally_and_writes_audit_json(tmp_path):
    ws, flipped = _workspace(
        tmp_path, {"a": (40, False), "b": (40, False)}, flip={"b": range(0, 40, 10)}
    )
    result = CliRunner().invoke(app, ["audit", "-w", str(ws.root), "--limit", "0"])
    assert result.exit_code == 0, result.output
    assert MARKUP in result.output  # user text as written, never markup
    assert "labels may be inverted" not in result.output
    written = json.loads((ws.root / workflows.AUDIT_FILE).read_text())
    flagged = {f["pair_id"] for f in written["traits"]["honesty"]["flagged"]}
    assert flagged & flipped
    assert written["rule"].startswith("flag a pair when")
    as_json = CliRunner().invoke(app, ["audit", "-w", str(ws.root), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == written


def test_cli_on_an_empty_workspace_is_one_error_line(tmp_path):
    Workspace.open(tmp_path / "ws")
    result = CliRunner().invoke(app, ["audit", "-w", str(tmp_path / "ws")])
    assert result.exit_code == 1
    assert "traitforge ingest" in result.stderr and "Traceback" not in result.output


def test_a_committee_not_shown_to_beat_chance_flags_nothing(tmp_path):
    # Every second label flipped: the features say nothing about the labels any more.
    ws, _ = _workspace(tmp_path, {"a": (40, False)}, flip={"a": range(0, 40, 2)})
    (trait,) = [t for t in _audit(ws).traits.values() if t.pairs]
    assert trait.flagged == [] and trait.threshold is None
    assert "not shown to beat chance" in trait.note


INVERTED_SOURCE = "inv [/x] erted"  # a source name that is rich markup: printed literally


def _inverted_workspace(tmp_path):
    return _workspace(
        tmp_path,
        {"a": (60, False), "b": (60, False), "c": (60, False), INVERTED_SOURCE: (60, True)},
    )[0]


def _status(ws):
    result = CliRunner().invoke(app, ["status", "-w", str(ws.root)])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


def test_status_says_when_no_audit_was_run(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)})
    assert "No label audit yet: run `traitforge audit`." in _status(ws)


def test_status_names_an_inverted_source_and_says_when_the_audit_is_stale(tmp_path):
    ws = _inverted_workspace(tmp_path)
    audit = workflows.audit(ws)
    with ws.store() as store:
        pairs = list(store.pairs())
    assert audit.exported_pairs == len(pairs) == 240
    out = _status(ws)
    assert "Label audit (" in out and "1 source(s) with doubtful labels" in out
    assert f"honesty / {INVERTED_SOURCE}: labels may be inverted" in out
    assert "STALE" not in out
    for clean in "abc":
        assert f"honesty / {clean}: labels may be inverted" not in out
    # A later export with other pairs: the audit no longer describes what the store holds.
    with ws.store() as store, store.transaction():
        store.replace_pairs(pairs[:-1])
    assert "STALE: it scored an earlier export" in _status(ws)


def test_the_card_shows_a_current_audits_doubtful_sources_and_only_says_a_stale_one_is_stale(
    tmp_path,
):
    ws = _inverted_workspace(tmp_path)
    workflows.audit(ws)
    report = workflows.export(ws)  # the same candidates: the very pairs the audit scored
    card = (report.out / "README.md").read_text()
    section = card.split("## Label audit", 1)[1].split("\n## ", 1)[0]
    assert f"- honesty / {INVERTED_SOURCE}: labels may be inverted" in section
    assert "honesty / a:" not in section
    # New candidates make new pairs: the audit is of an earlier export.
    with ws.store() as store, store.transaction():
        store.add_candidates(
            Candidate(prompt="new?", response=r, source="a", gold={"honesty": g})
            for r, g in (("yes", 1.0), ("no", 0.0))
        )
    report = workflows.export(ws, overwrite=True)
    card = (report.out / "README.md").read_text()
    section = card.split("## Label audit", 1)[1].split("\n## ", 1)[0]
    assert "scored an earlier export with other pairs" in section
    assert INVERTED_SOURCE not in section


def test_a_card_has_no_audit_section_without_an_audit(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)})
    assert "## Label audit" not in (workflows.export(ws).out / "README.md").read_text()


def test_an_unreadable_audit_file_is_an_error_naming_it(tmp_path):
    ws, _ = _workspace(tmp_path, {"a": (5, False)})
    (ws.root / workflows.AUDIT_FILE).write_text('{"folds": 5}')
    with pytest.raises(
        WorkspaceError, match=r"audit\.json is not a label audit .*traitforge audit"
    ):
        workflows.audit_status(ws)
