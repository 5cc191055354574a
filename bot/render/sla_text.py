"""How SLA deadlines read where they are computed for the moment they are shown (App Home, digests,
reminders): "due in 25m", "overdue 2h", in the reader's language. Messages that stay in a channel show
the deadline as a Slack date token instead, which Slack keeps relative ("in 25 minutes") as time passes.

Every sentence is one message with named placeholders (`bot.i18n`); durations are formatted by the
translator (`fmt_duration`), at least a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.i18n import Translator

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
NOW_WINDOW = 30  # seconds either side of a deadline that read "due now"


@dataclass(frozen=True)
class SlaView:
    """What a message shows of a request's SLAs at `now`: unmet deadlines (sla, due) or a pause."""

    now: datetime
    deadlines: tuple[tuple[str, datetime], ...] = ()
    waiting_since: datetime | None = None

    @property
    def next_due(self) -> datetime | None:
        return min((due for _, due in self.deadlines), default=None)


def _left(due: datetime, now: datetime, t: Translator) -> tuple[float, str]:
    seconds = (due - now).total_seconds()
    return seconds, t.fmt_duration(max(60, round(abs(seconds) / 60) * 60))


def due_phrase(due: datetime, now: datetime, t: Translator) -> str:
    """"due in 25m" before the deadline, "overdue 2h" after it."""
    seconds, duration = _left(due, now, t)
    if abs(seconds) < NOW_WINDOW:
        return t._("due now")
    return t._("due in {duration}", duration=duration) if seconds > 0 else t._("overdue {duration}", duration=duration)
