"""Open a rendered HTML report in headless chromium and say what a reader actually sees.

Playwright drives Debian's chromium (`make browser` installs it). Use `check_report_in_browser`
on any report file, e.g. the one a real loop wrote, or `report_page` + `report_facts` to make
Playwright assertions on the same page:

    with report_page(path) as report:
        expect(report.page.get_by_role("heading", name="Rounds")).to_be_visible()
        facts = report_facts(report, screenshot=ARTIFACTS / "report.png")

(ARTIFACTS, in `tests.helpers.paths`, is the folder for screenshots a person should see.)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Runs in the page: only what is rendered counts (an element with no box is not visible), and
# an image counts as decoded once the browser has pixels for it.
_FACTS_JS = """
async () => {
  const visible = (el) => el.getClientRects().length > 0
    && getComputedStyle(el).visibility !== "hidden";
  const texts = (selector) => [...document.querySelectorAll(selector)]
    .filter(visible).map((el) => el.innerText.trim());
  const images = [...document.images];
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  const decoded = images.filter((img) => img.complete && img.naturalWidth > 0 && visible(img));
  return {
    title: document.title,
    h1: texts("h1"),
    headings: texts("h2"),
    sections: [...document.querySelectorAll("section[id]")].filter(visible).map((s) => s.id),
    not_yet: texts(".pending"),
    tables: [...document.querySelectorAll("table")].filter(visible).length,
    images: images.length,
    images_decoded: decoded.length,
    broken_images: images.filter((img) => !decoded.includes(img)).map((img) => img.alt),
    overflows: document.documentElement.scrollWidth > window.innerWidth,
    height: document.documentElement.scrollHeight,
  };
}
"""


@dataclass
class OpenReport:
    page: Page
    requests: list[str] = field(default_factory=list)  # every URL the page asked for


@contextmanager
def report_page(path: Path, width: int = 1400) -> Iterator[OpenReport]:
    """The file open in a headless chromium page, closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            report = OpenReport(browser.new_page(viewport={"width": width, "height": 900}))
            report.page.on("request", lambda request: report.requests.append(request.url))
            report.page.goto(path.resolve().as_uri(), wait_until="load")
            yield report
        finally:
            browser.close()


def report_facts(report: OpenReport, screenshot: Path | None = None) -> dict[str, Any]:
    """What a reader sees on an open report page, and a full-page screenshot if asked.

    Keys: title, h1, headings (visible h2 texts, in order), sections (visible section ids),
    not_yet (visible "not yet" lines), tables, images, images_decoded, broken_images (alt
    texts), overflows (the page scrolls sideways), height, external_requests (anything
    fetched that is not the file itself or inline data).
    """
    facts = report.page.evaluate(_FACTS_JS)
    facts["external_requests"] = [
        url for url in report.requests if not url.startswith(("file:", "data:"))
    ]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        report.page.screenshot(path=str(screenshot), full_page=True)
    return facts


def check_report_in_browser(path: Path, screenshot: Path | None = None) -> dict[str, Any]:
    """Open the report, collect `report_facts`, and save a full-page screenshot if asked."""
    with report_page(path) as report:
        return report_facts(report, screenshot)
