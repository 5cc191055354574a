"""Pulse surveys end to end: scheduling, working hours, budget, sending exactly once, failures, report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.analytics.privacy import SUPPRESSED_TEXT
from bot.config import Settings
from bot.render.ids import Action
from bot.services import satisfaction
from bot.services import surveys as surveys_service
from bot.services.digest_periods import Period, feedback_schedule, period_for_week
from storage import feedback as feedback_queries
from storage import jobs as job_queries
from storage.models import Reaction, Request, Survey
from storage.session import session_scope
from tests.conftest import ALICE, BOB, CAROL, DAVE, Harness
from tests.digest_helpers import settings_for
from tests.feedback_helpers import (
    ask,
    button,
    deliver,
    job,
    load,
    resolve,
    survey,
    survey_dms,
    surveys_of,
    texts,
    tick,
    with_clock,
)


@pytest.fixture
def h(h: Harness) -> Iterator[Harness]:
    """A Tuesday inside Dave's working hours, and one persistent scheduler clock."""
    yield from with_clock(h)


def test_resolve_schedules_a_survey_sent_once_after_the_delay(h: Harness) -> None:
    req = ask(h, "Where is my payslip?")
    planned = resolve(h, req)
    assert planned.status == "scheduled" and planned.resolution_no == 1 and planned.user_id == DAVE
    resolved_at = load(h, req.id).resolved_at
    assert planned.due_at == resolved_at + timedelta(minutes=30)  # inside Dave's working hours already
    tick(h)
    assert survey_dms(h, DAVE) == [] and survey(h, req.id).status == "scheduled"
    sent = deliver(h, req.id)
    dms = survey_dms(h, DAVE)
    assert len(dms) == 1 and sent.ts == dms[0]["ts"] and sent.channel == h.sim.dm_channel_for(DAVE)
    assert sent.expires_at == sent.sent_at + timedelta(days=3)
    shown = texts(dms[0])
    for expected in (f"#{req.id}", "Where is my payslip?", "Finance", "1 (worst)", "5 (best)",
                     "Tell us more"):
        assert expected in shown, expected
    buttons = [e["action_id"] for b in dms[0]["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [f"survey_score_{n}" for n in range(1, 6)] + ["survey_more"]
    for _ in range(3):
        h.clock.advance(minutes=10)
        tick(h)
    assert len(survey_dms(h, DAVE)) == 1
    assert job(h, f"survey:{sent.id}").status == "done"


def test_duplicate_resolve_schedules_no_second_survey(h: Harness) -> None:
    req = ask(h, "Duplicate resolve")
    resolve(h, req)
    button(h, load(h, req.id), Action.RESOLVE, ALICE)
    h.wait(lambda: [p for p in h.sim.response_posts if "already resolved" in str(p.body)])
    assert len(surveys_of(h, req.id)) == 1
    deliver(h, req.id)
    h.clock.advance(hours=1)
    tick(h)
    assert len(survey_dms(h, DAVE)) == 1


def test_reopen_cancels_the_survey_and_the_next_resolve_schedules_a_new_one(h: Harness) -> None:
    req = ask(h, "Reopen me")
    first = resolve(h, req)
    button(h, load(h, req.id), Action.REOPEN, DAVE, where="dm")
    h.wait(lambda: survey(h, req.id).status == "cancelled")
    assert "reopened" in survey(h, req.id).reason
    assert job(h, f"survey:{first.id}").status == "cancelled"
    h.clock.advance(hours=1)
    tick(h)
    assert survey_dms(h, DAVE) == []
    second = resolve(h, req)
    assert second.id != first.id and second.resolution_no == 2
    sent = deliver(h, req.id)
    assert sent.id == second.id and len(survey_dms(h, DAVE)) == 1
    statuses = {s.resolution_no: s.status for s in surveys_of(h, req.id)}
    assert statuses == {1: "cancelled", 2: "sent"}


def test_reopen_while_the_send_job_is_due_sends_nothing(h: Harness) -> None:
    req = ask(h, "Reopen just before the survey")
    resolve(h, req)
    h.clock.advance(minutes=31)  # the survey is due, but the clock has not ticked yet
    button(h, load(h, req.id), Action.REOPEN, DAVE, where="dm")
    h.wait(lambda: survey(h, req.id).status == "cancelled")
    tick(h)
    assert survey_dms(h, DAVE) == []


def test_working_hours_deferral_across_a_time_zone_boundary_and_a_weekend(h: Harness) -> None:
    # Friday 2026-01-16 17:45 in Los Angeles = Saturday 01:45 UTC; +30 min is after Dave's 18:00.
    h.clock.set(datetime(2026, 1, 17, 1, 45, tzinfo=UTC))
    req = ask(h, "Friday evening question")
    planned = resolve(h, req)
    monday_9_la = datetime(2026, 1, 19, 17, 0, tzinfo=UTC)
    assert planned.due_at == monday_9_la
    assert job(h, f"survey:{planned.id}").due_at == monday_9_la
    for moment in (datetime(2026, 1, 17, 18, 0, tzinfo=UTC), datetime(2026, 1, 19, 16, 59, tzinfo=UTC)):
        h.clock.set(moment)  # Saturday daytime in LA, then Monday 08:59 in LA
        tick(h)
        assert survey_dms(h, DAVE) == []
    h.clock.set(monday_9_la)
    tick(h)
    h.wait(lambda: survey(h, req.id).status == "sent")
    assert len(survey_dms(h, DAVE)) == 1 and survey(h, req.id).sent_at == monday_9_la


def test_overdue_survey_outside_working_hours_waits_for_the_next_morning(h: Harness) -> None:
    req = ask(h, "Planned, then the app was down overnight")
    planned = resolve(h, req)
    h.clock.set(datetime(2026, 1, 14, 6, 0, tzinfo=UTC))  # Tuesday 22:00 in LA: overdue but night
    tick(h)
    assert survey_dms(h, DAVE) == [] and survey(h, req.id).status == "scheduled"
    retry = job(h, f"survey:{planned.id}")
    assert retry.status == "pending" and retry.due_at >= datetime(2026, 1, 14, 17, 0, tzinfo=UTC)
    h.clock.set(retry.due_at)
    tick(h)
    h.wait(lambda: survey(h, req.id).status == "sent")
    assert len(survey_dms(h, DAVE)) == 1


def test_per_person_budget_skips_across_teams_and_records_why(h: Harness) -> None:
    first = ask(h, "Finance question")
    resolve(h, first)
    deliver(h, first.id)
    h.clock.advance(days=1)
    second = ask(h, "Laptop question", command="/ask-it")
    resolve(h, second, actor=CAROL)
    h.clock.advance(minutes=31)
    tick(h)
    skipped = h.wait(lambda: (s := survey(h, second.id)).status == "skipped" and s)
    assert skipped.reason.startswith("survey budget") and skipped.sent_at is None
    assert len(survey_dms(h, DAVE)) == 1
    h.clock.advance(days=7)  # 8 days after the first survey: the budget allows another one
    third = ask(h, "Another laptop question", command="/ask-it")
    resolve(h, third, actor=CAROL)
    deliver(h, third.id)
    assert len(survey_dms(h, DAVE)) == 2


def test_two_surveys_due_together_for_one_person_send_only_one(h: Harness) -> None:
    reqs = [ask(h, f"Parallel question {n}") for n in range(3)]
    for req in reqs:
        resolve(h, req)
    h.clock.advance(minutes=31)
    tick(h)
    h.wait(lambda: all(survey(h, r.id).status in ("sent", "skipped") for r in reqs))
    assert sorted(survey(h, r.id).status for r in reqs) == ["sent", "skipped", "skipped"]
    assert len(survey_dms(h, DAVE)) == 1


def _calls(h: Harness, method: str) -> list:
    return h.sim.calls_to(method)


def test_rate_limited_send_is_retried_after_retry_after_and_delivered_once(h: Harness) -> None:
    req = ask(h, "Rate limited survey")
    resolve(h, req)
    h.sim.rate_limit_next("chat.postMessage", retry_after=1)
    deliver(h, req.id)
    assert [c.status for c in _calls(h, "chat.postMessage")][-2:] == [429, 200]
    assert len(survey_dms(h, DAVE)) == 1


def test_server_error_is_retried_with_backoff_and_reconciled(h: Harness) -> None:
    req = ask(h, "Slack is having a moment")
    planned = resolve(h, req)
    h.sim.http_error_next("chat.postMessage", status=503, count=3)  # once is tried again at once; thrice is not
    h.clock.advance(minutes=31)
    tick(h)
    retry = h.wait(lambda: (j := job(h, f"survey:{planned.id}")).status == "pending" and j)
    assert retry.attempts == 1 and retry.due_at > h.clock() and retry.last_error
    assert survey(h, req.id).status == "sending" and survey_dms(h, DAVE) == []
    h.clock.set(retry.due_at)
    tick(h)
    h.wait(lambda: survey(h, req.id).status == "sent")
    assert len(survey_dms(h, DAVE)) == 1 and _calls(h, "conversations.history")  # looked before re-posting


def test_permanent_failures_are_recorded_and_never_retried(h: Harness) -> None:
    closed_dms = ask(h, "DMs closed")
    deactivated = ask(h, "Deactivated", user=BOB, command="/ask-it")  # Bob is in New York: 13:00 now
    resolve(h, closed_dms)
    resolve(h, deactivated, actor=CAROL)
    h.sim.fail_next("chat.postMessage", "messages_tab_disabled", channel=DAVE)
    h.sim.users[BOB].deleted = True
    h.clock.advance(minutes=31)
    tick(h)
    first = h.wait(lambda: (s := survey(h, closed_dms.id)).status == "failed" and s)
    second = h.wait(lambda: (s := survey(h, deactivated.id)).status == "failed" and s)
    assert first.reason == "messages_tab_disabled" and second.reason == "user_disabled"
    assert job(h, f"survey:{first.id}").status == "failed"
    posts = len(_calls(h, "chat.postMessage"))
    for _ in range(3):
        h.clock.advance(hours=6)
        tick(h)
    assert len(_calls(h, "chat.postMessage")) == posts


def test_crash_between_send_and_mark_is_reconciled_into_one_dm(h: Harness, monkeypatch) -> None:
    req = ask(h, "Crash after posting")
    planned = resolve(h, req)
    real_mark = feedback_queries.mark_sent
    crashes: list[int] = []

    def crash_once(*args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise RuntimeError("database went away right after the post")
        return real_mark(*args, **kwargs)

    monkeypatch.setattr(feedback_queries, "mark_sent", crash_once)
    h.clock.advance(minutes=31)
    tick(h)
    h.wait(lambda: job(h, f"survey:{planned.id}").status == "pending")
    assert len(survey_dms(h, DAVE)) == 1 and survey(h, req.id).status == "sending"
    h.clock.advance(hours=1)
    tick(h)
    sent = h.wait(lambda: (s := survey(h, req.id)).status == "sent" and s)
    dms = survey_dms(h, DAVE)
    assert len(dms) == 1 and sent.ts == dms[0]["ts"]


def test_worker_killed_mid_job_is_reclaimed_after_its_lease_and_reconciled(h: Harness, monkeypatch) -> None:
    req = ask(h, "Killed while sending")
    planned = resolve(h, req)
    h.clock.advance(minutes=31)
    with session_scope(h.deps.engine) as s:  # a worker that will die holds the lease
        [leased] = job_queries.claim_due(s, owner="dead-worker", lease=timedelta(minutes=1), limit=1,
                                         now=h.clock(), job_id=job(h, f"survey:{planned.id}").id)

    class Killed(BaseException):
        pass

    def die(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(feedback_queries, "mark_sent", die)
    with pytest.raises(Killed):
        surveys_service.send(h.deps, {"survey_id": planned.id, "tz": "America/Los_Angeles"}, leased)
    monkeypatch.undo()
    assert len(survey_dms(h, DAVE)) == 1
    tick(h)  # the lease is still valid: nobody touches the job
    assert job(h, f"survey:{planned.id}").lease_owner == "dead-worker"
    h.clock.advance(minutes=2)
    tick(h)
    sent = h.wait(lambda: (s := survey(h, req.id)).status == "sent" and s)
    assert job(h, f"survey:{planned.id}").attempts == 2
    dms = survey_dms(h, DAVE)
    assert len(dms) == 1 and sent.ts == dms[0]["ts"]


def _seed_answers(engine, team: str, answers: list[tuple[int, str | None, bool]], at: datetime) -> None:
    with session_scope(engine) as s:
        for n, (score, comment, anonymous) in enumerate(answers):
            req = Request(team=team, origin_team=team, requester_id=f"U0P{team[:2].upper()}{n}", summary="x",
                          status="resolved", resolution_count=1, resolved_at=at, created_at=at, updated_at=at)
            s.add(req)
            s.flush()
            s.add(Survey(request_id=req.id, user_id=req.requester_id, team=team, status="answered", due_at=at,
                         sent_at=at, expires_at=at + timedelta(days=3), answered_at=at, score=score,
                         clarity=score, comment=comment, comment_anonymous=anonymous))
            s.add(Reaction(request_id=req.id, team=team, user_id=req.requester_id, emoji="+1::skin-tone-2",
                           score=5, is_requester=True, created_at=at))
            s.add(Reaction(request_id=req.id, team=team, user_id="U0PEER", emoji="rage", score=1,
                           is_requester=False, created_at=at))


def test_weekly_satisfaction_only_over_the_anonymity_threshold(engine, db_url) -> None:
    week = period_for_week("2026-W03", feedback_schedule("Europe/Berlin"))
    at = week.start + timedelta(days=1)  # answered and rated then; the surveys close 3 days later
    _seed_answers(engine, "finance", [(5, "Quick and kind", True), (4, "Bob was great", False),
                                      (2, None, True), (5, "Ask <@U0BOB>", True)], at)
    settings = settings_for(db_url)

    def figures(of: Period = week, config: Settings = settings) -> satisfaction.WeekFeedback:
        with session_scope(engine) as s:
            return satisfaction.compute(s, config, of, ["finance", "it"])

    small = figures().teams["finance"]
    assert (small.sent, small.responses) == (4, 4)  # volume is not gated
    for gated in (small.csat, small.average, small.dimensions["clarity"], small.ratings, small.comments):
        assert gated.suppressed and gated.value is None and gated.display() == SUPPRESSED_TEXT
    _seed_answers(engine, "finance", [(3, "", True)], at)
    _seed_answers(engine, "it", [(1, "IT comment", True)], at)
    both = figures()
    finance = both.teams["finance"]
    assert finance.csat.value == 60.0 and finance.average.value == pytest.approx(3.8)
    assert finance.dimensions["clarity"].value == pytest.approx(3.8)
    assert finance.dimensions["support"].value is None
    assert finance.comments.suppressed and finance.comments.count == 2  # shareable ones only, and too few
    assert finance.ratings.value == {"5": 5}  # one per request (the requester's), never the peer's
    # IT's single answer is hidden, and the total over both teams leaves it out (else it gives it away)
    assert both.teams["it"].csat.suppressed and both.overall.value == 60.0 and both.overall.count == 5
    assert figures(week.shifted(1)).teams["finance"].responses == 0
    lowered = settings.model_copy(update={"surveys": settings.surveys.model_copy(update={"anonymity_threshold": 1})})
    assert figures(config=lowered).teams["it"].csat.suppressed  # the config refuses < 3; the gate, too
