"""The trait judge in exports: its agreement with annotators per trait, and AI-feedback pairs
that are marked as such and never counted as human pairs."""

from __future__ import annotations

import json

import datasets
import pytest

from traitforge.cli._app import console
from traitforge.cli.render import print_export
from traitforge.curation.scorers.judge import KEY
from traitforge.exports import export_dataset
from traitforge.exports.judge_agreement import wilson_interval
from traitforge.schemas import Candidate, ComparisonTask, Judgement, RankedCandidate, Scores

PROMPTS = ["Is the Great Wall visible from space?", "Do goldfish remember for 3 seconds?"]


def _candidates(store):
    rows = [
        Candidate(prompt=p, response=f"{p} answer {i}", source="own")
        for p in PROMPTS
        for i in range(3)
    ]
    with store.transaction():
        store.add_candidates(rows)
    return rows[:3], rows[3:]


def _judge(store, ratings, trait="honesty"):
    with store.transaction():
        store.put_scores(
            Scores(candidate_id=c.id, scorer=KEY, trait=trait, score=v, probability=0.5)
            for c, v in ratings
        )


def _answer(store, task, votes):
    with store.transaction():
        store.add_tasks([task])
        store.put_judgements(
            Judgement(
                task_id=task.id,
                annotator_id=who,
                ranking=[RankedCandidate(candidate_id=c.id, rank=r) for c, r in order],
            )
            for who, order in votes.items()
        )


def _task(a, b, trait="honesty"):
    return ComparisonTask(
        prompt_id=a.prompt_id, candidate_ids=[a.id, b.id], trait=trait, reason="uncertainty"
    )


def test_wilson_interval():
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(5, 5)[1] == 1.0


def test_judge_agreement_per_trait_leaves_ties_out_and_counts_them(store, config, tmp_path):
    (a, b, c), (d, e, f) = _candidates(store)
    _judge(store, [(a, 5.0), (b, 1.0), (c, 3.0), (d, 2.0), (e, 2.0)])  # f unrated
    # a > b: the majority agrees with the judge.
    _answer(
        store, _task(a, b), {"x": [(a, 1), (b, 2)], "y": [(a, 1), (b, 2)], "z": [(b, 1), (a, 2)]}
    )
    # c vs b: majority prefers b, the judge c: a disagreement.
    _answer(store, _task(c, b), {"x": [(b, 1), (c, 2)]})
    # a vs c: votes split evenly: no majority.
    _answer(store, _task(a, c), {"x": [(a, 1), (c, 2)], "y": [(c, 1), (a, 2)]})
    # d vs e: rated level by the judge; d vs f: f unrated.
    _answer(store, _task(d, e), {"x": [(d, 1), (e, 2)]})
    _answer(store, _task(d, f), {"x": [(d, 1), (f, 2)]})
    report = export_dataset(store, config, tmp_path / "out", "test")
    honesty = report.judge_agreement.traits["honesty"]
    assert (honesty.compared, honesty.agreed) == (2, 1)
    assert honesty.share == 0.5 and honesty.share_ci == wilson_interval(1, 2)
    assert (honesty.annotator_ties, honesty.judge_ties, honesty.unscored) == (1, 1, 1)
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["judge_agreement"]["traits"]["honesty"]["agreed"] == 1
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Trait judge agreement with annotators" in card
    assert "| honesty | 50.0% |" in card
    with console.capture() as captured:
        print_export(report)
    assert "Trait judge (judge.v1) agreement" in captured.get()
    assert "honesty 50.0%" in captured.get()


def test_no_judge_scores_means_no_judge_agreement(store, config, tmp_path):
    (a, b, _), _ = _candidates(store)
    _answer(store, _task(a, b), {"x": [(a, 1), (b, 2)]})
    report = export_dataset(store, config, tmp_path / "out", "test")
    assert report.judge_agreement is None
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["judge_agreement"] is None


def _ai_config(config, on=True):
    export = config.export.model_copy(update={"ai_feedback": on})
    return config.model_copy(update={"export": export})


def test_ai_feedback_pairs_are_opt_in_marked_and_counted_apart(store, config, tmp_path):
    (a, b, c), (d, e, f) = _candidates(store)
    _judge(store, [(a, 5.0), (b, 1.0), (c, 3.0), (d, 4.0), (e, 2.0), (f, 3.0)])
    _answer(store, _task(b, c), {"x": [(b, 1), (c, 2)]})  # the first prompt has a human answer
    assert config.export.ai_feedback is False  # opt-in
    # Off, only the human pair; on, the second prompt's judge pair is added beside it.
    report = export_dataset(store, _ai_config(config, False), tmp_path / "human", "test")
    assert report.total == 1 and not report.ai_feedback
    report = export_dataset(store, _ai_config(config), tmp_path / "out", "test")
    assert sum(report.counts["honesty"].values()) == 1  # human pairs only
    assert sum(report.ai_feedback["honesty"].values()) == 1
    assert report.total == 2
    rows = [r for split in datasets.load_from_disk(str(tmp_path / "out")).values() for r in split]
    ai = [r for r in rows if r["origin"] == "ai-feedback"]
    human = [r for r in rows if r["origin"] == "judgements"]
    assert len(ai) == 1 and len(human) == 1
    assert (ai[0]["chosen"], ai[0]["rejected"], ai[0]["votes"]) == (d.response, e.response, 0)
    pairs = {p.origin: p for p in store.pairs()}
    assert pairs["ai-feedback"].provenance.scorer_versions == [KEY]
    assert pairs["ai-feedback"].provenance.annotators == []
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["ai_feedback"]["scorer"] == KEY
    assert sum(provenance["ai_feedback"]["counts"]["honesty"].values()) == 1
    assert sum(provenance["counts"]["honesty"].values()) == 1
    assert provenance["origins"]["honesty"] == "judgements"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| honesty | judgements |" in card and "| honesty | ai-feedback |" in card
    assert "no person chose them" in card
    with console.capture() as captured:
        print_export(report)
    assert "ai-feedback" in captured.get()
