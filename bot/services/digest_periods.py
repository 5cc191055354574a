"""Digest periods and week keys: wall-clock arithmetic in the workspace time zone (DST-correct).

A period is the 7 *local* days ending at a digest time, so across a daylight-saving change it lasts
167 or 169 hours. Its key is the ISO week that contains the middle of the period (local wall time):
the default Monday 09:00 digest of 30 Nov 2026 covers Mon 23 Nov 09:00 - Mon 30 Nov 09:00, whose
middle (Thu 26 Nov) lies in 2026-W48, so its key is "2026-W48" — the week it is *about*. One key, one
window: `--week 2026-W48` means that same Mon 23 Nov 09:00 - Mon 30 Nov 09:00 (`period_for_week` gives
a schedule's own window for a key), so a digest posted from the command line and the scheduled one are
the same digest, posted once. Consecutive digests of one schedule are exactly 7 local days apart, so their keys are
consecutive weeks. Satisfaction is always about a closed *feedback week* (Monday 00:00 to Monday 00:00
local), whatever the digest's own schedule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.config import WEEKDAYS, Settings, Team

WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
WEEKS_IN_CHART = 8


class WeekError(ValueError):
    """A --week value that is not an ISO week like 2026-W47."""


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, with the zone it was computed in and its week key."""

    start: datetime
    end: datetime
    tz: str
    week: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    def local_end(self) -> datetime:
        return self.end.astimezone(self.zone)

    def shifted(self, weeks: int) -> Period:
        """The period `weeks` local weeks earlier (negative) or later, same wall-clock times."""
        start, end = (_wall_shift(t, self.zone, 7 * weeks) for t in (self.start, self.end))
        return Period(start=start, end=end, tz=self.tz, week=week_key(end, self.zone))

    @property
    def previous(self) -> Period:
        return self.shifted(-1)

    def chart_bounds(self, weeks: int = WEEKS_IN_CHART) -> list[datetime]:
        """weeks+1 UTC boundaries, oldest first, ending at this period's end (local 7-day steps)."""
        return [_wall_shift(self.end, self.zone, -7 * k) for k in range(weeks, -1, -1)]

    def label(self) -> str:
        zone = self.zone
        a, b = self.start.astimezone(zone), self.end.astimezone(zone)
        return f"{a:%a %d %b %H:%M} – {b:%a %d %b %Y %H:%M} ({self.tz})"


def _wall_shift(moment: datetime, zone: ZoneInfo, days: int) -> datetime:
    """Move `moment` by whole local days keeping its wall-clock time (so a day may be 23 or 25 h)."""
    local = moment.astimezone(zone).replace(tzinfo=None) + timedelta(days=days)
    return local.replace(tzinfo=zone).astimezone(UTC)


def week_key(end: datetime, zone: ZoneInfo) -> str:
    """ISO week containing the middle of the 7 local days ending at `end`."""
    middle = end.astimezone(zone).replace(tzinfo=None) - timedelta(days=3, hours=12)
    year, week, _ = middle.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str) -> tuple[int, int]:
    match = WEEK_RE.match(text.strip())
    if not match:
        raise WeekError(f"--week must look like 2026-W47, got {text!r}")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError as exc:
        raise WeekError(f"{text!r} is not an ISO week ({year} has no week {week})") from exc
    return year, week


def period_for_week(text: str, schedule: Schedule) -> Period:
    """The one period of `schedule` whose key is `text`: the period ending at the digest time whose
    middle lies in that ISO week. So `askdesk digest --week 2026-W47` is the very window the scheduled
    W47 digest covers, whichever way it is asked for (a Monday 00:00 schedule gives the ISO week itself)."""
    year, week = parse_week(text)
    zone = ZoneInfo(schedule.tz)
    # the middle (end - 3.5 days) lies in [Monday 00:00, next Monday 00:00) when the end lies in
    # [Thursday 12:00, next Thursday 12:00): exactly one digest time of the schedule does
    earliest = datetime.combine(date.fromisocalendar(year, week, 4), time(12, 0))
    due = next(moment for moment in (datetime.combine(earliest.date() + timedelta(days=d), schedule.at)
                                     for d in range(8))
               if moment.weekday() == schedule.weekday and moment >= earliest)
    period = period_ending(due.replace(tzinfo=zone).astimezone(UTC), schedule.tz)
    assert period.week == f"{year}-W{week:02d}", (text, period)
    return period


def period_ending(end: datetime, tz: str) -> Period:
    """The 7 local days ending at `end`."""
    zone = ZoneInfo(tz)
    return Period(start=_wall_shift(end, zone, -7), end=end.astimezone(UTC), tz=tz, week=week_key(end, zone))


@dataclass(frozen=True)
class Schedule:
    weekday: int  # 0 = Monday
    at: time
    tz: str

    def latest_due(self, now: datetime) -> datetime:
        """The most recent digest time at or before `now` (UTC)."""
        zone = ZoneInfo(self.tz)
        local_now = now.astimezone(zone)
        day = local_now.date() - timedelta(days=(local_now.weekday() - self.weekday) % 7)
        due = datetime.combine(day, self.at, tzinfo=zone)
        if due.astimezone(UTC) > now:
            due = datetime.combine(day - timedelta(days=7), self.at, tzinfo=zone)
        return due.astimezone(UTC)

    def latest_period(self, now: datetime) -> Period:
        return period_ending(self.latest_due(now), self.tz)


def feedback_schedule(tz: str) -> Schedule:
    """Feedback weeks: Monday 00:00 to Monday 00:00 in the workspace time zone, the same for every
    team and every report (bot/services/satisfaction.py)."""
    return Schedule(weekday=0, at=time(0, 0), tz=tz)


def last_closed_week(moment: datetime, tz: str) -> Period:
    """The latest feedback week that ended at or before `moment`."""
    return feedback_schedule(tz).latest_period(moment)


def schedule_for(settings: Settings, team: Team | None) -> Schedule:
    """The team's digest schedule (its override, else `[digest]`); `None` = the organisation digest."""
    weekday = (team.digest_weekday if team else None) or settings.digest.weekday
    at = (team.digest_time if team else None) or settings.digest.time
    return Schedule(weekday=WEEKDAYS.index(weekday), at=at, tz=settings.workspace.timezone)
