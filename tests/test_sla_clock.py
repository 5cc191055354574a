"""The SLA clock and plan as pure functions: business hours across weekends, holidays, DST and time zones."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.services import sla_plan
from bot.services.sla_clock import CALENDAR_CLOCK, SlaSpan, business_calendar, parse_hours, parse_span
from bot.services.sla_plan import ESCALATE, FIRST_RESPONSE, REMIND, RESOLUTION, SlaPolicy, Targets

BERLIN, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
OFFICE = business_calendar(tz="Europe/Berlin", hours=(9 * 60, 18 * 60), days=range(5))


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- parsing --------------------------------------------------------------------------------------
def test_spans_keep_their_units() -> None:
    assert parse_span("2d") == SlaSpan(days=2)
    assert parse_span("1w") == SlaSpan(weeks=1)
    assert parse_span("1h30m") == SlaSpan(seconds=5400)
    assert parse_span(" 1d 4h ") == SlaSpan(days=1, seconds=14400)
    assert str(parse_span("1d4h30m")) == "1d4h30m"
    for bad in ("", "30 minutes", "4x", "h", "-1h"):
        with pytest.raises(ValueError):
            parse_span(bad)


def test_hours_ranges() -> None:
    assert parse_hours("09:00-18:00") == (540, 1080)
    assert parse_hours("00:00-24:00") == (0, 1440)
    for bad in ("18:00-09:00", "9-18", "09:00-25:00", "09:60-10:00", "09:00-09:00", "24:00-24:30", ""):
        with pytest.raises(ValueError):
            parse_hours(bad)


# -- calendar clock ---------------------------------------------------------------------------------
def test_calendar_clock_counts_every_second() -> None:
    start = utc(2026, 12, 4, 17, 0)  # a Friday evening
    assert CALENDAR_CLOCK.add(start, timedelta(hours=4)) == utc(2026, 12, 4, 21, 0)
    assert CALENDAR_CLOCK.elapsed(start, utc(2026, 12, 7, 9, 0)) == timedelta(days=2, hours=16)
    assert CALENDAR_CLOCK.working_time(SlaSpan(days=2)) == timedelta(days=2)
    assert CALENDAR_CLOCK.is_working(utc(2026, 12, 5, 3, 0))


# -- business clock ------------------------------------------------------------------------------------
def test_business_time_within_a_day_and_into_the_next_morning() -> None:
    tue_10 = local(BERLIN, 2026, 12, 1, 10, 0)
    assert OFFICE.add(tue_10, timedelta(hours=4)) == local(BERLIN, 2026, 12, 1, 14, 0)
    # 17:00 + 4h: one hour today, three tomorrow from 09:00
    assert OFFICE.add(local(BERLIN, 2026, 12, 1, 17, 0), timedelta(hours=4)) == local(BERLIN, 2026, 12, 2, 12, 0)
    # a request made at night starts counting when the office opens
    assert OFFICE.add(local(BERLIN, 2026, 12, 1, 23, 0), timedelta(minutes=30)) == local(BERLIN, 2026, 12, 2, 9, 30)


def test_business_time_skips_the_weekend() -> None:
    fri_17 = local(BERLIN, 2026, 12, 4, 17, 0)
    assert OFFICE.add(fri_17, timedelta(hours=2)) == local(BERLIN, 2026, 12, 7, 10, 0)
    assert OFFICE.elapsed(fri_17, local(BERLIN, 2026, 12, 7, 10, 0)) == timedelta(hours=2)
    assert OFFICE.elapsed(local(BERLIN, 2026, 12, 5, 10, 0), local(BERLIN, 2026, 12, 6, 20, 0)) == timedelta(0)


def test_business_days_are_working_days_not_24_hours() -> None:
    assert OFFICE.working_time(SlaSpan(days=2)) == timedelta(hours=18)
    assert OFFICE.working_time(SlaSpan(weeks=1)) == timedelta(hours=45)
    # "2d" from Thursday 12:00 ends Monday 12:00 (Thu 6h + Fri 9h + Mon 3h)
    assert OFFICE.add(local(BERLIN, 2026, 12, 3, 12, 0), OFFICE.working_time(parse_span("2d"))) == \
        local(BERLIN, 2026, 12, 7, 12, 0)


def test_holidays_are_not_working_time() -> None:
    cal = replace(OFFICE, holidays=frozenset({date(2026, 12, 24), date(2026, 12, 25)}))
    wed_17 = local(BERLIN, 2026, 12, 23, 17, 0)
    # Thu 24 and Fri 25 are holidays, then the weekend: the remaining 3 h run on Monday 28
    assert cal.add(wed_17, timedelta(hours=4)) == local(BERLIN, 2026, 12, 28, 12, 0)
    assert cal.next_working(local(BERLIN, 2026, 12, 24, 11, 0)) == local(BERLIN, 2026, 12, 28, 9, 0)
    with pytest.raises(ValueError):  # no working time at all
        replace(OFFICE, days=frozenset({0}), holidays=frozenset(
            date(2026, 1, 5) + timedelta(weeks=n) for n in range(600))).add(utc(2026, 1, 1), timedelta(hours=1))


def test_next_working_minute_and_the_closing_instant() -> None:
    assert OFFICE.next_working(local(BERLIN, 2026, 12, 1, 10, 0)) == local(BERLIN, 2026, 12, 1, 10, 0)
    assert OFFICE.is_working(local(BERLIN, 2026, 12, 1, 9, 0))
    # the time ran out exactly at closing: whoever acts on it waits for the next opening
    closing = OFFICE.add(local(BERLIN, 2026, 12, 4, 9, 0), timedelta(hours=9))
    assert closing == local(BERLIN, 2026, 12, 4, 18, 0)
    assert not OFFICE.is_working(closing)
    assert OFFICE.next_working(closing) == local(BERLIN, 2026, 12, 7, 9, 0)


def test_dst_keeps_wall_clock_hours() -> None:
    # Berlin springs forward on Sunday 29 March 2026: Friday is UTC+1, Monday UTC+2
    fri_17 = local(BERLIN, 2026, 3, 27, 17, 0)
    due = OFFICE.add(fri_17, timedelta(hours=2))
    assert due == local(BERLIN, 2026, 3, 30, 10, 0) and due == utc(2026, 3, 30, 8, 0)
    # ...and falls back on Sunday 25 October: 09:00 Monday is UTC+1 again
    assert OFFICE.next_working(local(BERLIN, 2026, 10, 24, 12, 0)) == utc(2026, 10, 26, 8, 0)


def test_dst_night_counts_real_hours_on_a_round_the_clock_business_calendar() -> None:
    always = business_calendar(tz="Europe/Berlin", hours=(0, 1440), days=range(7))
    sat_22 = local(BERLIN, 2026, 3, 28, 22, 0)
    # five real hours: the local clock jumps from 02:00 to 03:00 on the way
    assert always.add(sat_22, timedelta(hours=5)) == local(BERLIN, 2026, 3, 29, 4, 0)
    assert always.elapsed(sat_22, local(BERLIN, 2026, 3, 29, 4, 0)) == timedelta(hours=5)


def test_another_time_zone() -> None:
    shanghai = business_calendar(tz="Asia/Shanghai", hours=(540, 1080), days=range(5))
    # Monday 02:00 UTC is 10:00 in Shanghai: 4 h later is 14:00 there
    assert shanghai.add(utc(2026, 12, 7, 2, 0), timedelta(hours=4)) == local(SHANGHAI, 2026, 12, 7, 14, 0)
    # Friday 11:00 UTC is 19:00 in Shanghai (closed): 30 min run on Monday from 09:00 there
    assert shanghai.add(utc(2026, 12, 4, 11, 0), timedelta(minutes=30)) == utc(2026, 12, 7, 1, 30)
    # the same instant in Berlin is mid-morning on a working day
    assert OFFICE.is_working(utc(2026, 12, 4, 11, 0)) and not shanghai.is_working(utc(2026, 12, 4, 11, 0))


# -- the plan of one request ---------------------------------------------------------------------------------
@dataclass
class State:
    id: int = 7
    status: str = "open"
    urgency: str = "normal"
    created_at: datetime = utc(2026, 12, 1, 9, 0)  # Tuesday 10:00 in Berlin
    sla_cycle: int = 0
    sla_start_at: datetime | None = None
    sla_responded_at: datetime | None = None
    sla_paused_seconds: int = 0
    waiting_since: datetime | None = None


POLICY = SlaPolicy(calendar=OFFICE, default=Targets(parse_span("4h"), parse_span("2d")),
                   by_urgency={"high": Targets(parse_span("30m"), parse_span("1d"))}, remind_at=0.75)


def test_deadlines_and_timers_of_an_open_request() -> None:
    req = State()
    first, resolution = sla_plan.deadlines(req, POLICY)
    assert (first.sla, first.due_at, first.remind_at) == (FIRST_RESPONSE, local(BERLIN, 2026, 12, 1, 14, 0),
                                                          local(BERLIN, 2026, 12, 1, 13, 0))
    assert resolution.sla == RESOLUTION and resolution.due_at == local(BERLIN, 2026, 12, 3, 10, 0)  # 18 working h
    keys = [t.key for t in sla_plan.timers(req, POLICY)]
    assert keys == ["sla:7:0:fr:remind", "sla:7:0:fr:escalate", "sla:7:0:res:remind", "sla:7:0:res:escalate"]
    assert sla_plan.next_due(req, POLICY) == first.due_at


def test_urgency_sets_the_targets() -> None:
    first, resolution = sla_plan.deadlines(State(urgency="high"), POLICY)
    assert first.due_at == local(BERLIN, 2026, 12, 1, 10, 30)
    assert resolution.due_at == local(BERLIN, 2026, 12, 2, 10, 0)
    assert sla_plan.deadlines(State(urgency="low"), POLICY)[0].due_at == local(BERLIN, 2026, 12, 1, 14, 0)


def test_a_response_meets_the_first_sla_and_resolving_meets_both() -> None:
    answered = State(sla_responded_at=utc(2026, 12, 1, 9, 30))
    assert [d.sla for d in sla_plan.deadlines(answered, POLICY)] == [RESOLUTION]
    assert sla_plan.timers(State(status="resolved"), POLICY) == []


def test_waiting_on_the_requester_pauses_and_the_pause_moves_the_deadline() -> None:
    assert sla_plan.deadlines(State(waiting_since=utc(2026, 12, 1, 10, 0)), POLICY) == []
    waited = State(sla_responded_at=utc(2026, 12, 1, 9, 30), sla_paused_seconds=3 * 3600)
    (resolution,) = sla_plan.deadlines(waited, POLICY)
    assert resolution.due_at == local(BERLIN, 2026, 12, 3, 13, 0)
    # the pause is measured on the team's clock: Friday 17:00 to Monday 10:00 is two working hours
    req = State(waiting_since=local(BERLIN, 2026, 12, 4, 17, 0))
    assert sla_plan.paused_for(req, POLICY, local(BERLIN, 2026, 12, 7, 10, 0)) == 7200


def test_a_new_cycle_starts_the_clock_again() -> None:
    moved = State(sla_cycle=2, sla_start_at=utc(2026, 12, 2, 12, 0))  # Wednesday 13:00 in Berlin
    first = sla_plan.deadlines(moved, POLICY)[0]
    assert first.due_at == local(BERLIN, 2026, 12, 2, 17, 0)
    assert sla_plan.timers(moved, POLICY)[0].key == "sla:7:2:fr:remind"


def test_reminders_off_leaves_only_escalations() -> None:
    quiet = replace(POLICY, remind_at=None)
    assert [t.stage for t in sla_plan.timers(State(), quiet)] == [ESCALATE, ESCALATE]
    assert [t.stage for t in sla_plan.timers(State(), POLICY)] == [REMIND, ESCALATE, REMIND, ESCALATE]


def test_the_fingerprint_changes_with_anything_that_moves_a_timer() -> None:
    variants = [POLICY, replace(POLICY, remind_at=0.5), replace(POLICY, calendar=CALENDAR_CLOCK),
                replace(POLICY, calendar=replace(OFFICE, holidays=frozenset({date(2026, 12, 24)}))),
                replace(POLICY, calendar=replace(OFFICE, tz=SHANGHAI)),
                replace(POLICY, by_urgency={"high": Targets(parse_span("20m"), parse_span("1d"))})]
    assert len({p.fingerprint for p in variants}) == len(variants)
    assert POLICY.fingerprint == replace(POLICY).fingerprint
