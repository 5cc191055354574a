"""Pure analytics for the weekly digests: statistics, the anonymity gate, topics and charts.

No Slack and no database here: callers pass plain values in and get plain values (or PNG files) out.
Every feedback figure must pass through :mod:`bot.analytics.privacy` before it is shown.
"""

from bot.analytics.points import WeekPoint
from bot.analytics.privacy import (
    DEFAULT_THRESHOLD,
    MIN_THRESHOLD,
    SUPPRESSED_TEXT,
    GatedValue,
    effective_threshold,
    gate,
    gate_breakdown,
    gate_comments,
    gated_csat,
    gated_mean,
    is_allowed,
)
from bot.analytics.stats import (
    RankedItem,
    csat_percent,
    format_duration,
    mean,
    median,
    percentile,
    ranked_change,
    share_within,
)
from bot.analytics.topics import extract_topics

_CHARTS = ("render_matrix_chart", "render_weekly_chart")


def __getattr__(name: str) -> object:
    """Charts import matplotlib (~40 MB): load them only when a digest is actually drawn."""
    if name in _CHARTS:
        from bot.analytics import charts

        return getattr(charts, name)
    raise AttributeError(f"module 'bot.analytics' has no attribute {name!r}")


__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_THRESHOLD",
    "SUPPRESSED_TEXT",
    "GatedValue",
    "RankedItem",
    "WeekPoint",
    "csat_percent",
    "effective_threshold",
    "extract_topics",
    "format_duration",
    "gate",
    "gate_breakdown",
    "gate_comments",
    "gated_csat",
    "gated_mean",
    "is_allowed",
    "mean",
    "median",
    "percentile",
    "ranked_change",
    "render_matrix_chart",
    "render_weekly_chart",
    "share_within",
]
