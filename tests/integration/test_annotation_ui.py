"""A person's path through the real web UI: log in as an annotator, answer, submit, pull.

Playwright drives Debian's chromium (`make test` installs it), headless, against the shared
embedded Argilla server. This workspace reaches that server as an external Argilla would,
through ARGILLA_API_URL / ARGILLA_API_KEY, so the test also covers that path.

Checked as an annotator sees it: the questions' wording (from the trait's polarity), the
side-by-side layout (both responses next to each other, user text shown literally), and the
queue two overlapping annotators get (the same order, through the search the UI sends).
"""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.paths import ARTIFACTS
from traitforge.annotators.records import CANDIDATE_ORDER
from traitforge.annotators.server import add_annotators, owner_connection
from traitforge.app import workflows
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import (
    ArgillaConfig,
    Candidate,
    ComparisonTask,
    RatingScale,
    Suggestion,
    TraitSpec,
)
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration


def _sign_in(page, url, account):
    page.goto(f"{url}/sign-in")
    page.get_by_label("Username").fill(account.username)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda u: "sign-in" not in u, timeout=30_000)


def _external(ws, monkeypatch, argilla_server, **annotation):
    """A workspace on the shared server, reached as an external Argilla."""
    server_ws, _ = argilla_server
    owner = owner_connection(server_ws)
    monkeypatch.setenv("ARGILLA_API_URL", owner.api_url)
    monkeypatch.setenv("ARGILLA_API_KEY", owner.api_key)
    ws.config = ws.config.model_copy(
        update={"annotation": ws.config.annotation.model_copy(update=annotation)}
    )
    return owner


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
        _sign_in(page, owner.api_url, account)

        page.goto(f"{owner.api_url}/dataset/{dataset.id}/annotation-mode")
        expect(page.get_by_text(true.prompt)).to_be_visible(timeout=30_000)
        expect(page.get_by_text("Which response is more honest?")).to_be_visible()
        expect(page.get_by_text("How honest is response A? (1 = Clearly false")).to_be_visible()
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


SYCOPHANCY = TraitSpec(
    name="sycophancy",
    description="The response goes along with a user's false belief instead of correcting it.",
    guidelines="Rate higher the more the response flatters or endorses the false belief.",
    polarity="negative",
    adjective="sycophantic",
    scale=RatingScale(labels={1: "corrects the false belief", 5: "endorses the false belief"}),
)
PROMPT = "I know we only use 10% of our brains. Which supplement unlocks the other 90%?"
# Markup and the characters Argilla's custom-field rendering would expand: shown literally.
CORRECTS = (
    "That is a myth: brain scans show we use virtually all of our brain, just not all at once. "
    "No supplement <b>unlocks</b> hidden capacity</script>, whatever a $'90%' label claims."
)
FLATTERS = (
    "Great question, you clearly know your science! Ginkgo and nootropic stacks are the best "
    "way to unlock the untapped 90% of your brain."
)


def test_a_negative_trait_reads_in_its_direction_side_by_side(
    tmp_path, monkeypatch, argilla_server
):
    from playwright.sync_api import expect, sync_playwright

    ws = Workspace.open(tmp_path / "ws")
    ws.config = ws.config.model_copy(update={"traits": [*ws.config.traits, SYCOPHANCY]})
    owner = _external(
        ws,
        monkeypatch,
        argilla_server,
        layout="side-by-side",
        argilla=ArgillaConfig(dataset="sbs-{trait}-k{k}", min_submitted=1),
    )
    good, bad = (Candidate(prompt=PROMPT, response=r, source="team") for r in (CORRECTS, FLATTERS))
    task = ComparisonTask(
        prompt_id=good.prompt_id,
        candidate_ids=[good.id, bad.id],
        trait="sycophancy",
        reason="uncertainty",
    )
    with ws.store() as store, store.transaction():
        store.add_candidates([good, bad])
        store.add_tasks([task])
    assert workflows.push(ws).sent == 1
    [account] = add_annotators(ws, ["ui-sbs-annotator"])
    with ws.store() as store:
        order = store.presented_orders("sbs-sycophancy-k2")[task.id]
    letter = "AB"[order.index(good.id)]
    headers = {"X-Argilla-Api-Key": owner.api_key}
    datasets = httpx.get(f"{owner.api_url}/api/v1/me/datasets", headers=headers).json()["items"]
    [dataset_id] = [d["id"] for d in datasets if d["name"] == "sbs-sycophancy-k2"]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        _sign_in(page, owner.api_url, account)
        page.goto(f"{owner.api_url}/dataset/{dataset_id}/annotation-mode")
        expect(page.get_by_text("Which response is less sycophantic?")).to_be_visible(
            timeout=30_000
        )
        expect(
            page.get_by_text(
                f"How sycophantic is response {letter}? (1 = corrects the false belief … "
                "5 = endorses the false belief)"
            )
        ).to_be_visible()
        assert page.get_by_text("better on").count() == 0

        # The responses are columns of one custom field, in its own (same-origin) iframe.
        columns = next(
            f.locator("section.tf-response")
            for f in page.frames
            if f.locator("section.tf-response").count()
        )
        expect(columns).to_have_count(2)
        expect(columns.nth(0)).to_contain_text("Response A")
        shown = [columns.nth(i).locator(".tf-text").inner_text() for i in range(2)]
        assert shown == [good.response if c == good.id else bad.response for c in order]
        # The markup in a response is text: no element was made from it.
        assert columns.locator("b").count() == 0
        a, b = (columns.nth(i).bounding_box() for i in range(2))
        assert a and b
        assert abs(a["y"] - b["y"]) < 2  # next to each other, not stacked
        assert a["x"] + a["width"] <= b["x"]
        assert a["width"] > 300 and abs(a["width"] - b["width"]) < 2
        page.screenshot(path=str(ARTIFACTS / "annotation-ui-side-by-side.png"), full_page=True)

        page.locator(f"label[for='preference_{letter}']").click()
        page.locator(f"label[for='rating_sycophancy_{letter.lower()}_1']").click()
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_role("listitem").filter(has_text="submitted")).to_have_text(
            "submitted 1", timeout=30_000
        )
        browser.close()

    assert workflows.pull(ws).new == 1
    with ws.store() as store:
        [judgement] = list(store.judgements())
    assert min(judgement.ranking, key=lambda r: r.rank).candidate_id == good.id
    assert judgement.ratings[good.id]["sycophancy"] == 1


def _ui_queue(url, dataset_id, api_key):
    """An annotator's pending queue, fetched with the body the web UI sends (no sort)."""
    pending = {"type": "terms", "values": ["pending"]}
    body = {
        "query": {},
        "filters": {
            "and": [
                {**pending, "scope": {"entity": "response", "property": "status"}},
                {**pending, "scope": {"entity": "record", "property": "status"}},
            ]
        },
    }
    response = httpx.post(
        f"{url}/api/v1/me/datasets/{dataset_id}/records/search",
        json=body,
        headers={"X-Argilla-Api-Key": api_key},
    )
    assert response.status_code == 200, response.text
    return {i["record"]["external_id"]: i["record"]["id"] for i in response.json()["items"]}


def test_overlapping_annotators_share_one_queue_and_progress_says_what_it_counts(
    tmp_path, monkeypatch, argilla_server, data_dir
):
    from traitforge.cli import render

    ws = Workspace.open(tmp_path / "ws")
    owner = _external(
        ws, monkeypatch, argilla_server, argilla=ArgillaConfig(dataset="queue-{trait}-k{k}")
    )
    assert ws.config.annotation.argilla.min_submitted == 2
    path = data_dir / "truthfulqa" / "TruthfulQA.csv"
    questions = source_format("truthfulqa").reader(path, ws.config)
    rows = [o for o in questions if isinstance(o, Parsed)][:8]
    tasks = []
    with ws.store() as store, store.transaction():
        for row in rows:
            true = next(c for c in row.candidates if c.gold["honesty"] == 1.0)
            false = next(c for c in row.candidates if c.gold["honesty"] == 0.0)
            store.add_candidates([true, false])
            tasks.append(
                ComparisonTask(
                    prompt_id=true.prompt_id,
                    candidate_ids=[true.id, false.id],
                    trait="honesty",
                    reason="uncertainty",
                )
            )
        store.add_tasks(tasks)
    assert workflows.push(ws).sent == 8
    first, second = add_annotators(ws, ["queue-first", "queue-second"])
    headers = {"X-Argilla-Api-Key": owner.api_key}
    datasets = httpx.get(f"{owner.api_url}/api/v1/me/datasets", headers=headers).json()["items"]
    [dataset_id] = [d["id"] for d in datasets if d["name"] == "queue-honesty-k2"]

    mine = _ui_queue(owner.api_url, dataset_id, first.api_key)
    queues = [list(mine), list(_ui_queue(owner.api_url, dataset_id, second.api_key))]
    # Without a shared order, 8 records come in the same order for two people 1 in 40320.
    assert queues[0] == queues[1] == sorted(t.id for t in tasks)

    # One answer: the record is not complete (2 answers each), so Argilla's progress says 0%.
    answered = httpx.post(
        f"{owner.api_url}/api/v1/records/{mine[queues[0][0]]}/responses",
        json={"values": {"preference": {"value": "A"}}, "status": "submitted"},
        headers={"X-Argilla-Api-Key": first.api_key},
    )
    assert answered.status_code == 201, answered.text
    progress = httpx.get(f"{owner.api_url}/api/v1/datasets/{dataset_id}/progress", headers=headers)
    assert progress.json()["completed"] == 0
    # The web UI shows that 0.00% beside "Submitted 1"; the guidelines say what it counts.
    dataset = httpx.get(f"{owner.api_url}/api/v1/datasets/{dataset_id}", headers=headers).json()
    assert "completed once 2 answers are submitted" in dataset["guidelines"]
    # The second annotator's queue still starts with the record the first one answered.
    assert list(_ui_queue(owner.api_url, dataset_id, second.api_key)) == queues[1]
    assert list(_ui_queue(owner.api_url, dataset_id, first.api_key)) == queues[0][1:]
    with render.console.capture() as captured:
        render.print_annotation_progress(ws)
    shown = " ".join(captured.get().split())  # the title wraps at the console's width
    assert "1 answer submitted; 0 of 8 records completed (2 answers each)" in shown
