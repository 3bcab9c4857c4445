"""The loop report as a reader sees it: rendered to a file and opened in headless chromium."""

from __future__ import annotations

import pytest

from tests.helpers.browser import check_report_in_browser, report_facts, report_page
from tests.helpers.paths import ARTIFACTS
from tests.helpers.report_data import report_data
from traitforge.app.report import write_workspace_report

pytestmark = pytest.mark.integration

HEADINGS = [
    "Pipeline",
    "Trait scores",
    "Annotators",
    "Length and position in the answers",
    "Rounds",
    "Latest reward model (round 3)",
    "Accuracy",
    "Shortcut checks",
    "Calibration",
    "Generalization matrix",
]


def test_full_report_shows_every_section_with_decoded_plots(tmp_path):
    from playwright.sync_api import expect

    path = write_workspace_report(tmp_path / "loop.html", report_data())
    with report_page(path) as report:
        page = report.page
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "traitforge loop report: /data/tf-workspace"
        )
        for name in HEADINGS:
            expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        expect(page.locator(".summary")).to_contain_text("3 rounds so far")
        rounds = page.locator("#rounds")
        third = rounds.get_by_role("row").filter(has=page.get_by_role("cell", name="3", exact=True))
        # accuracy, its interval, the length baseline, then each trait beside its own baseline
        expect(third.get_by_role("cell")).to_have_text(
            [
                "3",
                "240",
                "165",
                "40",
                "embedding-logreg.v1\nlinguistic.v1\nreward-model.v1",
                "uncertainty",
                "24 of 240 (10.0%)",
                "93.8% (n=8: too few test pairs for a meaningful interval)",
                "62.5%",
                "gold: 8",
                "87.5% (75.0%)",
                "100.0% (50.0%)",
            ]
        )
        expect(third).to_be_visible()
        expect(rounds.get_by_role("cell", name="not yet", exact=True)).to_have_count(2)
        expect(page.locator("#pipeline").get_by_role("cell", name="8,174")).to_be_visible()
        contrarian = page.locator("#annotators tr", has_text="sim-contrarian")
        expect(contrarian.locator(".tag.simulated")).to_have_text("simulated")
        expect(contrarian.locator(".tag.flagged")).to_be_visible()
        expect(page.locator("#annotators tr", has_text="alice").locator(".tag")).to_have_count(0)
        facts = report_facts(report, ARTIFACTS / "loop-report.png")

    assert facts["title"] == "traitforge loop report: /data/tf-workspace"
    assert facts["headings"] == HEADINGS
    assert facts["sections"] == [
        "pipeline",
        "scores",
        "annotators",
        "length-position",
        "rounds",
        "latest",
        "accuracy",
        "shortcuts",
        "calibration",
        "matrix",
    ]
    assert facts["images"] == facts["images_decoded"] == 6 and facts["broken_images"] == []
    assert facts["not_yet"] == []
    assert facts["external_requests"] == []
    assert not facts["overflows"]  # the wide rounds table scrolls inside its own box
    assert (ARTIFACTS / "loop-report.png").stat().st_size > 0


def test_first_round_report_says_not_yet_instead_of_model_sections(tmp_path):
    path = write_workspace_report(tmp_path / "round-1.html", report_data(round=1))
    facts = check_report_in_browser(path, ARTIFACTS / "loop-report-round-1.png")
    assert facts["title"].endswith("(round 1)")
    assert facts["headings"] == [
        "Pipeline",
        "Trait scores",
        "Annotators",
        "Length and position in the answers",
        "Rounds",
        "Latest reward model",
    ]
    assert facts["not_yet"] == [
        "No tie counts recorded yet.",  # round 1's record predates tie counts
        "No length or position fit yet.",
        "No reward model has been evaluated yet.",
        "No reward model yet.",
    ]
    # the funnel and the score histograms; no model, so no accuracy plot
    assert facts["images"] == facts["images_decoded"] == 2
    assert facts["external_requests"] == [] and not facts["overflows"]
