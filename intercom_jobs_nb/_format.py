"""Numbers as people read them, one way everywhere (the CLI, the panel, charts, summaries):
counts with thousands separators (``1,502``), shares as percentages with one decimal
(``72.4%``), durations in words (``2 min 5 s``)."""

from __future__ import annotations

import math

__all__ = ["number", "percent", "duration"]


def number(n: int | float) -> str:
    """``1502`` -> ``"1,502"``."""
    return f"{n:,}"


def percent(share: float) -> str:
    """``0.7243`` -> ``"72.4%"``; a missing share (NaN) -> ``""``."""
    return "" if share != share else f"{share:.1%}"


def duration(seconds: float) -> str:
    """A short human duration: ``"6 s"``, ``"2 min 5 s"``, ``"1 h 3 min"``."""
    s = max(0, math.ceil(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s} s" if s else f"{m} min"
    h, rest = divmod(s, 3600)
    return f"{h} h {rest // 60} min"
