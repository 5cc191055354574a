"""THE anonymity gate: the single place where the feedback privacy rule is enforced.

Rule: survey scores, ratings and comments leave the database only as aggregates over at least
``anonymity_threshold`` responses (default 5, and never below :data:`MIN_THRESHOLD` = 3, whatever the
configuration says).

Every report (weekly digest, dashboards, exports, charts) must route each feedback figure — CSAT, the
dimension averages, emoji-rating breakdowns and free-text comments — through :func:`gate` (or the helpers
below, which call it) and show :data:`SUPPRESSED_TEXT` when the result is suppressed. Do not re-implement
the threshold comparison anywhere else; if the rule changes, it changes here.

Volume and speed figures (request counts, response times) are not feedback and need no gate.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.analytics.stats import csat_percent, mean

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_THRESHOLD",
    "SUPPRESSED_TEXT",
    "GatedValue",
    "effective_threshold",
    "gate",
    "gate_breakdown",
    "gate_comments",
    "gated_csat",
    "gated_mean",
    "is_allowed",
]

T = TypeVar("T")

DEFAULT_THRESHOLD = 5
MIN_THRESHOLD = 3
SUPPRESSED_TEXT = "not enough answers to show, to protect anonymity"


def effective_threshold(configured: int | None) -> int:
    """The threshold actually applied: ``max(3, configured)``; ``None`` means the default (5)."""
    if configured is None:
        return DEFAULT_THRESHOLD
    return max(MIN_THRESHOLD, int(configured))


def is_allowed(count: int, threshold: int | None) -> bool:
    """True when ``count`` responses are enough to publish an aggregate over them."""
    return count >= effective_threshold(threshold)


@dataclass(frozen=True, slots=True)
class GatedValue(Generic[T]):
    """A feedback figure after the anonymity gate. ``value`` is ``None`` whenever ``suppressed``."""

    value: T | None
    count: int
    suppressed: bool

    def display(self, fmt: Callable[[T], str] = str, *, empty: str = "—") -> str:
        """Text for a report: :data:`SUPPRESSED_TEXT`, ``empty`` for no value, else ``fmt(value)``."""
        if self.suppressed:
            return SUPPRESSED_TEXT
        if self.value is None:
            return empty
        return fmt(self.value)


def gate(value: T | None, *, count: int, threshold: int | None) -> GatedValue[T]:
    """Release ``value`` (an aggregate over ``count`` responses) only if ``count`` reaches the threshold.

    Below the effective threshold the value is dropped: ``GatedValue(None, count, suppressed=True)``.
    The response count itself is not sensitive and is always kept.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not is_allowed(count, threshold):
        return GatedValue(None, count, True)
    return GatedValue(value, count, False)


def gated_csat(scores: Sequence[int | None], *, threshold: int | None) -> GatedValue[float]:
    """CSAT % of ``scores`` (see :func:`~bot.analytics.stats.csat_percent`), gated on the answer count."""
    answered = [s for s in scores if s is not None]
    if not is_allowed(len(answered), threshold):
        return GatedValue(None, len(answered), True)
    return gate(csat_percent(answered), count=len(answered), threshold=threshold)


def gated_mean(values: Sequence[float | None], *, threshold: int | None) -> GatedValue[float]:
    """Mean of e.g. one survey dimension's scores, gated on the number of answers."""
    answered = [v for v in values if v is not None]
    return gate(
        mean(answered) if is_allowed(len(answered), threshold) else None,
        count=len(answered),
        threshold=threshold,
    )


def gate_breakdown(counts: Mapping[str, int], *, threshold: int | None) -> GatedValue[dict[str, int]]:
    """A rating breakdown (e.g. emoji -> count), released only if its total reaches the threshold."""
    total = sum(counts.values())
    return gate(dict(counts), count=total, threshold=threshold)


_USER_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_AT_HANDLE = re.compile(r"(?<![\w@])@[\w.-]{2,}")
_REDACTED = "[someone]"


def _scrub(comment: str) -> str:
    """Remove names that a comment could carry: Slack user mentions, @handles and email addresses."""
    text = _USER_MENTION.sub(_REDACTED, comment)
    text = _EMAIL.sub(_REDACTED, text)
    text = _AT_HANDLE.sub(_REDACTED, text)
    return text.strip()


def _content_seed(comments: Sequence[str]) -> int:
    """A seed that depends only on the multiset of comments, never on their order."""
    digest = hashlib.sha256("\x00".join(sorted(comments)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def gate_comments(
    comments: Sequence[str], *, count: int, threshold: int | None, shuffle_seed: int | None = None
) -> GatedValue[list[str]]:
    """Free-text comments, released only when ``count`` responses reach the threshold.

    ``count`` is the number of survey responses the comments come from (comments are optional, so it
    may exceed ``len(comments)``). Released comments are stripped of names (user mentions, @handles,
    emails), blanks are dropped, and the order is shuffled deterministically: it is derived from the
    sorted comments and ``shuffle_seed`` (``None`` -> a seed from the content itself), so it never
    reflects submission order — and is never returned in the input order when that can be avoided.
    """
    if not is_allowed(count, threshold):
        return GatedValue(None, count, True)
    original = [_scrub(c) for c in comments if c and c.strip()]
    original = [c for c in original if c]
    pool = sorted(original)
    seed = _content_seed(pool) if shuffle_seed is None else shuffle_seed
    random.Random(seed).shuffle(pool)
    if pool == original and len(set(pool)) > 1:
        pool = pool[1:] + pool[:1]  # a rotation of a non-constant list always differs from it
    return GatedValue(pool, count, False)
