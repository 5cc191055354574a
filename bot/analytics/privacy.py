"""THE anonymity gate: the single place where the feedback privacy rule is enforced.

Rules (docs/privacy.md):

1. A feedback figure (average, CSAT, a dimension, a rating breakdown, comments, a chart point, a cell
   of the organisation matrix, a total) is shown only over at least ``anonymity_threshold`` answers
   (default 5, and never below :data:`MIN_THRESHOLD` = 3, whatever the configuration says).
2. Any two figures of the same kind that anyone can obtain are computed from answer sets that are
   equal or differ by at least the threshold (:func:`differs_enough`): satisfaction is only ever
   computed over closed weeks whose answers can no longer change (bot/services/satisfaction.py), so
   two figures about one week are about the same answers and two weeks share none.
3. No hidden figure can be derived from shown ones: where a total is shown above its parts, the parts
   hidden under it add up to nothing or to at least the threshold (:func:`complementary`).
4. Comments are shown only when at least the threshold of them was given, without names and in an
   order that depends on nothing but the comments themselves.

Every report routes each feedback figure through :func:`gate` (or the helpers below, which call it) and
shows :data:`SUPPRESSED_TEXT` when the result is suppressed. Do not re-implement the threshold
comparison anywhere else; if the rule changes, it changes here. Every gated value can carry its
``basis``: the answers it was computed from, as ``"<kind>:<id>"`` strings (the tests check rule 2 on
them; they are never shown).

Volume and speed figures (request counts, response times) are not feedback and need no gate.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.analytics.stats import csat_percent, mean

__all__ = [
    "DEFAULT_THRESHOLD",
    "MIN_THRESHOLD",
    "SUPPRESSED_TEXT",
    "GatedValue",
    "complementary",
    "differs_enough",
    "effective_threshold",
    "gate",
    "gate_breakdown",
    "gate_comments",
    "gated_csat",
    "gated_mean",
    "hidden",
    "is_allowed",
]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
Basis = frozenset[str]

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
    basis: Basis = field(default=frozenset(), compare=False, repr=False)

    def display(self, fmt: Callable[[T], str] = str, *, empty: str = "—") -> str:
        """Text for a report: :data:`SUPPRESSED_TEXT`, ``empty`` for no value, else ``fmt(value)``."""
        if self.suppressed:
            return SUPPRESSED_TEXT
        if self.value is None:
            return empty
        return fmt(self.value)


def gate(value: T | None, *, count: int, threshold: int | None, basis: Basis = frozenset()) -> GatedValue[T]:
    """Release ``value`` (an aggregate over ``count`` responses) only if ``count`` reaches the threshold.

    Below the effective threshold the value is dropped: ``GatedValue(None, count, suppressed=True)``.
    The response count itself is not sensitive and is always kept.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if not is_allowed(count, threshold):
        return GatedValue(None, count, True, basis)
    return GatedValue(value, count, False, basis)


def hidden(value: GatedValue[T]) -> GatedValue[T]:
    """``value`` suppressed although its own count would allow it (complementary suppression)."""
    return GatedValue(None, value.count, True, value.basis)


def differs_enough(a: Basis, b: Basis, threshold: int | None) -> bool:
    """Rule 2 for two shown figures: the same answers, or at least the threshold of answers apart."""
    return a == b or len(a ^ b) >= effective_threshold(threshold)


def complementary(counts: Mapping[K, int], *, threshold: int | None) -> set[K]:
    """Which parts of a shown total to hide so that no hidden part can be worked out from the shown ones.

    ``counts``: answers per part (e.g. per department within one team). Parts below the threshold are
    hidden; if what is hidden then adds up to more than nothing but less than the threshold (the total
    minus the shown parts would give it away), the smallest shown parts are hidden too until it does
    not. Call it only for a total that is itself shown (at least the threshold): hiding every part then
    always suffices.
    """
    limit = effective_threshold(threshold)
    hide = {key for key, n in counts.items() if 0 < n < limit}
    hidden_total = sum(counts[key] for key in hide)
    for key in sorted((k for k, n in counts.items() if n >= limit), key=lambda k: (counts[k], str(k))):
        if hidden_total == 0 or hidden_total >= limit:
            break
        hide.add(key)
        hidden_total += counts[key]
    return hide


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


def gate_breakdown(counts: Mapping[str, int], *, threshold: int | None,
                   basis: Basis = frozenset()) -> GatedValue[dict[str, int]]:
    """A rating breakdown (e.g. emoji -> count), released only if its total reaches the threshold."""
    total = sum(counts.values())
    return gate(dict(counts), count=total, threshold=threshold, basis=basis)


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


def gate_comments(comments: Sequence[str], *, threshold: int | None, shuffle_seed: int | None = None,
                  basis: Basis = frozenset()) -> GatedValue[list[str]]:
    """Free-text comments, released only when there are at least the threshold of them.

    (Enough *answers* are not enough: one comment among five scores would be one person's words.)
    Released comments are stripped of names (user mentions, @handles, emails), blanks are dropped, and
    the order is shuffled deterministically: it is derived from the sorted comments and
    ``shuffle_seed`` (``None`` -> a seed from the content itself), so it never reflects submission
    order — and is never returned in the input order when that can be avoided.
    """
    original = [_scrub(c) for c in comments if c and c.strip()]
    original = [c for c in original if c]
    if not is_allowed(len(original), threshold):
        return GatedValue(None, len(original), True, basis)
    pool = sorted(original)
    seed = _content_seed(pool) if shuffle_seed is None else shuffle_seed
    random.Random(seed).shuffle(pool)
    if pool == original and len(set(pool)) > 1:
        pool = pool[1:] + pool[:1]  # a rotation of a non-constant list always differs from it
    return GatedValue(pool, len(pool), False, basis)
