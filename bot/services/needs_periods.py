"""Calendar periods of needs surveys and scorecards: quarters ("2026-Q4") and months ("2026-11"),
from local midnight on their first day to local midnight on the next period's first day, in the
workspace time zone. Pure functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

QUARTER_RE = re.compile(r"^(\d{4})-Q([1-4])$")
MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class PeriodError(ValueError):
    """A period name that is not "2026-Q4" / "2026-11": the message says what is expected."""


@dataclass(frozen=True)
class CalendarPeriod:
    key: str
    start: datetime  # aware UTC
    end: datetime  # aware UTC, exclusive

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def _bounds(first: date, after: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    return (datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC),
            datetime.combine(after, time(0), tzinfo=zone).astimezone(UTC))


def quarter(year: int, number: int, tz: str) -> CalendarPeriod:
    first = date(year, 3 * number - 2, 1)
    after = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return CalendarPeriod(f"{year}-Q{number}", *_bounds(first, after, tz))


def month(year: int, number: int, tz: str) -> CalendarPeriod:
    after = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return CalendarPeriod(f"{year}-{number:02d}", *_bounds(date(year, number, 1), after, tz))


def parse_quarter(text: str, tz: str) -> CalendarPeriod:
    match = QUARTER_RE.match(text.strip().upper())
    if not match:
        raise PeriodError(f"{text!r} is not a quarter; use the form 2026-Q4")
    return quarter(int(match.group(1)), int(match.group(2)), tz)


def quarter_of(moment: datetime, tz: str) -> CalendarPeriod:
    local = moment.astimezone(ZoneInfo(tz))
    return quarter(local.year, (local.month - 1) // 3 + 1, tz)


def month_of(moment: datetime, tz: str) -> CalendarPeriod:
    local = moment.astimezone(ZoneInfo(tz))
    return month(local.year, local.month, tz)


def period_of(cadence: str, moment: datetime, tz: str) -> CalendarPeriod:
    """The period of a cadence ("monthly"; anything else counts in quarters) that contains `moment`."""
    return month_of(moment, tz) if cadence == "monthly" else quarter_of(moment, tz)


def previous(period: CalendarPeriod, tz: str) -> CalendarPeriod:
    """The period just before `period` (same kind)."""
    moment = period.start - timedelta(seconds=1)
    return month_of(moment, tz) if MONTH_RE.match(period.key) else quarter_of(moment, tz)
