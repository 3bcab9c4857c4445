"""The pieces of a self-contained HTML page: the style sheet, sections, escaped tables and
PNG figures embedded as base64, so a page opens offline and renders byte-identically for the
same input."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
h1, h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.diagonal { font-weight: bold; background: #fff3c4; }
.headline .big { font-size: 2rem; font-weight: bold; }
.verdict { margin: .3rem 0; padding: .3rem .6rem; border-left: 4px solid; }
.verdict.ok { border-color: #2e7d32; background: #edf7ed; }
.verdict.warn { border-color: #c62828; background: #fdecea; }
.verdict.na { border-color: #888; background: #f3f3f3; }
img { max-width: 100%; }
"""

# (header, cell): the cell function turns one row item into what the column shows
Column = tuple[str, Callable[[Any], object]]


def html_page(title: str, body: str, extra_style: str = "") -> str:
    """A whole page: `title` as its title and heading, then `body` (markup, not escaped)."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape_html(title)}</title>\n<style>{STYLE}{extra_style}</style>\n</head>\n"
        f"<body>\n<h1>{escape_html(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


def html_section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{escape_html(heading)}</h2>\n{body}\n</section>'


def html_table(columns: Sequence[Column], items: Iterable[Any]) -> str:
    """An HTML table with one row per item; every cell is escaped."""
    head = "".join(f"<th>{escape_html(header)}</th>" for header, _ in columns)
    rows = [
        "<tr>" + "".join(f"<td>{escape_html(cell(i))}</td>" for _, cell in columns) + "</tr>"
        for i in items
    ]
    return "\n".join(["<table>", f"<tr>{head}</tr>", *rows, "</table>"])


def key_values_table(key: str, rows: Iterable[tuple[str, object]]) -> str:
    return html_table([(key, lambda row: row[0]), ("Value", lambda row: row[1])], rows)


def png_image(draw: Callable[[Figure], None], size: tuple[float, float], alt: str) -> str:
    """Draw on a fresh Agg figure and return it as an inline <img>.

    No pyplot: the figure is never registered globally, so nothing leaks or needs closing,
    and the caller's matplotlib backend is left alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{escape_html(alt)}" src="data:image/png;base64,{data}">'


def escape_html(value: object) -> str:
    return html.escape(str(value))
