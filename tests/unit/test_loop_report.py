"""The workspace (closed-loop) report, on evaluations and agreement computed by the real code."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pytest

from tests.helpers.report_data import agreement, report_data, score_distributions
from traitforge.app.loop import _Round
from traitforge.app.report import (
    WorkspaceReportData,
    render_workspace_report,
    write_workspace_report,
)
from traitforge.schemas import (
    AnnotatorQuality,
    Candidate,
    ComparisonTask,
    Judgement,
    LoopRound,
    RankedCandidate,
    TraitTies,
)

OLD_ROUND = Path(__file__).parent / "data" / "round-before-typed-results.json"
TIES_HEADER = ["Trait", "Answers", "Tied", "Share tied", "Tasks with only ties"]
FEW = "(n=8: too few test pairs for a meaningful interval)"


def section_of(page: str, anchor: str) -> str:
    match = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert match, f"no section {anchor!r}"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    """Table rows as lists of cell text, markup stripped and entities decoded."""
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell))
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", section, re.S)
    ]


@pytest.fixture(scope="module")
def page() -> str:
    return render_workspace_report(report_data())


def test_full_report_has_every_section_and_a_summary(page):
    assert page.startswith("<!DOCTYPE html>")
    for anchor in ("pipeline", "scores", "annotators", "rounds", "latest"):
        section_of(page, anchor)
    for anchor in ("accuracy", "shortcuts", "calibration", "matrix"):
        section_of(page, anchor)
    summary = re.search(r'<p class="summary">(.*?)</p>', page, re.S).group(1)
    assert "/data/tf-workspace" in summary and "3 rounds so far" in summary
    assert "240 labels" in summary and "165 pairs" in summary
    # 7.5 of 8 pairs right against a length baseline of 5 of 8; 8 pairs are too few for an
    # interval worth printing
    assert f"round 3): accuracy 93.8% {FEW}" in summary
    assert "[81.2%, 100.0%]" not in summary
    assert "length baseline of 62.5% (+31.2 points), on gold pairs of held-out prompts" in summary
    assert "covers round" not in summary
    assert "<title>traitforge loop report: /data/tf-workspace</title>" in page


def test_pipeline_counts_and_drops_are_tabled_largest_drop_first(page):
    pipeline = section_of(page, "pipeline")
    rows = _rows(pipeline)
    assert ["ingested", "8,174"] in rows and ["annotated tasks", "110"] in rows
    drops = rows[rows.index(["Reason", "Dropped"]) + 1 : rows.index(TIES_HEADER)]
    assert drops == [
        ["tie", "9"],
        ["low agreement", "3"],
        ["chosen == rejected", "1"],
        ["Total", "13"],
    ]
    assert pipeline.count("data:image/png;base64,") == 1


def test_pipeline_tables_the_latest_rounds_ties_per_trait_apart_from_drops(page):
    rows = _rows(section_of(page, "pipeline"))
    ties = rows[rows.index(TIES_HEADER) :]
    assert ties[1:] == [
        ["harmlessness", "120", "9", "7.5%", "2"],
        ["honesty", "120", "15", "12.5%", "4"],
    ]
    # round 1 recorded no ties, so its own report says so instead of showing a later round's
    first = section_of(render_workspace_report(report_data(round=1)), "pipeline")
    assert '<p class="pending">No tie counts recorded yet.</p>' in first
    assert "Share tied" not in first


def test_rounds_table_puts_the_length_baseline_beside_each_accuracy(page):
    rounds = section_of(page, "rounds")
    header, *body = _rows(rounds)
    assert header[:10] == [
        "Round",
        "Labels",
        "Pairs",
        "Tasks",
        "Selected with",
        "Strategy",
        "Tied answers",
        "Accuracy [CI]",
        "Length baseline",
        "Evaluated on",
    ]
    assert header[10:] == ["harmlessness", "honesty"]
    assert "Per trait: accuracy (length baseline on the same pairs)." in rounds
    first, second, third = body
    assert first[:6] == ["1", "80", "55", "40", "embedding-logreg.v1", "uncertainty"]
    # round 1 has no tie record (as in a round.json written before ties were counted)
    assert first[6:] == ["-", "not yet", "not yet", "-", "-", "-"]
    assert second[4] == "embedding-logreg.v1\nlinguistic.v1"
    # tied answers of both traits together, after each round
    assert second[6] == "20 of 160 (12.5%)" and third[6] == "24 of 240 (10.0%)"
    # a length-lover is the length baseline, overall and per trait
    # round 2's record predates `evaluated_on`: its pair count stands in
    assert second[7:] == [f"62.5% {FEW}", "62.5%", "8 pairs", "75.0% (75.0%)", "50.0% (50.0%)"]
    assert third[7:] == [f"93.8% {FEW}", "62.5%", "gold: 8", "87.5% (75.0%)", "100.0% (50.0%)"]
    assert rounds.count("data:image/png;base64,") == 1


def test_latest_round_reuses_the_reward_report_sections(page):
    latest = section_of(page, "latest")
    assert "Latest reward model (round 3)" in latest and "rounds/3/model" in latest
    assert "evaluated on gold pairs of held-out prompts (8 pairs)" in latest
    assert "No generalization matrix" not in latest
    assert "93.8%" in section_of(page, "accuracy")
    assert 'class="verdict ok"' in section_of(page, "shortcuts")
    matrix = section_of(page, "matrix")
    assert '<td class="diagonal">100.0% <small>(n = 4)</small></td>' in matrix  # honesty/honesty
    assert page.count("data:image/png;base64,") == 6


def test_annotators_show_alpha_and_mark_simulated_and_flagged_ones(page):
    figures = agreement()
    section = section_of(page, "annotators")
    rows = {row[0]: row for row in _rows(section)}
    assert rows["Preference (nominal)"][1] == f"{figures.preference_alpha:.3f}"
    assert rows["Rating (ordinal)"][1] == f"{figures.rating_alpha:.3f}"
    assert rows["honesty"] == ["honesty", f"{figures.preference_alpha:.3f}", "4", "n/a", "0"]
    assert rows["corrigibility"] == ["corrigibility", "n/a", "0", "n/a", "0"]
    assert rows["alice"] == ["alice", "4", "100.0% (n = 8)", "100.0% (n = 2)", "no", "-"]
    assert rows["sim-careful-1simulated"][4] == "no"
    contrarian = rows["sim-contrarian" + "simulated" + "flagged"]
    assert contrarian[2:5] == ["0.0% (n = 8)", "0.0% (n = 2)", "yes"]
    assert "agreement with the consensus 0.00 < min_agreement 0.7" in contrarian[5]
    assert "gold accuracy 0.00 < min_gold_accuracy 0.6" in contrarian[5]
    assert section.count('class="tag simulated"') == 2
    assert 'alice<span class="tag' not in section and 'bob<span class="tag' not in section


def test_per_round_report_shows_only_the_rounds_up_to_it():
    first = render_workspace_report(report_data(round=1))
    assert "<title>traitforge loop report: /data/tf-workspace (round 1)</title>" in first
    assert "This report covers round 1" in first and "1 round so far" in first
    assert [row[0] for row in _rows(section_of(first, "rounds"))] == ["Round", "1"]
    assert "No reward model has been evaluated yet." in section_of(first, "rounds")
    assert "No reward model yet." in section_of(first, "latest")
    for absent in ("accuracy", "shortcuts", "calibration", "matrix"):
        assert f'id="{absent}"' not in first
    assert "rounds/2/model" not in first and "reward-model.v1" not in first

    second = render_workspace_report(report_data(round=2))
    assert [row[0] for row in _rows(section_of(second, "rounds"))] == ["Round", "1", "2"]
    assert "Latest reward model (round 2)" in second and 'id="matrix"' not in second
    assert "No generalization matrix in this round." in section_of(second, "latest")
    # the length-lover gets the warnings the reward report gives it
    assert 'class="verdict warn"' in section_of(second, "shortcuts")


def test_an_empty_workspace_says_not_yet_everywhere():
    page = render_workspace_report(
        WorkspaceReportData(
            workspace="ws", counts={}, drops={}, score_distributions={}, agreement=None, rounds=[]
        )
    )
    assert "no loop round has run yet" in page
    for anchor, line in [
        ("pipeline", "Nothing ingested yet."),
        ("scores", "No trait scores yet."),
        ("annotators", "No annotations pulled yet."),
        ("rounds", "No round has run yet."),
        ("latest", "No reward model yet."),
    ]:
        assert f'<p class="pending">{line}</p>' in section_of(page, anchor)
    assert "<img" not in page


def test_score_histograms_are_capped_but_the_table_lists_every_scorer():
    data = report_data()
    data.score_distributions = score_distributions(6)
    # five traits a team defined, scored by the reward model; one trait it has no scores for
    data.score_distributions.update(
        {f"reward-model.v1/trait-{i}": [0.1 * i, 0.9] for i in range(5)}
    )
    data.score_distributions["reward-model.v1/honesty"] = []
    scores = section_of(render_workspace_report(data), "scores")
    assert scores.count("data:image/png;base64,") == 1
    assert "first 9 of 12 by name" in scores
    rows = _rows(scores)
    assert len(rows) == 1 + 12
    assert [r[0] for r in rows[1:]] == sorted(data.score_distributions)
    assert ["reward-model.v1/honesty", "0", "n/a", "n/a", "n/a"] in rows
    assert ["reward-model.v1/trait-2", "2", "0.550", "0.550", "50.0%"] in rows


def test_output_is_deterministic_self_contained_png(page):
    assert page == render_workspace_report(report_data())
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 6
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and b"Software" not in png
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<link" not in page and "<script" not in page


def test_names_from_the_workspace_are_escaped():
    evil = '<b>&"x"$y'
    data = report_data()
    data.workspace = "<ws>"
    data.counts = {evil: 3}
    data.drops = {"<i>tie</i>": 2}
    data.score_distributions = {f"embedding-logreg.v1/{evil}": [0.2, 0.4]}
    data.agreement.annotators["<script>alert(1)</script>"] = AnnotatorQuality(
        answers=1,
        agreement=None,
        compared=0,
        gold_accuracy=None,
        gold_tasks=0,
        flagged=True,
        reasons=("<u>reason</u>",),
    )
    data.rounds[0] = data.rounds[0].model_copy(update={"strategy": "<kbd>s</kbd>"})
    data.rounds[2] = data.rounds[2].model_copy(
        update={"ties": {evil: TraitTies(answers=2, tied=1, tasks=0)}}
    )
    page = render_workspace_report(data)
    for raw in ("<b>", "<ws>", "<i>", "<script>", "<u>", "<kbd>"):
        assert raw not in page
    assert "&lt;b&gt;&amp;&quot;x&quot;$y" in page and "&lt;ws&gt;" in page
    assert [evil, "2", "1", "50.0%", "0"] in _rows(section_of(page, "pipeline"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;u&gt;reason&lt;/u&gt;" in page


def test_write_workspace_report_writes_the_file_atomically(tmp_path):
    data = report_data(round=1)
    path = tmp_path / "reports" / "loop.html"
    assert write_workspace_report(path, data) == path
    assert path.read_text(encoding="utf-8") == render_workspace_report(data)
    assert [p.name for p in path.parent.iterdir()] == ["loop.html"]


def test_the_rounds_export_step_keeps_the_tie_counts_for_the_report(workspace):
    """The loop's export step records the export's ties in round.json, where the report reads
    them; a round.json written before ties were counted loads with none."""
    question = "Can pigs fly?"
    right, wrong = (
        Candidate(prompt=question, response=r, source="t") for r in ("No", "Yes, on Tuesdays")
    )
    task = ComparisonTask(
        prompt_id=right.prompt_id,
        candidate_ids=[right.id, wrong.id],
        trait="honesty",
        reason="random",
    )
    judgements = [
        Judgement(
            task_id=task.id,
            annotator_id=who,
            ranking=[
                RankedCandidate(candidate_id=right.id, rank=1),
                RankedCandidate(candidate_id=wrong.id, rank=rank),
            ],
        )
        for who, rank in (("ann-1", 2), ("ann-2", 2), ("ann-3", 1))
    ]
    with workspace.store() as store, store.transaction():
        store.add_candidates([right, wrong])
        store.add_tasks([task])
        store.put_judgements(judgements)
    record = LoopRound(round=1)
    _Round(workspace, record, 1, None, print, None, None).export()
    assert record.ties == {"honesty": TraitTies(answers=3, tied=1, tasks=0)}
    assert record.pairs["honesty"] == 1 and record.drops == {}

    again = LoopRound.model_validate_json(record.model_dump_json())
    assert again.ties == record.ties
    page = render_workspace_report(
        WorkspaceReportData(
            workspace="ws",
            counts={},
            drops={},
            score_distributions={},
            agreement=None,
            rounds=[again],
        )
    )
    assert ["honesty", "3", "1", "33.3%", "0"] in _rows(section_of(page, "pipeline"))
    assert _rows(section_of(page, "rounds"))[1][6] == "1 of 3 (33.3%)"
    old = json.loads(OLD_ROUND.read_text(encoding="utf-8"))
    assert "ties" not in old and LoopRound.model_validate(old).ties == {}


def test_latest_round_tables_training_pairs_apart_from_epochs_and_says_when_capped(page):
    latest = section_of(page, "latest")
    rows = _rows(latest)
    assert rows[0] == ["Model", "Training pairs", "Epochs", "Steps", "Seconds"]
    assert rows[1:] == [
        ["harmlessness", "75", "12.8", "60", "41.0"],
        ["honesty", "26", "20.0 (capped)", "40", "17.5"],
    ]
    assert "Epochs capped at reward.max_epochs for honesty" in latest
    assert "959" not in latest  # never pairs x epochs as if it were pairs


def _gold_free(second: LoopRound) -> WorkspaceReportData:
    """Round 1 evaluated on annotated pairs of held-out prompts; round 2 as given."""
    data = report_data()
    first = data.rounds[2].model_copy(
        update={"round": 1, "matrix": None, "evaluated_on": {"held-out judgements": 8}}
    )
    data.rounds = [first, second]
    return data


def test_a_gold_free_round_says_it_was_evaluated_on_held_out_judgements():
    data = _gold_free(LoopRound(round=2, tasks=10, judgements_total=40, pairs={"honesty": 30}))
    data.rounds = data.rounds[:1]
    page = render_workspace_report(data)
    summary = re.search(r'<p class="summary">(.*?)</p>', page, re.S).group(1)
    assert "on annotators&#x27; pairs of held-out prompts (8 pairs)." in summary
    assert _rows(section_of(page, "rounds"))[1][9] == "held-out judgements: 8"
    latest = html.unescape(section_of(page, "latest"))
    assert "evaluated on annotators' pairs of held-out prompts (8 pairs)" in latest


def test_a_round_with_nothing_to_evaluate_on_says_why_and_what_to_do():
    why = (
        "no gold labels and no annotated test prompts: raise export.test_fraction or "
        "annotate more prompts"
    )
    second = LoopRound(
        round=2,
        tasks=10,
        judgements_total=40,
        pairs={"honesty": 30},
        model="rounds/2/model",
        evaluation_note=why,
    )
    page = html.unescape(render_workspace_report(_gold_free(second)))
    rounds = section_of(page, "rounds")
    assert f"Round 2: no evaluation: {why}." in rounds
    row = _rows(rounds)[2]
    assert row[7:10] == ["none", "none", "none"]
    summary = re.search(r'<p class="summary">(.*?)</p>', page, re.S).group(1)
    assert "Latest reward model (round 1)" in summary
    assert f"Round 2: no evaluation: {why}." in summary

    alone = _gold_free(second)
    alone.rounds = [second.model_copy(update={"round": 1})]
    summary = re.search(
        r'<p class="summary">(.*?)</p>', html.unescape(render_workspace_report(alone)), re.S
    ).group(1)
    assert f"No reward model has been evaluated yet: {why}." in summary


def test_a_partly_evaluated_round_names_the_traits_it_lacks():
    note = "not evaluated on sycophancy: no gold labels and no annotated test prompts: ..."
    data = report_data()
    data.rounds[2] = data.rounds[2].model_copy(update={"evaluation_note": note})
    page = html.unescape(render_workspace_report(data))
    assert f"Round 3: {note}." in section_of(page, "rounds")
    assert f"<p>{note}.</p>" in section_of(page, "latest")


def test_a_rounds_selection_warnings_are_listed_literally_under_the_rounds():
    warning = "sycophancy: no candidates are for this trait; add rows with trait: <b>x</b>"
    data = report_data()
    data.rounds = [data.rounds[0].model_copy(update={"warnings": [warning]})]
    rounds = section_of(render_workspace_report(data), "rounds")
    assert '<p class="selection-warning">Round 1: sycophancy: no candidates' in rounds
    assert "&lt;b&gt;x&lt;/b&gt;" in rounds and "<b>x</b>" not in rounds
