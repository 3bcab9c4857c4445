"""A person's path through the real web UI: log in as an annotator, answer, submit, pull.

Playwright drives Debian's chromium (`make test` installs it), headless, against the shared
embedded Argilla server. This workspace reaches that server as an external Argilla would,
through ARGILLA_API_URL / ARGILLA_API_KEY, so the test also covers that path.
"""

from __future__ import annotations

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.paths import ARTIFACTS
from traitforge.annotators.records import CANDIDATE_ORDER
from traitforge.annotators.server import add_annotators, owner_connection
from traitforge.app import workflows
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import ArgillaConfig, ComparisonTask, Suggestion
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture
def ui_workspace(tmp_path, monkeypatch, argilla_server, data_dir):
    server_ws, _ = argilla_server
    owner = owner_connection(server_ws)
    monkeypatch.setenv("ARGILLA_API_URL", owner.api_url)
    monkeypatch.setenv("ARGILLA_API_KEY", owner.api_key)
    ws = Workspace.open(tmp_path / "ws")
    annotation = ws.config.annotation.model_copy(
        update={"argilla": ArgillaConfig(dataset="ui-{trait}-k{k}", min_submitted=1)}
    )
    ws.config = ws.config.model_copy(update={"annotation": annotation})
    # one real TruthfulQA question, its best true answer against a false one
    path = data_dir / "truthfulqa" / "TruthfulQA.csv"
    first = next(
        o for o in source_format("truthfulqa").reader(path, ws.config) if isinstance(o, Parsed)
    )
    true = next(c for c in first.candidates if c.metadata["best_answer"])
    false = next(c for c in first.candidates if c.gold["honesty"] == 0.0)
    task = ComparisonTask(
        prompt_id=true.prompt_id,
        candidate_ids=[true.id, false.id],
        trait="honesty",
        reason="uncertainty",
        reason_detail="browser test",
        suggestions=[
            Suggestion(
                candidate_id=true.id, trait="honesty", value=0.8, scorer="embedding-logreg.v1"
            )
        ],
    )
    with ws.store() as store, store.transaction():
        store.add_candidates([true, false])
        store.add_tasks([task])
    return ws, owner, task, true, false


def test_annotator_answers_in_the_browser_and_pull_returns_the_judgement(ui_workspace):
    from playwright.sync_api import expect, sync_playwright

    ws, owner, task, true, false = ui_workspace
    assert true.response != false.response
    report = workflows.push(ws)
    assert report.sent == 1
    [account] = add_annotators(ws, ["ui-annotator"])

    import argilla as rg

    client = rg.Argilla(api_url=owner.api_url, api_key=owner.api_key)
    dataset = client.datasets("ui-honesty-k2", workspace=ws.config.annotation.argilla.workspace)
    assert dataset is not None
    # The responses are shown in a per-task shuffled order, kept in the store (annotators
    # could read it on the server).
    [record] = list(dataset.records)
    assert CANDIDATE_ORDER not in (record.metadata or {})
    with ws.store() as store:
        order = store.presented_orders("ui-honesty-k2")[task.id]
    letter = "ab"[order.index(true.id)]
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{owner.api_url}/sign-in")
        page.get_by_label("Username").fill(account.username)
        page.get_by_label("Password").fill(account.password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "sign-in" not in url, timeout=30_000)

        page.goto(f"{owner.api_url}/dataset/{dataset.id}/annotation-mode")
        expect(page.get_by_text(true.prompt)).to_be_visible(timeout=30_000)
        expect(page.get_by_text(true.response, exact=True)).to_be_visible()
        expect(page.get_by_text(false.response, exact=True)).to_be_visible()
        page.locator(f"label[for='preference_{letter.upper()}']").click()
        page.locator(f"label[for='rating_honesty_{letter}_5']").click()
        page.screenshot(path=str(ARTIFACTS / "annotation-ui-answered.png"))
        page.get_by_role("button", name="Submit").click()
        # the progress panel counts the annotator's submitted records
        expect(page.get_by_role("listitem").filter(has_text="submitted")).to_have_text(
            "submitted 1", timeout=30_000
        )
        page.screenshot(path=str(ARTIFACTS / "annotation-ui-submitted.png"))
        browser.close()

    pulled = workflows.pull(ws)
    assert pulled.new == 1
    with ws.store() as store:
        [judgement] = list(store.judgements())
    assert judgement.task_id == task.id
    assert judgement.annotator_id == "ui-annotator"
    assert not judgement.simulated
    best = min(judgement.ranking, key=lambda r: r.rank)
    assert best.candidate_id == true.id
    assert judgement.ratings[true.id]["honesty"] == 5
    assert workflows.pull(ws).new == 0  # incremental: nothing new the second time
