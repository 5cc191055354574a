"""Small, dependency-free statistics used by the weekly digests.

All functions are pure. ``None`` and NaN entries in the inputs are ignored (an unanswered request has no
response time), and every function returns ``None`` when nothing is left to summarise, so callers can
render "—" instead of a misleading zero.

Feedback figures (CSAT, dimension averages) computed here are *raw*: before they leave the analytics
layer they must go through :mod:`bot.analytics.privacy`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "RankedItem",
    "csat_percent",
    "duration_parts",
    "format_duration",
    "mean",
    "median",
    "percentile",
    "ranked_change",
    "share_within",
]

#: Survey scores counted as "satisfied" by :func:`csat_percent`.
CSAT_SATISFIED = frozenset({4, 5})


def _clean(values: Iterable[float | None]) -> list[float]:
    """Finite-or-infinite floats with ``None``/NaN removed."""
    return [float(v) for v in values if v is not None and not math.isnan(v)]


def _lerp(lo: float, hi: float, frac: float) -> float:
    """Interpolate between ``lo <= hi``; overflow-safe and never outside ``[lo, hi]``."""
    if frac <= 0 or lo == hi:
        return lo
    if frac >= 1:
        return hi
    result = lo + (hi - lo) * frac
    if not math.isfinite(result):
        result = lo * (1 - frac) + hi * frac
    return min(max(result, lo), hi)


def median(values: Sequence[float | None]) -> float | None:
    """Middle value; for an even count the mean of the two middle values. Empty -> ``None``."""
    data = sorted(_clean(values))
    n = len(data)
    if n == 0:
        return None
    mid = n // 2
    if n % 2:
        return data[mid]
    return _lerp(data[mid - 1], data[mid], 0.5)


def percentile(values: Sequence[float | None], q: float) -> float | None:
    """The ``q``-th percentile (``0 <= q <= 100``) of ``values``. Empty -> ``None``.

    Uses linear interpolation between the closest ranks, identical to numpy's default
    (``method="linear"``): with the values sorted as ``x[0..n-1]``, the position is
    ``h = (n - 1) * q / 100`` and the result is ``x[floor(h)] + (h - floor(h)) * (x[ceil(h)] - x[floor(h)])``.
    So ``percentile(v, 50) == median(v)``, ``q=0`` is the minimum and ``q=100`` the maximum.
    """
    if not 0 <= q <= 100 or math.isnan(q):
        raise ValueError(f"percentile q must be within 0..100, got {q!r}")
    data = sorted(_clean(values))
    if not data:
        return None
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return _lerp(data[lo], data[hi], pos - lo)


def share_within(values: Sequence[float | None], limit: float) -> float | None:
    """Percentage (0–100) of values ``<= limit``, e.g. the share of requests answered within SLA.

    Values that are ``None`` are ignored; pass the elapsed time so far for still-open requests if they
    should count as breaches.
    """
    data = _clean(values)
    if not data:
        return None
    return 100.0 * sum(1 for v in data if v <= limit) / len(data)


def csat_percent(scores: Sequence[int | None]) -> float | None:
    """CSAT: percentage of 1–5 survey scores that are 4 or 5. Empty -> ``None``.

    Raises ``ValueError`` for a score outside 1..5 (bad data should not silently skew a digest).
    """
    data = [s for s in scores if s is not None]
    if not data:
        return None
    bad = [s for s in data if not 1 <= s <= 5]
    if bad:
        raise ValueError(f"survey scores must be within 1..5, got {bad[:3]!r}")
    return 100.0 * sum(1 for s in data if s in CSAT_SATISFIED) / len(data)


def mean(values: Sequence[float | None]) -> float | None:
    """Arithmetic mean (``math.fsum`` for accuracy). Empty -> ``None``."""
    data = _clean(values)
    if not data:
        return None
    try:
        return math.fsum(data) / len(data)
    except OverflowError:  # huge finite values: scale first
        return math.fsum(v / len(data) for v in data)
    except ValueError:  # inf + -inf
        return math.nan


@dataclass(frozen=True, slots=True)
class RankedItem:
    """One row of a ranked list (e.g. a department) with its change versus the previous period."""

    key: str
    count: int
    previous: int
    delta: int
    rank: int
    previous_rank: int | None

    @property
    def is_new(self) -> bool:
        """True when the key did not appear at all in the previous period."""
        return self.previous_rank is None


def _ranks(counts: Mapping[str, int]) -> dict[str, int]:
    """Competition ranking ("1224"): equal counts share a rank."""
    ranks: dict[str, int] = {}
    ordered = sorted(((k, c) for k, c in counts.items() if c > 0), key=lambda kc: (-kc[1], kc[0]))
    last_count: int | None = None
    last_rank = 0
    for position, (key, count) in enumerate(ordered, start=1):
        if count != last_count:
            last_rank, last_count = position, count
        ranks[key] = last_rank
    return ranks


def ranked_change(current: Mapping[str, int], previous: Mapping[str, int]) -> list[RankedItem]:
    """Rank ``current`` counts (desc, ties by key) and compare each key with ``previous``.

    Only keys with a positive current count are listed. Equal counts share a rank. ``previous_rank`` is
    ``None`` for keys absent (or zero) in the previous period.
    """
    now = _ranks(current)
    before = _ranks(previous)
    items = [
        RankedItem(
            key=key,
            count=current[key],
            previous=previous.get(key, 0),
            delta=current[key] - previous.get(key, 0),
            rank=rank,
            previous_rank=before.get(key),
        )
        for key, rank in now.items()
    ]
    items.sort(key=lambda item: (-item.count, item.key))
    return items


def duration_parts(seconds: float | None) -> list[tuple[int, str]] | None:
    """A duration as at most two rounded units, largest first: ``[(1, "h"), (27, "m")]``.

    Units are ``d``, ``h``, ``m``, ``s``; ``None`` for ``None``, NaN, negative or infinite values."""
    if seconds is None or math.isnan(seconds) or seconds < 0 or math.isinf(seconds):
        return None
    if seconds < 59.5:
        return [(round(seconds), "s")]
    minutes = round(seconds / 60)
    if minutes < 60:
        return [(minutes, "m")]
    if minutes < 24 * 60:
        hours, mins = divmod(minutes, 60)
        return [(hours, "h"), (mins, "m")] if mins else [(hours, "h")]
    hours = round(seconds / 3600)
    days, hrs = divmod(hours, 24)
    return [(days, "d"), (hrs, "h")] if hrs else [(days, "d")]


def format_duration(seconds: float | None) -> str:
    """Short human duration: ``"45s"``, ``"12m"``, ``"3h 5m"``, ``"2d 4h"``; ``"—"`` for ``None``.

    Values are rounded to the displayed precision; negative or NaN values also give ``"—"``.
    (People read durations through ``bot.i18n``'s ``fmt_duration``, in their language.)
    """
    parts = duration_parts(seconds)
    if parts is None:
        return "∞" if seconds is not None and math.isinf(seconds) else "—"
    return " ".join(f"{value}{unit}" for value, unit in parts)
