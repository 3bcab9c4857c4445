"""A person's path through the real Label Studio 1.23.2 web UI: join, log in, answer, submit.

Playwright drives Debian's chromium (`make test` installs it), headless, against a Label
Studio server of the module's own, reached as an existing server would be (LABEL_STUDIO_URL /
LABEL_STUDIO_API_KEY).

The annotator's account: Label Studio's open-source API creates users without a password
(`POST /api/users` ignores one), and the server runs with signup closed unless through an
invite link. So the annotator joins as a person would: the owner asks the API for the
organization's invite link (`GET /api/invite`), the annotator signs up through it with an
email and a password, then logs in with them in a fresh browser. Label Studio names the
account after the email's local part, and judgements carry that username.

Checked as an annotator sees it: the question's wording (from the trait's polarity), the
rating's wording with its ends, the instructions, both responses shown literally.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS
from tests.helpers.label_studio import running_server, truthfulqa_triples, with_annotation
from tests.helpers.paths import ARTIFACTS
from traitforge.annotators.label_studio.client import LabelStudioAPI
from traitforge.app import workflows
from traitforge.curation.sources import Parsed, source_format
from traitforge.schemas import Candidate, ComparisonTask, LabelStudioConfig
from traitforge.workspace import Workspace

pytestmark = pytest.mark.integration

PROJECT = "ui-honesty-k2"
ANNOTATOR = "ls-annotator"
EMAIL = f"{ANNOTATOR}@traitforge.local"
PASSWORD = "correct-horse-battery-staple-42"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_server(tmp_path_factory.mktemp("label-studio-ui") / "server-ws") as server:
        yield server


def _with_task(ws: Workspace, candidates: list[Candidate]) -> ComparisonTask:
    """One honesty task over `candidates` (in this order), stored in the workspace."""
    task = ComparisonTask(
        prompt_id=candidates[0].prompt_id,
        candidate_ids=[c.id for c in candidates],
        trait="honesty",
        reason="uncertainty",
    )
    with ws.store() as store, store.transaction():
        store.add_candidates(candidates)
        store.add_tasks([task])
    return task


def _ui_workspace(server, root: Path, monkeypatch, project: str, **update) -> Workspace:
    """A workspace on the module's server, reached as an existing one, pushing to `project`."""
    url, token = server
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", token)
    return with_annotation(
        root,
        backend="label-studio",
        label_studio=LabelStudioConfig(project=project, min_submitted=1),
        **update,
    )


@pytest.fixture
def ui_workspace(server, tmp_path, monkeypatch, data_dir):
    ws = _ui_workspace(server, tmp_path / "ws", monkeypatch, "ui-{trait}-k{k}")
    # one real TruthfulQA question, its best true answer against a false one
    path = data_dir / "truthfulqa" / "TruthfulQA.csv"
    first = next(
        o for o in source_format("truthfulqa").reader(path, ws.config) if isinstance(o, Parsed)
    )
    true = next(c for c in first.candidates if c.metadata["best_answer"])
    false = next(c for c in first.candidates if c.gold["honesty"] == 0.0)
    return ws, _with_task(ws, [true, false]), true, false


def _form_login(url: str, email: str, password: str) -> int:
    """The HTTP status of Label Studio's login form posted as a browser posts it: 302 (to
    the projects) when it lets the account in, 200 (the form again) when it does not."""
    with httpx.Client(base_url=url) as anon:
        assert anon.get("/user/login/").status_code == 200
        return anon.post(
            "/user/login/",
            data={
                "email": email,
                "password": password,
                "csrfmiddlewaretoken": anon.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/user/login/"},
        ).status_code


def _join(browser, url: str, invite: str, email: str, shots: Path | None = None) -> None:
    """Sign `email` up through the organization's invite link, as a person joins."""
    joining = browser.new_context(viewport={"width": 1400, "height": 900})
    page = joining.new_page()
    page.goto(f"{url}{invite}")
    if shots is not None:
        _shot(page, shots, "signup")
    page.locator("input[name='email']").fill(email)
    page.locator("input[name='password']").fill(PASSWORD)
    page.locator("button[type='submit'], input[type='submit']").first.click()
    page.wait_for_url(lambda u: "signup" not in u, timeout=30_000)
    joining.close()


def _logged_in(browser, url: str, email: str, shots: Path | None = None):
    """A page of a fresh browser context, logged in as `email`."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{url}/user/login/")
    page.locator("input[name='email']").fill(email)
    page.locator("input[name='password']").fill(PASSWORD)
    if shots is not None:
        _shot(page, shots, "login")
    page.locator("button[type='submit'], input[type='submit']").first.click()
    page.wait_for_url(lambda u: "login" not in u, timeout=30_000)
    return page


def _shot(page, folder: Path, name: str) -> None:
    """A full-page screenshot in the test's folder, copied where a person looks."""
    path = folder / f"label-studio-ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def test_annotator_answers_in_the_browser_and_pull_returns_the_judgement(
    server, ui_workspace, tmp_path
):
    from playwright.sync_api import expect, sync_playwright

    url, token = server
    ws, task, true, false = ui_workspace
    assert workflows.push(ws).sent == 1
    with LabelStudioAPI(url, token, retries=0) as api:
        project = api.projects()[PROJECT]
        [copy] = list(api.tasks(int(project["id"])))
        invite = api.request("GET", "/api/invite")["invite_url"]
    with ws.store() as store:
        order = store.presented_orders(PROJECT)[task.id]

    # The API makes no account one can log in with: a password it is sent is ignored.
    made = httpx.post(
        f"{url}/api/users",
        headers={"Authorization": f"Token {token}"},
        json={"username": "no-login", "email": "no-login@traitforge.local", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    assert _form_login(url, "no-login@traitforge.local", PASSWORD) == 200  # the form again

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # Joining: through the invite link, with an email and a password.
        _join(browser, url, invite, EMAIL, tmp_path)
        assert _form_login(url, EMAIL, PASSWORD) == 302  # the form lets this account in
        # Logging in, in a fresh browser.
        page = _logged_in(browser, url, EMAIL, tmp_path)

        page.goto(f"{url}/projects/{project['id']}/data?task={copy['id']}")
        editor = page.locator("#label-studio-dm")
        expect(editor.get_by_text(true.prompt, exact=True)).to_be_visible(timeout=60_000)
        columns = editor.locator(".tf-response")
        expect(columns).to_have_count(2)
        shown = [true if c == true.id else false for c in order]
        for i, candidate in enumerate(shown):
            expect(columns.nth(i)).to_contain_text(f"Response {'AB'[i]}")
            expect(columns.nth(i).get_by_text(candidate.response, exact=True)).to_be_visible()
            expect(columns.nth(i)).to_contain_text(
                f"How honest is response {'AB'[i]}? (1 star = Clearly false"
            )
        expect(editor.get_by_text("Which response is more honest?", exact=True)).to_be_visible()
        _shot(page, tmp_path, "task")

        # The project's instructions, from the trait's guidelines.
        page.get_by_role("button", name="Instructions").click()
        title = page.get_by_role("heading", name="honesty: compare 2 responses")
        expect(title).to_be_visible(timeout=10_000)
        shown_instructions = title.locator("xpath=..")  # the rendered guidelines around it
        expect(shown_instructions).to_contain_text("by clicking the better response")
        expect(shown_instructions).to_contain_text("honesty (more is better)")
        # The guidelines' Markdown is rendered: a heading per trait, the scale as a list, and
        # the hard-wrapped lines of a paragraph joined into one.
        heading = shown_instructions.get_by_role("heading", name="honesty (more is better)")
        expect(heading).to_be_visible()
        anchor = shown_instructions.get_by_role("listitem").filter(has_text="True, calibrated")
        expect(anchor).to_have_text("5: True, calibrated, and candid about uncertainty")
        expect(anchor.locator("strong")).to_have_text("5")
        assert "**" not in shown_instructions.inner_text()
        wrapped = shown_instructions.locator("p").filter(has_text="would they say it leaves")
        assert "\n" not in wrapped.inner_text()  # one flowing sentence, not cut at the wrap
        page.wait_for_timeout(500)  # the modal fades in
        _shot(page, tmp_path, "instructions")
        page.get_by_role("button", name="Close modal").click()
        expect(title).to_be_hidden()

        chosen = columns.nth(order.index(true.id))
        # Pairwise makes each response clickable; the chosen one takes the selection style.
        pick = chosen.locator(".cursor-pointer")
        pick.click()
        expect(pick).to_have_attribute("style", re.compile("rgb\\(82, 196, 26\\)"))
        chosen.locator("[role='radio'][aria-posinset='5']").click()
        expect(chosen.locator("[role='radio'][aria-checked='true']")).to_have_count(5)
        _shot(page, tmp_path, "answered")
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_text("Annotation saved successfully", exact=True)).to_be_visible(
            timeout=30_000
        )
        _shot(page, tmp_path, "submitted")
        browser.close()

    pulled = workflows.pull(ws)
    assert pulled.new == 1, pulled
    with ws.store() as store:
        [judgement] = list(store.judgements())
    assert judgement.task_id == task.id
    assert judgement.annotator_id == ANNOTATOR
    assert not judgement.simulated
    best = min(judgement.ranking, key=lambda r: r.rank)
    assert best.candidate_id == true.id
    assert [r.rank for r in judgement.ranking if r.candidate_id == false.id] == [2]
    assert judgement.ratings == {true.id: {"honesty": 5}}
    assert workflows.pull(ws).new == 0  # incremental: nothing new the second time


RANKER = "ls-ranker"


def _place(page, text: str, place: int) -> None:
    """Drag a response's Ranker item from the list into its place, with the keyboard as
    react-beautiful-dnd offers it: focus, Space to lift, one ArrowRight per column, Space."""
    handle = page.locator(f"[data-rbd-drag-handle-draggable-id='{text}']")
    handle.focus()
    page.keyboard.press("Space")
    for _ in range(place):
        page.wait_for_timeout(250)  # each move animates before the next is taken
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(250)
    page.keyboard.press("Space")
    page.wait_for_timeout(500)


def test_annotator_ties_two_of_three_responses_in_one_place(
    server, tmp_path, monkeypatch, data_dir
):
    """A triple: the two false answers dropped into one place of the Ranker are a tie."""
    from playwright.sync_api import expect, sync_playwright

    url, token = server
    ws = _ui_workspace(
        server, tmp_path / "ws", monkeypatch, "ui3-{trait}-k{k}", layout="side-by-side"
    )
    [triple] = truthfulqa_triples(data_dir, ws.config, 1)
    true, *false = triple
    task = _with_task(ws, triple)
    assert workflows.push(ws).sent == 1
    with LabelStudioAPI(url, token, retries=0) as api:
        project = api.projects()["ui3-honesty-k3"]
        [copy] = list(api.tasks(int(project["id"])))
        invite = api.request("GET", "/api/invite")["invite_url"]
    with ws.store() as store:
        order = store.presented_orders("ui3-honesty-k3")[task.id]
    text_of = {c: f"response_{'abc'[i]}" for i, c in enumerate(order)}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        _join(browser, url, invite, f"{RANKER}@traitforge.local")
        page = _logged_in(browser, url, f"{RANKER}@traitforge.local")
        page.goto(f"{url}/projects/{project['id']}/data?task={copy['id']}")
        editor = page.locator("#label-studio-dm")
        expect(editor.get_by_text(true.prompt, exact=True)).to_be_visible(timeout=60_000)
        # side-by-side: the three responses in one row of columns
        columns = editor.locator(".tf-response")
        expect(columns).to_have_count(3)
        tops = {round(columns.nth(i).bounding_box()["y"]) for i in range(3)}
        assert len(tops) == 1, tops
        places = editor.locator(".htx-ranker-column h3")
        expect(places).to_have_text(["Responses", "1st (best)", "2nd", "3rd (worst)"])
        # Each Ranker item names its response and shows its start.
        first = editor.locator(f"[data-ranker-id='{text_of[true.id]}']")
        expect(first).to_contain_text(true.response[:40])
        _shot(page, tmp_path, "ranker")

        _place(page, text_of[true.id], 1)
        for candidate in false:
            _place(page, text_of[candidate.id], 2)
        second = editor.locator("[data-rbd-droppable-id='rank_2'] .htx-ranker-item")
        expect(second).to_have_count(2)
        _shot(page, tmp_path, "ranked")
        page.get_by_role("button", name="Submit").click()
        expect(page.get_by_text("Annotation saved successfully", exact=True)).to_be_visible(
            timeout=30_000
        )
        browser.close()

    assert workflows.pull(ws).new == 1
    with ws.store() as store:
        [judgement] = list(store.judgements())
    assert judgement.annotator_id == RANKER
    assert {r.candidate_id: r.rank for r in judgement.ranking} == {
        true.id: 1,
        false[0].id: 2,
        false[1].id: 2,
    }
