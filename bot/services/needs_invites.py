"""Needs-survey invitations: sent exactly once within the person's working hours and survey budget,
one reminder, answers, and the DM kept up to date.

An invitation travels through outbox jobs (all keyed, so enqueueing twice is a no-op):
  `needs_invite:{id}` re-checks at send time (round still open, working hours, the per-person survey
      budget shared with pulse surveys), reserves the budget (status `sending`), posts the DM with
      `post_once` (metadata ref = invitation id: a retry after a crash finds the first copy) and marks it
      sent, spending the budget, in the transaction that finishes the job;
  `needs_remind:{id}` (queued when the invitation is sent, due REMIND_AFTER later) posts one reminder
      if there is no answer yet and the round is still open;
  `needs_render:{id}:…` brings the DM up to date after an answer.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.config import Team
from bot.i18n import N_, Message
from bot.render import needs_blocks
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure, RetryLater
from bot.services.delivery import post_once, update
from bot.services.surveys import send_time, threshold
from bot.slack.client import is_permanent, slack_error
from storage import feedback as feedback_queries
from storage import jobs as job_queries
from storage import needs as queries
from storage.jobs import ClaimedJob
from storage.models import NeedsAnswer, NeedsInvitation, NeedsRound, Person
from storage.session import session_scope

log = logging.getLogger(__name__)
INVITE, REMIND, RENDER = "needs_invite", "needs_remind", "needs_render"
EVENT_TYPE, REMINDER_EVENT = "askdesk_needs", "askdesk_needs_reminder"
REMIND_AFTER = timedelta(days=3)
# A person whose survey budget is spent gets the invitation later in the round, when it frees up, if
# that leaves at least this long (or half the round's window, if shorter) to answer; else it is skipped.
MIN_TIME_TO_ANSWER = timedelta(days=2)


def invite_key(invitation_id: int) -> str:
    return f"needs_invite:{invitation_id}"


def _team(deps: Deps, rnd: NeedsRound) -> Team:
    team = deps.settings.team(rnd.team)
    if team is None:
        raise PermanentFailure(f"team {rnd.team} is no longer configured")
    return team


def _load(deps: Deps, invitation_id: int) -> tuple[NeedsInvitation, NeedsRound, NeedsAnswer | None]:
    with session_scope(deps.engine) as session:
        invitation = queries.get_invitation(session, invitation_id)
        rnd = queries.get_round(session, invitation.round_id) if invitation else None
        if invitation is None or rnd is None:
            raise PermanentFailure(f"needs invitation {invitation_id} is gone")
        return invitation, rnd, queries.answer_of(session, invitation_id)


def person_tz(deps: Deps, user_id: str) -> str | None:
    """The person's time zone as cached in `people` (the round's planning job fills it in bulk)."""
    with session_scope(deps.engine) as session:
        person = session.get(Person, user_id)
    return person.tz if person else None


def wait_for_working_hours(deps: Deps, user_id: str, tz: str | None) -> None:
    """Raise RetryLater until the person's next working moment (as for pulse surveys)."""
    now = deps.now()
    wait = (send_time(deps, now, tz or (person_tz(deps, user_id) if user_id else None)) - now).total_seconds()
    if wait > 0:
        raise RetryLater("outside the person's working hours", after=wait, failure=False)


@dataclass(frozen=True)
class _Go:
    invitation: NeedsInvitation
    rnd: NeedsRound
    resumed: bool


def _reserve(deps: Deps, invitation_id: int, payload: dict[str, Any]) -> _Go | None:
    """One transaction under the invitation's and the person's lock: does the invitation go out now?"""
    now, budget_days = deps.now(), deps.settings.surveys.min_days_between
    wait_for_working_hours(deps, str(payload.get("user") or ""), payload.get("tz"))
    with session_scope(deps.engine) as session:
        invitation = queries.get_invitation(session, invitation_id, for_update=True)
        if invitation is None:
            raise PermanentFailure(f"needs invitation {invitation_id} is gone")
        if invitation.status not in ("scheduled", "sending"):
            return None
        rnd = queries.get_round(session, invitation.round_id)
        assert rnd is not None
        if invitation.status == "sending":
            return _Go(invitation, rnd, resumed=True)
        if needs_blocks.is_closed(rnd, now):
            queries.set_invitation_status(session, invitation_id=invitation_id, status="skipped",
                                          reason="the round closed before the invitation could go out")
            return None
        if budget_days > 0:
            person = feedback_queries.lock_person(session, invitation.user_id)
            since = now - timedelta(days=budget_days)
            reason = feedback_queries.budget_blocker(session, user_id=invitation.user_id, since=since,
                                                     invitation_id=invitation_id)
            if reason is not None:
                free = (person.last_survey_at or now) + timedelta(days=budget_days)
                if free > now and rnd.closes_at - free >= min(MIN_TIME_TO_ANSWER, (rnd.closes_at - rnd.opens_at) / 2):
                    raise RetryLater(reason, after=(free - now).total_seconds() + 60, failure=False)
                queries.set_invitation_status(session, invitation_id=invitation_id, status="skipped", reason=reason)
                return None
        queries.set_invitation_status(session, invitation_id=invitation_id, status="sending")
        return _Go(invitation, rnd, resumed=False)


def invite(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    go = _reserve(deps, int(payload["invitation_id"]), payload)
    if go is None:
        return
    invitation, rnd, team = go.invitation, go.rnd, _team(deps, go.rnd)
    t = deps.directory.translator_for(invitation.user_id, now=deps.now())
    msg = needs_blocks.invitation_message(invitation, rnd, team, None, now=deps.now(), threshold=threshold(deps), t=t)
    posted = post_once(deps, channel=invitation.user_id, text=msg.text, blocks=msg.as_dicts(), event_type=EVENT_TYPE,
                       ref=str(invitation.id), reconcile=job.attempts > 1 or go.resumed, since=job.created_at,
                       paced=True)
    sent_at = deps.now()
    with session_scope(deps.engine) as session:  # the mark, the budget, the reminder and the job's end: one unit
        if queries.mark_invitation_sent(session, invitation_id=invitation.id, channel=posted.channel,  # type: ignore[arg-type]
                                        ts=posted.ts, sent_at=sent_at):
            feedback_queries.spend_budget(session, user_id=invitation.user_id, sent_at=sent_at)
            job_queries.enqueue(session, kind=REMIND, key=f"needs_remind:{invitation.id}",
                                payload={"invitation_id": invitation.id}, due_at=sent_at + REMIND_AFTER)
        job_queries.finish(session, job_id=job.id, owner=deps.instance_id)  # type: ignore[arg-type]
    job.status = "done"


def invite_failed(deps: Deps, payload: dict[str, Any], reason: str) -> None:
    with session_scope(deps.engine) as session:
        queries.set_invitation_status(session, invitation_id=int(payload["invitation_id"]), status="failed",
                                      reason=reason, only_from=("scheduled", "sending"))


def remind(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    invitation, rnd, answer = _load(deps, int(payload["invitation_id"]))
    if answer is not None or invitation.reminded_at or needs_blocks.is_closed(rnd, deps.now()):
        return
    wait_for_working_hours(deps, invitation.user_id, None)
    team = _team(deps, rnd)
    msg = needs_blocks.reminder_message(invitation, rnd, team, threshold=threshold(deps),
                                        t=deps.directory.translator_for(invitation.user_id, now=deps.now()))
    post_once(deps, channel=invitation.user_id, text=msg.text, blocks=msg.as_dicts(),
              event_type=REMINDER_EVENT, ref=str(invitation.id), known_channel=invitation.channel,
              reconcile=job.attempts > 1, since=job.created_at, paced=True)
    with session_scope(deps.engine) as session:
        queries.mark_reminded(session, invitation_id=invitation.id, at=deps.now())  # type: ignore[arg-type]


def render(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    invitation, rnd, answer = _load(deps, int(payload["invitation_id"]))
    if not invitation.channel or not invitation.ts:
        return
    msg = needs_blocks.invitation_message(invitation, rnd, _team(deps, rnd), answer, now=deps.now(),
                                          threshold=threshold(deps),
                                          t=deps.directory.translator_for(invitation.user_id, now=deps.now()))
    try:
        update(deps, channel=invitation.channel, ts=invitation.ts, text=msg.text, blocks=msg.as_dicts())
    except SlackApiError as exc:
        if not is_permanent(exc):
            raise
        log.warning("needs invitation %s DM not updated: %s", invitation.id, slack_error(exc))


# -- answers --------------------------------------------------------------------------------------
@dataclass
class Outcome:
    ok: bool
    message: Message | None = None
    jobs: list[int | None] = field(default_factory=list)


GONE = N_("That survey no longer exists.")


def _refusal(invitation: NeedsInvitation | None, rnd: NeedsRound | None, user: str, now: datetime) -> Message | None:
    if invitation is None or rnd is None:
        return GONE
    if invitation.user_id != user:
        return N_("This survey was sent to someone else, so your click changed nothing.")
    if needs_blocks.is_closed(rnd, now):
        return N_("This survey closed on {date}, so it can't be changed any more — thank you all the same!",
                  date=rnd.closes_at.date().isoformat())
    if invitation.status not in ("sent", "answered"):
        return N_("This survey is not open for answers.")
    return None


def answer(deps: Deps, *, invitation_id: int, user: str, values: dict[str, Any]) -> Outcome:
    """Store (part of) an answer — a score click or the questionnaire — and queue the DM's update."""
    for name in needs_blocks.SCORE_NAMES:
        if values.get(name) is not None and values[name] not in needs_blocks.SCORES:
            return Outcome(False, N_("That is not a score from 1 to 5."))
    now = deps.now()
    with session_scope(deps.engine) as session:
        invitation = queries.get_invitation(session, invitation_id, for_update=True)
        rnd = queries.get_round(session, invitation.round_id, shared=True) if invitation else None
        refusal = _refusal(invitation, rnd, user, now)
        if refusal or invitation is None:
            return Outcome(False, refusal)
        queries.save_answer(session, invitation_id=invitation_id, round_id=invitation.round_id, values=values,
                            now=now)
        job = job_queries.enqueue(session, kind=RENDER, key=f"needs_render:{invitation_id}:{uuid.uuid4().hex[:12]}",
                                  payload={"invitation_id": invitation_id}, due_at=now + KICK_GRACE)
    return Outcome(True, None, [job])


def modal_for(deps: Deps, *, invitation_id: int, user: str) -> View | Message:
    """The questionnaire for the invitation's recipient, or a refusal text for anyone else."""
    with session_scope(deps.engine) as session:
        invitation = queries.get_invitation(session, invitation_id)
        rnd = queries.get_round(session, invitation.round_id) if invitation else None
        refusal = _refusal(invitation, rnd, user, deps.now())
        if refusal or invitation is None or rnd is None:
            return refusal or GONE
        current = queries.answer_of(session, invitation_id)
    team = deps.settings.team(rnd.team)
    if team is None:
        return N_("That team is no longer configured.")
    return needs_blocks.survey_modal(invitation, team, current, threshold=threshold(deps),
                                     t=deps.directory.translator_for(user, now=deps.now()))
