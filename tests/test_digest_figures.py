"""Digest figures against hand-computed expectations on seeded rows (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from bot.analytics import SUPPRESSED_TEXT
from bot.services import digests
from bot.services.digest_periods import (
    Schedule,
    WeekError,
    feedback_schedule,
    parse_week,
    period_for_week,
    week_key,
)
from storage.session import session_scope
from tests.digest_helpers import Seeder, settings_for

W47 = period_for_week("2026-W47", feedback_schedule("Europe/Berlin"))  # Mon 16 Nov 00:00 .. Mon 23 Nov 00:00 CET
H, M = timedelta(hours=1), timedelta(minutes=1)


def compute(engine: Engine, db_url: str, period=W47, team: str = "finance", **workspace):  # type: ignore[no-untyped-def]
    settings = settings_for(db_url, **workspace)
    with session_scope(engine) as session:
        found = digests.compute(session, settings, settings.teams, period, workspace_url="https://acme.slack.com/")
    return next(d for d in found if d.team == team)


def test_periods_are_local_weeks_and_keys_name_the_week_they_cover() -> None:
    assert W47.start == datetime(2026, 11, 15, 23, tzinfo=UTC)
    assert W47.end == datetime(2026, 11, 22, 23, tzinfo=UTC)
    assert W47.previous.week == "2026-W46" and W47.previous.end == W47.start
    # the default Monday 09:00 digest posted on 23 Nov covers mostly W47 and shares its key
    due = Schedule(weekday=0, at=datetime(2026, 1, 1, 9).time(), tz="Europe/Berlin").latest_due(
        datetime(2026, 11, 23, 8, 0, 1, tzinfo=UTC))
    assert due == datetime(2026, 11, 23, 8, tzinfo=UTC)
    assert week_key(due, W47.zone) == "2026-W47"
    for bad in ("2026-47", "2026-W54", "W47", ""):
        with pytest.raises(WeekError):
            parse_week(bad)


@pytest.mark.parametrize(("tz", "week", "start", "end"), [
    # Europe/Berlin leaves summer time on Sunday 25 Oct 2026: that week lasts 169 hours
    ("Europe/Berlin", "2026-W43", datetime(2026, 10, 18, 22, tzinfo=UTC),
     datetime(2026, 10, 25, 23, tzinfo=UTC)),
    # America/New_York leaves daylight time on Sunday 1 Nov 2026
    ("America/New_York", "2026-W44", datetime(2026, 10, 26, 4, tzinfo=UTC),
     datetime(2026, 11, 2, 5, tzinfo=UTC)),
])
def test_dst_weeks_have_local_midnight_bounds(engine: Engine, db_url: str, tz: str, week: str,
                                              start: datetime, end: datetime) -> None:
    period = period_for_week(week, feedback_schedule(tz))
    assert (period.start, period.end) == (start, end)
    assert period.end - period.start == timedelta(hours=169)
    seed = Seeder(engine)
    for created in (start - timedelta(seconds=1), start, end - timedelta(seconds=1), end):
        seed.request(created=created)
    d = compute(engine, db_url, period, timezone=tz)
    assert d.new == 2  # the start is inside, the end is not
    bounds = period.chart_bounds()
    local = [b.astimezone(period.zone) for b in bounds]
    assert all((t.weekday(), t.hour, t.minute) == (0, 0, 0) for t in local)  # every bar is a local week
    assert d.weeks[-1].volume == 2 and d.weeks[-2].volume == 1


def test_scheduled_period_across_dst_is_169_hours() -> None:
    schedule = Schedule(weekday=0, at=datetime(2026, 1, 1, 9).time(), tz="Europe/Berlin")
    period = schedule.latest_period(datetime(2026, 10, 26, 10, tzinfo=UTC))
    assert period.end == datetime(2026, 10, 26, 8, tzinfo=UTC)  # 09:00 CET
    assert period.start == datetime(2026, 10, 19, 7, tzinfo=UTC)  # 09:00 CEST
    assert period.week == "2026-W43"


def seed_week(engine: Engine) -> dict[str, object]:
    """Finance's W47, hand-computed in the assertions of the next test."""
    s, t0, end = Seeder(engine), W47.start, W47.end
    prev = W47.start - timedelta(days=7)
    r = {}
    # resolved in the period: first response 10/20/40/90 min, resolution 2/10/30/60 h
    r[1] = s.request(created=t0 + 1 * H, department="Sales", category="Expenses", first_response=10 * M,
                     resolved=2 * H)
    r[2] = s.request(created=t0 + 2 * H, department="Sales", category="Expenses", first_response=20 * M,
                     resolved=10 * H)
    r[3] = s.request(created=t0 + 3 * H, department="IT", category="Payroll", first_response=40 * M,
                     resolved=30 * H)
    r[4] = s.request(created=t0 + 4 * H, department="Marketing", first_response=90 * M, resolved=60 * H)
    s.event(r[3], "resolved", t0 + 10 * H)  # resolved, reopened, resolved again: two resolutions
    s.event(r[3], "reopened", t0 + 11 * H)
    r[5] = s.request(created=end - 2 * H, department="Sales", category="Expenses")  # unclaimed, past SLA
    r[12] = s.request(created=end - 10 * M, department="Sales", category="Expenses")  # unclaimed, within SLA
    # the previous period
    r[6] = s.request(created=prev + 5 * H, department="IT", first_response=5 * M)  # still open (claimed)
    r[7] = s.request(created=prev + 6 * H, department="IT", first_response=5 * M, resolved=1 * H)
    r[10] = s.request(created=prev + 7 * H, department="Sales", first_response=1 * H, resolved=15 * 24 * H)
    s.event(r[10], "transferred", t0 + 20 * H, detail={"from": "it", "to": "finance"})  # resolved after end
    # not finance's, or outside the period
    s.request(created=t0 + 5 * H, team="it", department="Sales")
    r[11] = s.request(created=t0 + 6 * H, team="hr", origin_team="finance", department="Sales")
    s.event(r[11], "transferred", t0 + 7 * H, team="hr", detail={"from": "finance", "to": "hr"})
    s.request(created=end + 1 * H, department="Sales")  # after the end: not new, not open at the end
    return r


def test_volume_speed_customers_and_attention(engine: Engine, db_url: str) -> None:
    r = seed_week(engine)
    d = compute(engine, db_url)
    assert (d.new, d.new_prev) == (6, 3)
    assert (d.resolved, d.resolved_prev) == (5, 1)  # r3 resolved twice
    assert (d.transferred_in, d.transferred_out) == (1, 1)
    assert d.open_end == 4  # r5, r12 and r6 open; r10 was resolved only after the end
    assert d.oldest_open is not None and d.oldest_open.id == r[6].id
    ts = r[6].triage_ts.replace(".", "")
    assert d.oldest_open.link == f"https://acme.slack.com/archives/C0FINANCE/p{ts}"
    # first response of r1..r4: 600, 1200, 2400, 5400 s; even count -> mean of the middle two
    fr = d.first_response
    assert (fr.count, fr.median, fr.p90) == (4, 1800.0, pytest.approx(4500.0))  # 2400 + 0.7 * 3000
    assert fr.within_sla == 50.0 and fr.target == 1800  # 600 and 1200 within 30 min
    assert fr.median_prev == 300.0
    res = d.resolution
    assert (res.median, res.p90) == (72000.0, pytest.approx(183600.0))  # (10h + 30h) / 2; 30h + 0.7 * 30h
    assert res.within_sla == 75.0  # 60 h > 2 days
    # internal customers: Sales 4 (was 1), IT 1 (was 2), Marketing 1 (new); equal counts share a rank
    ranked = [(i.key, i.count, i.previous, i.rank, i.previous_rank) for i in d.internal_customers]
    assert ranked == [("Sales", 4, 1, 1, 2), ("IT", 1, 2, 2, 1), ("Marketing", 1, 0, 2, None)]
    assert d.top_categories == [("Expenses", 4), ("Payroll", 1), ("Uncategorised", 1)]
    assert ("expense report", 6) in d.topics
    assert (d.unclaimed_count, [x.id for x in d.unclaimed]) == (1, [r[5].id])
    assert d.unclaimed[0].due_at == W47.end - 90 * M  # created 2 h before the end, 30 min to answer
    assert (d.reopened_count, [x.id for x in d.reopened]) == (1, [r[3].id])
    assert d.weeks[-1].volume == 6 and d.weeks[-2].volume == 3 and len(d.weeks) == 8
    assert not d.quiet


def _answered(engine: Engine, n: int, scores: list[int], dims: list[tuple]) -> list:  # type: ignore[type-arg]
    s = Seeder(engine)
    reqs = []
    for i in range(n):
        req = s.request(created=W47.start + i * H, department="Sales" if i % 2 else "IT",
                        first_response=5 * M, resolved=1 * H)
        s.survey(req, answered=W47.start + (i + 2) * H, score=scores[i], dims=dims[i],
                 comment=["Thanks <@U0ALICE>, quick!", "clear answer", None, "mail me bob@acme.com", None][i],
                 anonymous=i != 1)
        reqs.append(req)
    return reqs


def test_satisfaction_suppressed_below_threshold_and_shown_at_it(engine: Engine, db_url: str) -> None:
    scores = [5, 4, 4, 2, 3]
    dims = [(5, 5, 4, 4), (4, 5, 4, None), (4, 5, 3, 4), (2, 5, 2, 2), (None, 5, 3, 3)]
    reqs = _answered(engine, 4, scores, dims)  # threshold - 1 answers
    s = Seeder(engine)
    for i in range(3):  # sent in the period, never answered: response rate 5 / 8 later
        s.survey(reqs[i], answered=None, sent=W47.start + 30 * H)
    for i, req in enumerate(reqs):
        s.rating(req, at=W47.start + 40 * H, score=[5, 5, 1, 4][i])
    s.rating(reqs[0], at=W47.start + 40 * H, score=1, requester=False)  # a peer's reaction: not a rating
    sat = compute(engine, db_url).satisfaction
    assert sat.responses == 4 and sat.suppressed and sat.threshold == 5
    assert sat.csat.value is None and sat.average.value is None and sat.comments.value is None
    assert all(v.suppressed for v in sat.dimensions.values())
    assert sat.ratings.suppressed and sat.ratings.count == 4
    assert sat.csat.display() == SUPPRESSED_TEXT

    last = s.request(created=W47.start + 50 * H, department="IT", first_response=5 * M, resolved=1 * H)
    s.survey(last, answered=W47.start + 52 * H, score=scores[4], dims=dims[4], comment="solved <@U0BOB>")
    s.rating(last, at=W47.start + 53 * H, score=1)
    sat = compute(engine, db_url).satisfaction
    assert sat.responses == 5 and not sat.suppressed
    assert sat.average.value == pytest.approx(3.6) and sat.csat.value == pytest.approx(60.0)
    assert sat.response_rate == pytest.approx(62.5)  # 5 answered of 8 sent in the period
    assert sat.dimensions["responsiveness"].suppressed  # only 4 answered that question
    assert sat.dimensions["clarity"].value == 5.0 and sat.dimensions["support"].suppressed
    assert sat.dimensions["transparency"].value == pytest.approx(3.2)
    assert sat.ratings.value == {"5": 2, "4": 1, "1": 2}
    assert sat.comments.suppressed and sat.comments.count == 3  # three shareable comments: not enough
    for i in range(2):  # two more answers with comments: five comments, now they are shown
        more = s.request(created=W47.start + (60 + i) * H, department="IT", first_response=5 * M, resolved=1 * H)
        s.survey(more, answered=W47.start + (62 + i) * H, score=5, comment=f"great <@U0BOB> {i}")
    sat = compute(engine, db_url).satisfaction
    comments = sat.comments.value or []
    assert sorted(comments) == sorted(["Thanks [someone], quick!", "mail me [someone]", "solved [someone]",
                                       "great [someone] 0", "great [someone] 1"])
    assert "clear answer" not in comments  # given with a name, so never shown


def test_org_matrix_gates_each_cell_and_hides_what_the_totals_would_give_away(engine: Engine,
                                                                              db_url: str) -> None:
    s = Seeder(engine)

    def answers(n: int, department: str, team: str = "finance", score: int = 5) -> None:
        for i in range(n):
            req = s.request(created=W47.start + i * H, team=team, department=department, first_response=5 * M,
                            resolved=1 * H)
            s.survey(req, answered=W47.start + 30 * H, score=score if i else 2)

    def org():  # type: ignore[no-untyped-def]
        settings = settings_for(db_url, leadership_channel="C0LEADS")
        with session_scope(engine) as session:
            return digests.compute_org(session, settings, W47)

    answers(5, "Sales")
    answers(4, "IT")
    s.request(created=W47.start + 9 * H, team="it", department="Sales")
    o = org()
    assert o.matrix == {("Sales", "finance"): 5, ("IT", "finance"): 4, ("Sales", "it"): 1}
    assert o.departments == ["Sales", "IT"]
    assert o.matrix_csat[("IT", "finance")].suppressed  # 4 answers: threshold - 1
    # Finance's own CSAT (9 answers) is shown, so showing Sales would give IT's 4 away: hidden as well
    assert o.matrix_csat[("Sales", "finance")].suppressed and o.matrix_csat[("Sales", "finance")].count == 5
    finance = next(d for d in o.teams if d.team == "finance")
    assert finance.satisfaction.csat.value == pytest.approx(700 / 9)
    assert o.csat.value == pytest.approx(700 / 9) and o.feedback_week == W47
    answers(1, "IT")  # five in IT too: every cell has enough, nothing needs hiding
    o = org()
    assert o.matrix_csat[("Sales", "finance")].value == pytest.approx(80.0)
    assert o.matrix_csat[("IT", "finance")].value == pytest.approx(60.0)


def test_chinese_request_text_gives_topics(engine: Engine, db_url: str) -> None:
    s = Seeder(engine)
    for text in ("报销单被驳回了，请帮忙看看", "我的报销单被驳回了", "差旅报销单被驳回", "笔记本电脑屏幕坏了",
                 "笔记本电脑屏幕闪烁", "VPN连不上"):
        s.request(created=W47.start + H, text=text)
    topics = dict(compute(engine, db_url).topics)
    assert topics["驳回"] == 3 and topics["报销"] == 3 and topics["屏幕"] == 2 and topics["笔记本电脑"] == 2


def test_an_empty_week_is_quiet(engine: Engine, db_url: str) -> None:
    Seeder(engine).request(created=W47.start - 3 * 24 * H)  # open since the week before: still quiet
    d = compute(engine, db_url)
    assert d.quiet and d.new == 0 and d.open_end == 1
    assert d.first_response.median is None and d.satisfaction.csat.suppressed
