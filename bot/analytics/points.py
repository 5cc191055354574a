"""Plain data points for charts (kept apart from charts.py so figures need no matplotlib import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """One week of the trend chart. ``csat`` is a gated CSAT % or ``None`` (no data / suppressed)."""

    label: str
    volume: int
    csat: float | None
