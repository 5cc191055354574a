"""SLA clocks: how much of a team's time has passed, and when a given amount will have passed.

Pure arithmetic: no database, no Slack, no settings object. A `WorkCalendar` is either a calendar
clock (every second counts, as before) or a business clock: working `hours` (minutes of the local
day, wall-clock, so 09:00 stays 09:00 across DST changes) on working `days`, minus `holidays`, in the
team's time zone. Every datetime in and out is timezone-aware; results are UTC.

SLA targets keep their units (`SlaSpan`), because on a business clock "2d" means two working days
(twice the length of the working day), not 48 working hours.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
SEARCH_DAYS = 3700  # ten years: a calendar with no working time in that span is an error
_SPAN_RE = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_SECONDS = {"h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class SlaSpan:
    """An SLA target as written: whole weeks and days, plus hours/minutes/seconds.

    On a calendar clock a week is 7 days and a day 24 hours. On a business clock a day is one working
    day (the length of the working hours) and a week is as many working days as the calendar has."""

    weeks: int = 0
    days: int = 0
    seconds: int = 0

    def nominal(self) -> timedelta:
        """The span on a calendar clock."""
        return timedelta(weeks=self.weeks, days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        parts = [f"{self.weeks}w" if self.weeks else "", f"{self.days}d" if self.days else ""]
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        parts += [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
        return "".join(parts) or "0s"


def parse_span(text: str) -> SlaSpan:
    """"30m", "4h", "2d", "1w", "1h30m" → SlaSpan; ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError("expected a duration string like \"30m\", \"4h\" or \"2d\"")
    compact = text.strip().lower().replace(" ", "")
    if not compact or _SPAN_RE.sub("", compact):
        raise ValueError(f"{text!r} is not a duration; use forms like \"30m\", \"4h\", \"2d\", \"1h30m\"")
    weeks = days = seconds = 0
    for number, unit in _SPAN_RE.findall(compact):
        if unit == "w":
            weeks += int(number)
        elif unit == "d":
            days += int(number)
        else:
            seconds += int(number) * _SECONDS[unit]
    return SlaSpan(weeks=weeks, days=days, seconds=seconds)


def parse_hours(text: str) -> tuple[int, int]:
    """"09:00-18:00" → (540, 1080): minutes of the local day, start before end ("24:00" ends at midnight)."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"{text!r} is not a range of hours like \"09:00-18:00\"")
    sh, sm, eh, em = (int(g) for g in match.groups())
    start, end = sh * 60 + sm, eh * 60 + em
    if sh > 23 or sm > 59 or em > 59 or end > MINUTES_PER_DAY or start >= end:
        raise ValueError(f"{text!r} is not a range of hours like \"09:00-18:00\" (start before end, at most 24:00)")
    return start, end


@dataclass(frozen=True)
class WorkCalendar:
    """When a team's SLA clock runs. `business=False` is the calendar clock: always running."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    hours: tuple[int, int] = (0, MINUTES_PER_DAY)
    days: frozenset[int] = frozenset(range(7))  # Monday = 0
    holidays: frozenset[date] = frozenset()
    business: bool = False

    def __post_init__(self) -> None:
        start, end = self.hours
        if not 0 <= start < end <= MINUTES_PER_DAY:
            raise ValueError(f"working hours must be minutes of the day with start < end, got {self.hours}")
        if self.business and not self.days:
            raise ValueError("a business clock needs at least one working day")

    @property
    def day_length(self) -> timedelta:
        """The nominal length of one working day (what "1d" means on a business clock)."""
        if not self.business:
            return timedelta(days=1)
        return timedelta(minutes=self.hours[1] - self.hours[0])

    def working_time(self, span: SlaSpan) -> timedelta:
        """How much clock time `span` is on this calendar."""
        if not self.business:
            return span.nominal()
        return (span.weeks * len(self.days) + span.days) * self.day_length + timedelta(seconds=span.seconds)

    # -- working windows ---------------------------------------------------------------------
    def window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of a local date as UTC datetimes, or None on a day off."""
        return _window(self, day)

    def _windows_from(self, when: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working windows that end after `when`, in order (a window never spans two local dates)."""
        day = when.astimezone(self.tz).date()
        for offset in range(SEARCH_DAYS):
            window = self.window(day + timedelta(days=offset))
            if window is not None and window[1] > when:
                yield window
        raise ValueError("the business calendar has no working time in ten years (holidays cover everything?)")

    # -- queries -------------------------------------------------------------------------------
    def next_working(self, when: datetime) -> datetime:
        """`when` if the clock runs then, else the next moment it starts running (UTC)."""
        if not self.business:
            return when.astimezone(UTC)
        opens, _ = next(self._windows_from(when))
        return max(opens, when.astimezone(UTC))

    def is_working(self, when: datetime) -> bool:
        return self.next_working(when) == when.astimezone(UTC)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The moment at which `amount` of clock time has run since `start` (UTC).

        On a business clock the result may be a window's closing instant (the time ran out exactly
        then); whoever acts on it outside working hours waits for `next_working`."""
        start = start.astimezone(UTC)
        if not self.business:
            return start + amount
        if amount <= timedelta(0):
            return start
        remaining = amount
        for opens, closes in self._windows_from(start):
            begin = max(opens, start)
            length = closes - begin
            if remaining <= length:
                return begin + remaining
            remaining -= length
        raise AssertionError("unreachable")  # _windows_from raises when it runs out

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Clock time that ran between `start` and `end` (zero if end <= start)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta(0)
        if not self.business:
            return end - start
        total = timedelta(0)
        for opens, closes in self._windows_from(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total


@lru_cache(maxsize=8192)
def _window(cal: WorkCalendar, day: date) -> tuple[datetime, datetime] | None:
    """(cached: planning thousands of requests asks for the same few days over and over)"""
    if day.weekday() not in cal.days or day in cal.holidays:
        return None
    midnight = datetime.combine(day, time(0))
    opens = (midnight + timedelta(minutes=cal.hours[0])).replace(tzinfo=cal.tz)
    closes = (midnight + timedelta(minutes=cal.hours[1])).replace(tzinfo=cal.tz)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def business_calendar(*, tz: str, hours: tuple[int, int], days: Iterable[int],
                      holidays: Iterable[date] = ()) -> WorkCalendar:
    return WorkCalendar(tz=ZoneInfo(tz), hours=hours, days=frozenset(days), holidays=frozenset(holidays),
                        business=True)


CALENDAR_CLOCK = WorkCalendar()
