"""Issue 13, reproductions 1-5: nothing a responder or leadership can request lets them single out one
person's feedback — not by asking again later, not by subtracting the organisation digest's figures,
not by reacting many times, not from a lone comment, not from two windows with one week key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from bot.analytics.privacy import differs_enough
from bot.i18n import translator
from bot.render import digest_blocks, digest_text
from bot.services import digest_jobs, digests
from bot.services.digest_periods import (
    Schedule,
    feedback_schedule,
    period_for_week,
    schedule_for,
)
from bot.services.satisfaction import Satisfaction
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, FINANCE_CH, Harness
from tests.digest_helpers import Seeder, settings_for
from tests.test_ratings import react
from tests.test_request_loop import ask

TZ = "Europe/Berlin"
EN = translator("en")
H = timedelta(hours=1)
# Wednesday 14 Jan 2026, 10:00 in Berlin: the feedback week 2026-W03 is running, W02 is the last closed one
WEDNESDAY = datetime(2026, 1, 14, 9, 0, tzinfo=UTC)
W02 = period_for_week("2026-W02", feedback_schedule(TZ))
W03 = period_for_week("2026-W03", feedback_schedule(TZ))


def satisfaction_text(body: Any) -> str:
    """The satisfaction and comment sections of a rendered digest (everything feedback in it)."""
    texts = [b["text"]["text"] for b in body.get("blocks", []) if b.get("type") == "section" and "text" in b]
    return "\n".join(t for t in texts if t.startswith(("*Satisfaction*", "*What people said*")))


def on_demand(h: Harness, user: str = ALICE) -> str:
    told = len(h.sim.response_posts)
    assert h.driver.slash("/askdesk", "digest finance", user_id=user).status == 200
    post = h.wait(lambda: len(h.sim.response_posts) > told and h.sim.response_posts[-1])
    text = satisfaction_text(post.body)
    assert text, post.body
    return text


def answer(seed: Seeder, *, at: datetime, score: int, department: str = "Sales", comment: str | None = None,
           team: str = "finance") -> None:
    req = seed.request(created=at - 3 * H, team=team, department=department, first_response=H, resolved=2 * H)
    seed.survey(req, answered=at, score=score, comment=comment, closes=at + H)


def test_1_asking_again_during_the_week_shows_nothing_new(h: Harness) -> None:
    """Five answers, `/askdesk digest`, a sixth with a comment, `/askdesk digest` again: the two answers
    are identical (the running week is never shown) and the week is shown once, whole, after it ends."""
    seed = Seeder(h.deps.engine)
    h.clock.set(WEDNESDAY)
    for i, score in enumerate((5, 4, 4, 5, 4)):
        answer(seed, at=W03.start + (10 + i) * H, score=score)
    first = on_demand(h)
    answer(seed, at=WEDNESDAY - H, score=1, comment="slow and unhelpful, never again")
    req = ask(h, "Expense limit")  # an emoji rating given "privately" on the DM status message
    react(h, DAVE, "rage", req.dm_channel, req.dm_ts)
    h.clock.advance(minutes=30)
    second = on_demand(h)
    assert first == second and "2026-W02" in first  # the last closed week, the same both times
    assert "slow and unhelpful" not in second
    h.clock.set(W03.end + H)  # the week is over: it is shown now, once, with all six answers
    closed = on_demand(h)
    assert "2026-W03" in closed and "Survey answers: *6*" in closed and "3.8" in closed
    assert "slow and unhelpful" not in closed  # one comment is one person's words: never shown
    h.clock.set(W03.end + 6 * 24 * H)  # later in that week, after more answers: still the same figures
    answer(seed, at=W03.end + 5 * 24 * H, score=2)
    assert on_demand(h) == closed


def test_2_the_organisation_digest_cannot_be_subtracted(engine: Engine, db_url: str) -> None:
    """Threshold 5: Finance has Sales 5 (4 satisfied) and Legal 1 (not satisfied); IT has 1 answer.
    Showing Sales 80 % next to Finance 67 % would give Legal's one answer away, and an overall 57 %
    next to Finance's would give IT's away."""
    seed = Seeder(engine)
    at = W03.start + 30 * H
    for score in (5, 5, 4, 4, 3):
        answer(seed, at=at, score=score, department="Sales")
    answer(seed, at=at, score=2, department="Legal")
    answer(seed, at=at, score=1, department="Sales", team="it")
    settings = settings_for(db_url, leadership_channel="C0LEADS")
    with session_scope(engine) as session:
        org = digests.compute_org(session, settings, W03)
    finance = next(d for d in org.teams if d.team == "finance")
    it = next(d for d in org.teams if d.team == "it")
    assert finance.satisfaction.csat.value == pytest.approx(400 / 6) and it.satisfaction.csat.suppressed
    assert org.matrix_csat[("Sales", "finance")].suppressed and org.matrix_csat[("Legal", "finance")].suppressed
    assert org.csat.value == pytest.approx(400 / 6) and org.csat.count == 6  # IT's lone answer left out
    text = digest_text.org_text(org) + json.dumps(digest_blocks.org_digest(org, t=EN).as_dicts(), ensure_ascii=False)
    assert "80%" not in text and "57%" not in text and "67%" in text
    shown = [v for v in (finance.satisfaction.csat, it.satisfaction.csat, org.csat, *org.matrix_csat.values())
             if not v.suppressed]
    assert all(differs_enough(a.basis, b.basis, 5) for a in shown for b in shown)


def test_3_a_rating_counts_once_per_request(h: Harness) -> None:
    h.clock.set(WEDNESDAY)
    changed, many = ask(h, "Card limit"), ask(h, "Travel policy")
    react(h, DAVE, "+1", changed.triage_channel, changed.triage_ts)
    h.clock.advance(minutes=1)
    react(h, DAVE, "-1", changed.triage_channel, changed.triage_ts)  # both reactions stay on the message
    for emoji in ("star-struck", "heart_eyes", "+1", "smiley", "neutral_face"):  # five emoji, one person
        h.clock.advance(minutes=1)
        react(h, DAVE, emoji, many.dm_channel, many.dm_ts)
    h.wait(lambda: _week(h, W03).ratings.count == 2)
    rated = _week(h, W03).ratings
    assert rated.suppressed and rated.count == 2  # two requests rated: far below the threshold
    h.clock.set(W03.end + H)  # after the week: taking a reaction away changes that week no more
    react(h, DAVE, "-1", changed.triage_channel, changed.triage_ts, added=False)
    h.wait(lambda: _rating_of(h, changed.id) == 5)
    assert _week(h, W03).ratings == rated and _week(h, W03).ratings.basis == rated.basis


def _week(h: Harness, week: Any) -> Satisfaction:
    from bot.services import satisfaction

    with session_scope(h.deps.engine) as session:
        return satisfaction.compute(session, h.deps.settings, week, ["finance"]).teams["finance"]


def _rating_of(h: Harness, request_id: int) -> int | None:
    from bot.services import ratings

    return ratings.rating_of(h.deps, request_id)


def test_4_a_single_comment_is_never_published(engine: Engine, db_url: str) -> None:
    seed = Seeder(engine)
    for i, score in enumerate((5, 5, 4, 4, 5)):
        answer(seed, at=W03.start + (20 + i) * H, score=score, department="Legal" if i == 0 else "Sales",
               comment="Legal's one and only comment" if i == 0 else None)
    with session_scope(engine) as session:
        d = digests.compute(session, settings_for(db_url), settings_for(db_url).teams, W03)[0]
    assert not d.satisfaction.csat.suppressed and d.satisfaction.comments.suppressed  # 5 answers, 1 comment
    shown = json.dumps(digest_blocks.team_digest(d, t=EN).as_dicts(), ensure_ascii=False) + digest_text.team_text(d)
    assert "only comment" not in shown and "What people said" not in shown
    assert digest_text.team_json(d)["satisfaction"]["comments"] is None


def test_5_one_week_key_one_window_whichever_way_asked(engine: Engine, db_url: str) -> None:
    """The scheduled Monday 09:00 digest and `askdesk digest --week 2026-W02` are one window, and an
    answer given on Monday at 05:00 is in neither week's satisfaction twice."""
    settings = settings_for(db_url, leadership_channel="C0LEADS")
    team = settings.teams[0]
    scheduled = schedule_for(settings, team).latest_period(datetime(2026, 1, 12, 8, 0, 30, tzinfo=UTC))
    assert scheduled.week == "2026-W02"
    from bot.cli.digest import _period

    asked = _period(settings, digest_jobs.target_for(settings, team.slug), "2026-W02", datetime.now(UTC))
    assert (asked.start, asked.end, asked.week) == (scheduled.start, scheduled.end, scheduled.week)
    seed = Seeder(engine)
    for score in (5, 5, 4, 4, 5):
        answer(seed, at=W02.start + 30 * H, score=score)
    answer(seed, at=datetime(2026, 1, 12, 4, 0, tzinfo=UTC), score=1)  # Monday 05:00 in Berlin
    with session_scope(engine) as session:
        one = digests.compute(session, settings, [team], scheduled)[0].satisfaction
        other = digests.compute(session, settings, [team], asked)[0].satisfaction
    assert one == other and one.week == W02 and one.responses == 5 and one.csat.basis == other.csat.basis


@settings(max_examples=200, deadline=None)
@given(weekday=st.integers(0, 6), hour=st.integers(0, 23), minute=st.sampled_from([0, 30, 59]),
       tz=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Shanghai", "Pacific/Auckland", "UTC"]),
       day=st.integers(0, 3 * 365), seconds=st.integers(0, 86_399))
def test_5_every_schedules_key_names_exactly_its_own_window(weekday: int, hour: int, minute: int, tz: str,
                                                            day: int, seconds: int) -> None:
    schedule = Schedule(weekday=weekday, at=datetime(2026, 1, 1, hour, minute).time(), tz=tz)
    now = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=day, seconds=seconds)
    period = schedule.latest_period(now)
    assert period_for_week(period.week, schedule) == period
    assert period_for_week(period.previous.week, schedule) == period.previous


def test_the_scheduled_digest_shows_the_week_that_just_closed(h: Harness) -> None:
    seed = Seeder(h.deps.engine)
    for score in (5, 5, 4, 4, 5, 3):
        answer(seed, at=W02.start + 30 * H, score=score)
    h.clock.set(datetime(2026, 1, 12, 8, 0, 30, tzinfo=UTC))  # Monday 09:00:30 in Berlin
    digest_jobs.schedule_digests(h.deps)
    h.tick()
    post = h.wait(lambda: next((m for m in h.sim.messages(FINANCE_CH)
                                if (m.get("metadata") or {}).get("event_type") == "askdesk_digest"), None),
                  timeout=20)
    text = satisfaction_text(post)
    assert "2026-W02" in text and "Survey answers: *6*" in text
    assert on_demand(h) == text  # the on-demand view shows the same release of that week


def test_the_quarterly_scorecard_is_made_of_whole_feedback_weeks(engine: Engine, db_url: str) -> None:
    """The scorecard's pulse CSAT of a quarter is the union of the feedback weeks that end in it, and a
    hidden week that alone would be the difference between the quarter and the shown weeks is left out."""
    from bot.services import satisfaction, scorecard
    from bot.services.needs_periods import quarter

    settings = settings_for(db_url)
    q4 = quarter(2026, 4, TZ)
    w51 = period_for_week("2026-W51", feedback_schedule(TZ))  # Mon 14 Dec – Mon 21 Dec
    seed = Seeder(engine)
    for score in (5, 5, 4, 4, 5):
        answer(seed, at=w51.start + 30 * H, score=score)
    answer(seed, at=w51.end + 30 * H, score=1)  # alone in the quarter's last week (Mon 21 Dec – Mon 28 Dec)
    answer(seed, at=w51.end + 8 * 24 * H, score=1)  # closes in the week ending on 4 Jan: the next quarter's
    weeks = satisfaction.weeks_ending_in(settings, q4.start, q4.end)
    assert weeks[0].start < q4.start < weeks[0].end and weeks[-1] == w51.shifted(1) and weeks[-1].end <= q4.end
    with session_scope(engine) as session:
        last = satisfaction.compute(session, settings, weeks[-1], ["finance"]).teams["finance"].csat
        shown = satisfaction.compute(session, settings, w51, ["finance"]).teams["finance"].csat
        span = satisfaction.over_weeks(session, settings, "finance", weeks)
        before_end = scorecard.compute(session, settings, q4, q4.end - H)
        after_end = scorecard.compute(session, settings, q4, q4.end)
    assert last.suppressed and not shown.suppressed
    assert span.csat.basis == shown.basis and span.csat.value == shown.value  # the lone answer left out
    assert (span.closed, span.answered) == (6, 6)
    finance = next(t for t in before_end.teams if t.team == "finance")
    assert finance.csat is None  # the quarter has not ended: no CSAT yet
    finance = next(t for t in after_end.teams if t.team == "finance")
    assert finance.csat is not None and finance.csat.value == shown.value
