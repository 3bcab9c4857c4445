"""Length and position bias measured in the votes, and the length-balanced pair strategy."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from traitforge.annotators.aggregation import DropCounter
from traitforge.annotators.biases import fit_votes, length_position_report, vote_rows
from traitforge.annotators.records import dataset_name
from traitforge.app.report import WorkspaceReportData, render_workspace_report
from traitforge.exports import build_pairs, export_dataset
from traitforge.exports.strategies import balance_lengths
from traitforge.schemas import (
    Candidate,
    ComparisonTask,
    ExportConfig,
    Judgement,
    LoopRound,
    PreferencePair,
    Provenance,
    RankedCandidate,
)
from traitforge.schemas.config import parse_strategy

TASKS = 400
POSITION = 0.8  # the position-biased annotator picks the first shown this often
LENGTH_ODDS = 3.0  # the length-lover's odds of picking a response grow 3x per doubling


def _synthetic(seed: int = 0):
    """Two-candidate tasks of very different lengths, each shown in a random order, answered
    by three simulated people: one biased to position, one to length, one fair (a coin)."""
    rng = np.random.default_rng(seed)
    candidates, tasks, orders, judgements = {}, [], {}, []
    for i in range(TASKS):
        prompt = f"Question {i}?"
        pair = [
            Candidate(
                prompt=prompt,
                response=" ".join(f"w{i}x{side}y{k}" for k in range(int(rng.integers(2, 60)))),
                source="synthetic",
            )
            for side in range(2)
        ]
        candidates.update({c.id: c for c in pair})
        task = ComparisonTask(
            prompt_id=pair[0].prompt_id,
            candidate_ids=[c.id for c in pair],
            trait="honesty",
            reason="random",
        )
        tasks.append(task)
        shown = pair if rng.random() < 0.5 else pair[::-1]
        orders[task.id] = [c.id for c in shown]
        first, second = shown
        ratio = math.log2(len(first.response.split()) / len(second.response.split()))
        p_first = {
            "position": POSITION,
            "length": 1.0 / (1.0 + LENGTH_ODDS**-ratio),
            "fair": 0.5,
        }
        for who, p in p_first.items():
            winner, loser = (first, second) if rng.random() < p else (second, first)
            judgements.append(_ranking(task, who, winner, loser))
    return candidates, tasks, orders, judgements


def _ranking(task, who, winner, loser, tie=False):
    return Judgement(
        task_id=task.id,
        annotator_id=who,
        ranking=[
            RankedCandidate(candidate_id=winner.id, rank=1),
            RankedCandidate(candidate_id=loser.id, rank=1 if tie else 2),
        ],
    )


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic()


@pytest.fixture(scope="module")
def result(synthetic):
    from traitforge.workspace import default_config

    candidates, tasks, orders, judgements = synthetic
    rows = vote_rows(tasks, judgements, candidates, default_config().traits, orders)
    return length_position_report(rows, ["honesty", "harmlessness"])


def _inside(value, interval):
    return interval[0] <= value <= interval[1]


def test_a_position_biased_annotator_is_found_at_its_rate_and_not_taken_for_length(result):
    fit = result.annotators["position"]
    assert fit.votes == TASKS and fit.ties == 0 and fit.note is None
    assert fit.position == pytest.approx(POSITION, abs=0.05)
    assert _inside(POSITION, fit.position_ci) and not _inside(0.5, fit.position_ci)
    assert _inside(1.0, fit.length_odds_ratio_ci)
    assert fit.length_pseudo_r2 < 0.02


def test_a_length_loving_annotator_gets_an_odds_ratio_above_one_and_the_others_about_one(result):
    lover = result.annotators["length"]
    assert lover.length_odds_ratio > 2 and lover.length_odds_ratio_ci[0] > 1
    assert _inside(LENGTH_ODDS, lover.length_odds_ratio_ci)
    # no position bias of its own (within sampling error: its 95% CI may just miss 0.5)
    assert lover.position == pytest.approx(0.5, abs=0.1)
    assert lover.longer_won > 0.7 and lover.length_pseudo_r2 > 0.2
    fair = result.annotators["fair"]
    assert _inside(1.0, fair.length_odds_ratio_ci) and _inside(0.5, fair.position_ci)
    assert fair.length_pseudo_r2 < 0.02 and 0.4 < fair.longer_won < 0.6


def test_per_trait_pools_every_annotator_and_a_trait_without_votes_says_so(result):
    honesty = result.traits["honesty"]
    assert honesty.votes == 3 * TASKS and honesty.unequal <= honesty.votes
    # the three together: position (0.8 + 0.5 + 0.5) / 3, length between 1 and 3
    assert _inside(0.6, honesty.position_ci)
    assert 1 < honesty.length_odds_ratio < LENGTH_ODDS
    empty = result.traits["harmlessness"]
    assert empty.votes == 0 and empty.position is None and empty.length_odds_ratio is None
    assert empty.note == "too few decided votes to fit: 0 < 20"


def test_the_shown_order_decides_which_is_first(synthetic):
    """Reversed orders turn the 80% first-picker into a 20% one: position comes from the
    presented order, not from the task's candidate list."""
    from traitforge.workspace import default_config

    candidates, tasks, orders, judgements = synthetic
    reversed_orders = {t: o[::-1] for t, o in orders.items()}
    rows = vote_rows(tasks, judgements, candidates, default_config().traits, reversed_orders)
    fit = fit_votes([r for r in rows if r.annotator == "position"])
    assert fit.position == pytest.approx(1 - POSITION, abs=0.05)


def test_ties_are_counted_and_left_out_of_the_fit(config):
    candidates, tasks, orders, _ = _synthetic()
    judgements = []
    for i, task in enumerate(tasks[:30]):
        first, second = (candidates[c] for c in orders[task.id])
        judgements.append(_ranking(task, "ann", first, second, tie=i < 10))
    rows = vote_rows(tasks, judgements, candidates, config.traits, orders)
    fit = fit_votes(rows)
    assert (fit.votes, fit.ties, fit.first_wins) == (20, 10, 1.0)
    assert fit.position is None and fit.length_odds_ratio is None
    assert fit.note == "every decided vote went to the first response shown: no finite fit"


def test_too_few_votes_give_a_note_instead_of_a_number(synthetic, config):
    candidates, tasks, orders, judgements = synthetic
    few = [j for j in judgements if j.annotator_id == "fair"][:19]
    result = length_position_report(
        vote_rows(tasks, few, candidates, config.traits, orders), ["honesty"]
    )
    fit = result.annotators["fair"]
    assert fit.votes == 19 and fit.first_wins is not None
    assert fit.position is None and fit.position_ci is None and fit.length_pseudo_r2 is None
    assert fit.note == "too few decided votes to fit: 19 < 20"


def _pair(chosen_words: int, rejected_words: int, margin: float, n: int) -> PreferencePair:
    return PreferencePair(
        prompt_id=f"p{n}",
        prompt=f"Question {n}?",
        chosen=" ".join(["yes"] * chosen_words),
        rejected=" ".join(["no"] * rejected_words),
        chosen_id=f"c{n}",
        rejected_id=f"r{n}",
        trait="honesty",
        margin=margin,
        origin="gold",
        provenance=Provenance(sources=["t"]),
    )


def test_length_balance_keeps_equal_sides_dropping_the_smallest_margins():
    longer = [_pair(9, 3, m, i) for i, m in enumerate((0.9, 0.2, 0.5, 0.1))]
    shorter = [_pair(2, 8, 0.3, 10), _pair(1, 4, 0.7, 11)]
    level = [_pair(3, 3, 0.4, 20)]
    drops = DropCounter()
    kept = balance_lengths(longer + shorter + level, drops)
    assert sorted(p.margin for p in kept if p in longer) == [0.5, 0.9]
    assert {p.id for p in kept} >= {p.id for p in shorter + level}
    assert len(kept) == 5 and drops == {"length balance: surplus chosen-longer pair": 2}
    assert parse_strategy("length-balanced") == ("length-balanced", None)
    assert ExportConfig(strategy="length-balanced").strategy_for("honesty") == "length-balanced"


def _gold_workspace(store):
    """Eight prompts with a long true answer and a short false one, two with the reverse."""
    rows = []
    for i in range(10):
        long, short = f"{'truly ' * 12}answer {i}", f"lie {i}"
        right, wrong = (long, short) if i < 8 else (short, long)
        rows += [
            Candidate(prompt=f"Q{i}?", response=right, source="t", gold={"honesty": 1.0}),
            Candidate(prompt=f"Q{i}?", response=wrong, source="t", gold={"honesty": 0.0}),
        ]
    with store.transaction():
        store.add_candidates(rows)


def test_length_balanced_export_has_as_many_chosen_shorter_as_chosen_longer_pairs(store, config):
    _gold_workspace(store)
    pairs, _, _ = build_pairs(store, config, strategy="all-pairs")
    assert len(pairs) == 10
    pairs, drops, _ = build_pairs(store, config, strategy="length-balanced")
    longer = sum(len(p.chosen.split()) > len(p.rejected.split()) for p in pairs)
    assert (longer, len(pairs) - longer) == (2, 2)
    assert drops["length balance: surplus chosen-longer pair"] == 6


def test_export_card_and_provenance_carry_the_length_and_position_fit(workspace, tmp_path):
    """A real export of judged tasks; the store's presented orders decide the first shown."""
    config = workspace.config
    candidates, tasks, orders, judgements = _synthetic()
    tasks = tasks[:60]
    judgements = [j for j in judgements if j.task_id in {t.id for t in tasks}]
    with workspace.store() as store, store.transaction():
        store.add_candidates(list(candidates.values()))
        store.add_tasks(tasks)
        store.put_judgements(judgements)
        name = dataset_name(config.annotation.argilla.dataset, "honesty", 2)
        store.record_presented(name, {t.id: orders[t.id] for t in tasks})
    with workspace.store() as store:
        report = export_dataset(store, config, tmp_path / "out", "test")
    position = report.length_position.annotators["position"]
    assert position.votes == 60 and position.position > 0.6
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["length_position"]["annotators"]["position"]["votes"] == 60
    card = (tmp_path / "out" / "README.md").read_text()
    section = card.split("## Length and position in the answers", 1)[1].split("\n## ", 1)[0]
    assert "a fit needs at least 20 decided votes" in section
    assert re.search(r"\| position \| 60 \| 0 \| \d+\.\d% \| \d+\.\d% \[", section)
    assert "| harmlessness | 0 | 0 | n/a | n/a |" in section
    assert "too few decided votes to fit: 0 < 20" in section


def test_a_gold_export_has_no_length_position_section(store, config, tmp_path):
    _gold_workspace(store)
    report = export_dataset(store, config, tmp_path / "out", "test")
    assert report.length_position is None
    assert "Length and position" not in (tmp_path / "out" / "README.md").read_text()
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["length_position"] is None


def _page(rounds):
    return render_workspace_report(
        WorkspaceReportData(
            workspace="ws",
            counts={},
            drops={},
            score_distributions={},
            agreement=None,
            rounds=rounds,
        )
    )


def _section(page):
    return re.search(r'<section id="length-position">(.*?)</section>', page, re.S).group(1)


def test_loop_report_tables_the_latest_exports_fit_and_says_when_there_is_none(result):
    record = LoopRound(round=1, length_position=result)
    again = LoopRound.model_validate_json(record.model_dump_json())
    assert again.length_position == result  # round.json keeps it, already rounded
    section = _section(_page([again]))
    assert "<h3>Per trait</h3>" in section and "<h3>Per annotator</h3>" in section
    fit = result.annotators["length"]
    assert f"<td>length</td><td>{TASKS}</td><td>0</td>" in section
    assert f"{fit.length_odds_ratio:.2f} [" in section
    assert "too few decided votes to fit: 0 &lt; 20" in section
    pending = _section(_page([LoopRound(round=1)]))
    assert '<p class="pending">No length or position fit yet.</p>' in pending
