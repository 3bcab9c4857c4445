"""The report kit: HTML pages, tables and embedded figures (`html`), and one formatter per
kind of number (`format`). Used by the reward report, the workspace report, the model card
and the CLI; imports nothing of traitforge but `schemas`."""

from traitforge.reporting.format import fmt_ci, fmt_counts, fmt_num, fmt_pct, fmt_pct_ci
from traitforge.reporting.html import (
    STYLE,
    Column,
    escape_html,
    html_page,
    html_section,
    html_table,
    key_values_table,
    png_image,
)

__all__ = [
    "STYLE",
    "Column",
    "escape_html",
    "fmt_ci",
    "fmt_counts",
    "fmt_num",
    "fmt_pct",
    "fmt_pct_ci",
    "html_page",
    "html_section",
    "html_table",
    "key_values_table",
    "png_image",
]
