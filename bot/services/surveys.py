"""Pulse surveys: scheduled durably when a request is resolved, moved into the requester's working
hours, sent exactly once, and closed when they expire.

A survey travels through three outbox jobs:
  `survey_plan:{id}` (due at once, kicked by the resolve listener) reads the requester's time zone
      (users.info, cached in `people`), moves `resolved_at + delay` into their working hours and
      enqueues `survey:{id}` for that moment. The resolve transaction itself makes no Slack call.
  `survey:{id}` re-checks everything at send time (request still resolved, per-person budget),
      reserves the budget (status `sending`), posts the DM with `post_once` (metadata ref = survey id,
      so a retry after a crash finds the first copy instead of posting twice) and marks it sent.
  `survey_render:{id}:…` brings the DM up to date after an answer or when it closes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.analytics.privacy import effective_threshold
from bot.render import feedback_blocks
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure, RetryLater
from bot.services.delivery import post_once, update
from bot.slack.client import is_permanent, slack_error
from storage import feedback as queries
from storage import jobs as job_queries
from storage import requests as request_queries
from storage.jobs import ClaimedJob
from storage.models import Request, Survey
from storage.session import session_scope

log = logging.getLogger(__name__)
PLAN, SEND, RENDER = "survey_plan", "survey", "survey_render"
EVENT_TYPE = "askdesk_survey"
END_OF_DAY = time(23, 59)


# -- working hours (pure) -------------------------------------------------------------------------
def zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or fallback)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(fallback)


def next_working_time(when: datetime, tz: ZoneInfo, hours: tuple[time, time],
                      days: Sequence[int]) -> datetime:
    """The first moment at or after `when` that falls in working `hours` on a working day in `tz`.

    Wall-clock semantics: "09:00" is 09:00 local time whatever the UTC offset (DST included). An end of
    "23:59" means the end of the day. Returns an aware UTC datetime (`when` itself if already inside).
    """
    if not days:
        return when
    start, end = hours
    local = when.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens = datetime.combine(day, start, tzinfo=tz)
        closes = (datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=tz) if end == END_OF_DAY
                  else datetime.combine(day, end, tzinfo=tz))
        if offset == 0 and local >= closes:
            continue
        if offset == 0 and local >= opens:
            return when.astimezone(UTC)
        return opens.astimezone(UTC)
    return when.astimezone(UTC)


def send_time(deps: Deps, when: datetime, tz_name: str | None) -> datetime:
    s = deps.settings.surveys
    tz = zone(tz_name, deps.settings.workspace.timezone)
    return next_working_time(when, tz, s.working_hours, s.working_days)


# -- scheduling (called inside the resolve / reopen transactions) ------------------------------------
def schedule(deps: Deps, session: Session, req: Request) -> list[int | None]:
    """Create this resolution's survey and its planning job; idempotent per (request, resolution)."""
    assert req.id is not None and req.resolved_at is not None
    now = deps.now()
    survey_id = queries.create_survey(
        session, request_id=req.id, resolution_no=req.resolution_count, user_id=req.requester_id,
        team=req.team, department=req.department, due_at=req.resolved_at + deps.settings.surveys.delay,
        created_at=now)
    if survey_id is None:
        return []
    return [job_queries.enqueue(session, kind=PLAN, key=f"survey_plan:{survey_id}",
                                payload={"survey_id": survey_id}, due_at=now + KICK_GRACE)]


def cancel(session: Session, req: Request, *,
           reason: str = "request reopened before the survey went out") -> list[int]:
    assert req.id is not None
    cancelled = queries.cancel_scheduled(session, request_id=req.id, reason=reason)
    for survey_id in cancelled:
        job_queries.cancel(session, key=f"survey_plan:{survey_id}")
        job_queries.cancel(session, key=f"survey:{survey_id}")
    return cancelled


def render_job(session: Session, survey_id: int, *, due_at: datetime) -> int | None:
    return job_queries.enqueue(session, kind=RENDER, key=f"survey_render:{survey_id}:{uuid.uuid4().hex[:12]}",
                               payload={"survey_id": survey_id}, due_at=due_at)


# -- jobs -----------------------------------------------------------------------------------------
def _load(deps: Deps, survey_id: int) -> tuple[Survey, Request | None]:
    with session_scope(deps.engine) as session:
        survey = queries.get_survey(session, survey_id)
        if survey is None:
            raise PermanentFailure(f"survey {survey_id} is gone")
        return survey, request_queries.get(session, survey.request_id)


def plan(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    survey, _ = _load(deps, int(payload["survey_id"]))
    if survey.status != "scheduled":
        return
    tz_name = deps.directory.timezone_of(survey.user_id, now=deps.now())
    due = send_time(deps, survey.due_at, tz_name)
    with session_scope(deps.engine) as session:
        if queries.set_due(session, survey_id=survey.id, due_at=due):  # type: ignore[arg-type]
            job_queries.enqueue(session, kind=SEND, key=f"survey:{survey.id}",
                                payload={"survey_id": survey.id, "tz": tz_name}, due_at=due)


def _still_wanted(req: Request | None, survey: Survey) -> str | None:
    if req is None:
        return "the request is gone"
    if req.status != "resolved" or req.resolution_count != survey.resolution_no:
        return "request reopened before the survey went out"
    return None


@dataclass(frozen=True)
class _Go:
    survey: Survey
    req: Request | None
    resumed: bool  # reserved by an earlier attempt, which may already have posted the DM


def _reserve(deps: Deps, survey_id: int, payload: dict[str, Any]) -> _Go | None:
    """One transaction under the survey's (and the person's) row lock: does this survey go out now?
    If so its status becomes `sending`, which also holds the person's survey budget."""
    now, settings = deps.now(), deps.settings.surveys
    with session_scope(deps.engine) as session:
        survey = queries.get_survey(session, survey_id, for_update=True)
        if survey is None:
            raise PermanentFailure(f"survey {survey_id} is gone")
        if survey.status not in ("scheduled", "sending"):
            return None
        req = request_queries.get(session, survey.request_id)
        wait = (send_time(deps, now, payload.get("tz")) - now).total_seconds()
        if wait > 0:  # overdue after downtime or a Slack outage: wait for the next working hours again
            raise RetryLater("outside the requester's working hours", after=wait, failure=False)
        if survey.status == "sending":
            return _Go(survey, req, resumed=True)
        status, reason = "cancelled", _still_wanted(req, survey)
        if reason is None:
            status, reason = "skipped", None if settings.enabled else "surveys are disabled"
        if reason is None and settings.min_days_between > 0:
            queries.lock_person(session, survey.user_id)
            since = now - timedelta(days=settings.min_days_between)
            reason = queries.budget_blocker(session, user_id=survey.user_id, since=since, survey_id=survey_id)
        if reason is not None:
            queries.set_status(session, survey_id=survey_id, status=status, reason=reason)
            log.info("survey %s %s: %s", survey_id, status, reason)
            return None
        queries.set_status(session, survey_id=survey_id, status="sending")
        return _Go(survey, req, resumed=False)


def send(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    go = _reserve(deps, int(payload["survey_id"]), payload)
    if go is None:
        return
    survey, req, team = go.survey, go.req, deps.settings.team(go.survey.team)
    if req is None or team is None:
        raise PermanentFailure(f"request {survey.request_id} or team {survey.team} is gone")
    survey.expires_at = deps.now() + deps.settings.surveys.expire_after  # shown as "open until"
    t = deps.directory.translator_for(survey.user_id, now=deps.now())
    msg = feedback_blocks.survey_message(survey, req, team, t=t, now=deps.now(), threshold=threshold(deps))
    posted = post_once(deps, channel=survey.user_id, text=msg.text, blocks=msg.as_dicts(),
                       event_type=EVENT_TYPE, ref=str(survey.id), known_channel=req.dm_channel,
                       reconcile=job.attempts > 1 or go.resumed, since=job.created_at, paced=True)
    sent_at = deps.now()
    with session_scope(deps.engine) as session:  # the mark and the job's end are one transaction
        queries.mark_sent(session, survey_id=survey.id, user_id=survey.user_id,  # type: ignore[arg-type]
                          channel=posted.channel, ts=posted.ts, sent_at=sent_at,
                          expires_at=sent_at + deps.settings.surveys.expire_after)
        job_queries.finish(session, job_id=job.id, owner=deps.instance_id)  # type: ignore[arg-type]
    job.status = "done"


def failed(deps: Deps, payload: dict[str, Any], reason: str) -> None:
    """A permanent Slack error (user deactivated, DMs closed…) or retries exhausted: record it, stop."""
    with session_scope(deps.engine) as session:
        queries.set_status(session, survey_id=int(payload["survey_id"]), status="failed", reason=reason,
                           only_from=("scheduled", "sending"))


def render(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    survey, req = _load(deps, int(payload["survey_id"]))
    team = deps.settings.team(survey.team)
    if not survey.channel or not survey.ts or req is None or team is None:
        return
    t = deps.directory.translator_for(survey.user_id, now=deps.now())
    msg = feedback_blocks.survey_message(survey, req, team, t=t, now=deps.now(), threshold=threshold(deps))
    try:
        update(deps, channel=survey.channel, ts=survey.ts, text=msg.text, blocks=msg.as_dicts())
    except SlackApiError as exc:
        if not is_permanent(exc):
            raise
        log.warning("survey %s DM not updated: %s", survey.id, slack_error(exc))


def expire(deps: Deps) -> int:
    """Close surveys past `expires_at` and queue the update of their DMs ("this survey is closed")."""
    total = 0
    while True:
        now = deps.now()
        with session_scope(deps.engine) as session:
            closed = queries.expire_due(session, now=now)
            for survey_id in closed:
                render_job(session, survey_id, due_at=now)
        total += len(closed)
        if len(closed) < 500:
            return total


def threshold(deps: Deps) -> int:
    return effective_threshold(deps.settings.surveys.anonymity_threshold)


def latest_survey(deps: Deps, request_id: int) -> Survey | None:
    """The newest survey of a request (for `askdesk demo` and status output)."""
    with session_scope(deps.engine) as session:
        surveys = queries.surveys_of(session, request_id)
    return surveys[-1] if surveys else None
