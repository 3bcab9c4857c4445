"""How every report, card and CLI table writes a number: one formatter per kind of figure.

A missing figure (None, or NaN from an empty mean) is written "n/a" everywhere, so no caller
has to test for it first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

MISSING = "n/a"


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def fmt_num(value: float | None, digits: int = 3, sign: bool = False) -> str:
    """A plain number with `digits` decimals; `sign` writes "+" on positive ones."""
    if _missing(value):
        return MISSING
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage: 0.8125 -> "81.2%"."""
    return MISSING if _missing(value) else f"{100 * value:.{digits}f}%"


def fmt_ci(interval: Sequence[float] | None) -> str:
    """A confidence interval of a share: [0.7, 0.9] -> "[70.0%, 90.0%]"."""
    return f"[{fmt_pct(interval[0])}, {fmt_pct(interval[1])}]" if interval else MISSING


def fmt_pct_ci(value: float | None, interval: Sequence[float] | None) -> str:
    """A share and its interval, "85.0% [78.0%, 91.0%]"; the share alone when there is no
    interval, and "n/a" when there is no share."""
    if _missing(value):
        return MISSING
    return fmt_pct(value) + (f" {fmt_ci(interval)}" if interval else "")


def fmt_counts(counts: Mapping[str, int], item: str = "{name}: {n}", empty: str = "none") -> str:
    """Named counts by name, "a: 2, b: 1" (`item` places the name and the count); `empty`
    when there are none."""
    return ", ".join(item.format(name=k, n=n) for k, n in sorted(counts.items())) or empty
