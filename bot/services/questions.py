"""Waiting on the requester: a responder asks a question, the SLA clock pauses until the answer.

The question is posted in the requester's DM status thread (with a Reply button) and noted in the
triage thread; the request shows "waiting on you". The requester answers in that thread or with
Reply: the time waited (on the team's clock) is added to the cycle's pause, the answer is relayed
to the triage thread, and the planner moves the timers. A question is a first response.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from bot.i18n import N_
from bot.render import sla_blocks
from bot.render.blocks import mention
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure
from bot.services import sla
from bot.services.assignment import team_of
from bot.services.delivery import post_once
from bot.services.requests import Outcome, locked, may_handle, render_job
from bot.services.sla_plan import paused_for
from storage import jobs as job_queries
from storage import requests as queries
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import session_scope

log = logging.getLogger(__name__)
QUESTION_POST, ANSWER_RELAY = "question_post", "answer_relay"
EVENT_TYPE = "askdesk_question"
MAX_TEXT = 2000


@locked
def ask(deps: Deps, session: Session, req: Request, *, actor: str, question: str) -> Outcome:
    text = (question or "").strip()[:MAX_TEXT]
    if not text:
        return Outcome(False, N_("Please write the question."))
    now = deps.now()
    team = team_of(deps, req)
    if not may_handle(deps, team, actor):
        return Outcome(False, N_("Only {team}'s responders and leads can ask about its requests.", team=team.name))
    if req.status == "resolved":
        return Outcome(False, N_("#{id} is resolved; reopen it to ask more.", id=req.id), req.id)
    if not req.dm_ts or not req.dm_channel:
        return Outcome(False, N_("I can't reach {user} about #{id} yet; please try again in a minute.",
                                 user=mention(req.requester_id), id=req.id), req.id)
    key = _once_key(QUESTION_POST, req.id, req.waiting_since or now, text)
    if req.waiting_since is not None and job_queries.get_by_key(session, key=key) is not None:
        return Outcome(True, N_("You already asked {user} this; the SLA clock stays paused until they answer.",
                                user=mention(req.requester_id)), req.id)  # a double submission: nothing more
    if req.waiting_since is None:
        req.waiting_since = now
    if req.first_response_at is None:
        req.first_response_at = now
        queries.add_event(session, req, "first_response", actor=actor, at=now, detail={"via": "question"})
    sla.responded(req, now)
    sla.replan(req)  # paused: its timers wait for the answer
    req.updated_at = now
    queries.add_event(session, req, "waiting_on_requester", actor=actor, at=now)
    session.add(req)
    session.flush()
    jobs = [job_queries.enqueue(session, kind=QUESTION_POST, key=key,
                                payload={"request_id": req.id, "by": actor, "text": text}, due_at=now + KICK_GRACE),
            render_job(session, req)]
    return Outcome(True, N_("Asked {user}. The SLA clock is paused until they answer.",
                            user=mention(req.requester_id)), req.id, jobs)


def _once_key(kind: str, request_id: int | None, anchor: datetime | None, text: str) -> str:
    """The outbox key of a question or an answer: the same text about the same wait (the question's
    `anchor`) twice is the same job, so a double submission posts once."""
    utc = anchor.astimezone(UTC) if anchor and anchor.tzinfo else anchor  # as read back, whatever the driver
    stamp = utc.strftime("%Y%m%dT%H%M%S") if utc else "-"
    return f"{kind}:{request_id}:{stamp}:{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def _answer(deps: Deps, session: Session, req: Request, text: str, *, via: str,
            relay_always: bool) -> list[int | None] | None:
    """Inside the caller's transaction: end the wait (if any) and relay the answer to the team; None when
    this very answer to the latest question was relayed already (a double submission)."""
    now = deps.now()
    key = _once_key(ANSWER_RELAY, req.id, queries.last_event_at(session, req.id, "waiting_on_requester"),  # type: ignore[arg-type]
                    text[:MAX_TEXT])
    if job_queries.get_by_key(session, key=key) is not None:
        return None
    was_waiting = req.waiting_since is not None
    if was_waiting:
        req.sla_paused_seconds += paused_for(req, sla.policy_for(deps.settings, team_of(deps, req)), now)
        req.waiting_since = None
        sla.replan(req)  # the clock runs again: the planner moves the timers by the pause
        req.updated_at = now
        queries.add_event(session, req, "requester_answered", actor=req.requester_id, at=now, detail={"via": via})
        session.add(req)
        session.flush()
    if not (was_waiting or relay_always):
        return []
    jobs = [job_queries.enqueue(session, kind=ANSWER_RELAY, key=key,
                                payload={"request_id": req.id, "text": text[:MAX_TEXT]}, due_at=now + KICK_GRACE)]
    if was_waiting:
        jobs.append(render_job(session, req))
    return jobs


@locked
def reply(deps: Deps, session: Session, req: Request, *, user: str, text: str) -> Outcome:
    """The requester's answer from the Reply form."""
    answer = (text or "").strip()
    if not answer:
        return Outcome(False, N_("Please write your answer."))
    if user != req.requester_id:
        return Outcome(False, N_("Only {user}, who asked, can answer about #{id}.", user=mention(req.requester_id),
                                 id=req.id), req.id)
    jobs = _answer(deps, session, req, answer, via="reply", relay_always=True)
    if jobs is None:
        return Outcome(True, N_("Your answer about #{id} was already sent to the team.", id=req.id), req.id)
    return Outcome(True, N_("Thanks, your answer went to the team handling #{id}.", id=req.id), req.id, jobs)


def dm_thread_reply(deps: Deps, *, channel: str, thread_ts: str, user: str, text: str,
                    event_id: str | None = None) -> Outcome:
    """A message in the thread of a requester's DM status message: their answer while the team waits
    (stored before the event's ack, with its event id, so a redelivery does nothing)."""
    with session_scope(deps.engine) as session:
        if event_id and not queries.first_seen(session, event_id, now=deps.now()):
            return Outcome(False)
        req = queries.by_message(session, channel, thread_ts)
        if req is None or req.dm_ts != thread_ts or user != req.requester_id or req.waiting_since is None:
            return Outcome(False, request_id=req.id if req else None)
        jobs = _answer(deps, session, req, text, via="thread", relay_always=False)
    return Outcome(jobs is not None, None, req.id, jobs or [])


def _load(deps: Deps, request_id: int) -> Request:
    with session_scope(deps.engine) as session:
        req = queries.get(session, request_id)
    if req is None:
        raise PermanentFailure(f"request {request_id} is gone")
    return req


def post_question(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Job `question_post`: the question in the requester's DM thread, and a note in the triage thread."""
    req = _load(deps, int(payload["request_id"]))
    team = team_of(deps, req)
    reconcile = job.attempts > 1
    msg = sla_blocks.question_message(req, team, by=payload["by"], question=payload["text"],
                                      t=deps.directory.translator_for(req.requester_id, now=deps.now()))
    post_once(deps, channel=req.dm_channel, text=msg.text, blocks=msg.as_dicts(),  # type: ignore[arg-type]
              event_type=EVENT_TYPE, ref=job.key, reconcile=reconcile, thread_ts=req.dm_ts,
              since=job.created_at)
    if req.triage_channel and req.triage_ts:
        note = sla_blocks.question_note(req, by=payload["by"], question=payload["text"],
                                        t=deps.directory.team_translator(team))
        post_once(deps, channel=req.triage_channel, text=note.text, blocks=note.as_dicts(),
                  event_type=EVENT_TYPE, ref=job.key, reconcile=reconcile, thread_ts=req.triage_ts,
                  since=job.created_at)


def relay_answer(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Job `answer_relay`: the requester's answer, in the triage thread."""
    req = _load(deps, int(payload["request_id"]))
    if not req.triage_channel or not req.triage_ts:
        log.info("answer about #%s not relayed: the request is not posted", req.id)
        return
    note = sla_blocks.answer_note(req, answer=payload["text"],
                                  t=deps.directory.team_translator(deps.settings.team(req.team)))
    post_once(deps, channel=req.triage_channel, text=note.text, blocks=note.as_dicts(),
              event_type=EVENT_TYPE, ref=job.key, reconcile=job.attempts > 1, thread_ts=req.triage_ts,
              since=job.created_at)
