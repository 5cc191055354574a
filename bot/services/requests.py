"""The request loop: intake, claim, first response, resolve, reopen, transfer.

Every state change is stored with its time and actor in the same transaction as the jobs that bring
Slack up to date; listeners kick those jobs right away and the scheduler catches up on the rest.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from bot.config import URGENCIES, Settings, Team
from bot.i18n import N_, Message
from bot.render.blocks import mention
from bot.render.links import is_channel_id, safe_url
from bot.render.sla_text import SlaView
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE
from bot.services import feedback, sla
from storage import jobs as job_queries
from storage import requests as queries
from storage import sla as sla_queries
from storage.group_commit import group_commit
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import session_scope

log = logging.getLogger(__name__)


class InputError(ValueError):
    """Bad input from a user, shown to them in their language: `errors` maps each wrong field of the
    request form to what to fix; `message` is the first of them."""

    def __init__(self, errors: dict[str, Message]) -> None:
        self.errors, self.message = errors, next(iter(errors.values()))
        super().__init__(self.message.msgid)


@dataclass(frozen=True)
class RequestForm:
    """A new request: the text after `/ask-<team>`, or the request modal's fields (named as its block ids)."""

    team: str | None
    text: str
    summary: str | None = None  # the modal's one-line summary; else the text's first line
    category: str | None = None
    urgency: str = "normal"
    permalink: str | None = None
    channel: str | None = None

    def errors(self, settings: Settings) -> dict[str, Message]:
        team = settings.team(self.team or "")
        errors: dict[str, Message] = {}
        if not (self.summary if self.summary is not None else self.text).strip():
            errors["summary"] = N_("Please write a one-line summary.")
        if team is None:
            errors["team"] = N_("Please pick a team.")
        elif self.category and team.categories and self.category not in team.categories:
            errors["category"] = N_("'{category}' is not one of {team}'s categories: {choices}.",
                                    category=self.category, team=team.name, choices=", ".join(team.categories))
        if self.urgency not in URGENCIES:
            errors["urgency"] = N_("Urgency must be one of {choices}.", choices=", ".join(URGENCIES))
        return errors


@dataclass
class Outcome:
    ok: bool
    message: Message | None = None  # for the person who acted, in their language
    request_id: int | None = None
    jobs: list[int | None] = field(default_factory=list)
    request: Request | None = None
    leased: list[ClaimedJob] = field(default_factory=list)  # enqueued already claimed by this instance

    def kick(self, deps: Deps) -> Outcome:
        deps.outbox.kick(self.jobs)
        return self

    def start(self, deps: Deps, on_error: Callable[[BaseException], None] | None = None) -> Outcome:
        """Hand this outcome's leased jobs to the live pool (from an ack function, after the ack)."""
        deps.outbox.start(self.leased, on_error)
        return self


def locked(change: Callable[..., Outcome]) -> Callable[..., Outcome]:
    """`change(deps, session, req, **kw)` called as `change(deps, request_id=…, **kw)`, in one transaction on
    the row loaded FOR UPDATE (SQLite: under the write lock); a request not in the database is "gone"."""

    @functools.wraps(change)
    def locked(deps: Deps, *, request_id: int, **kwargs: Any) -> Outcome:
        _know_responders(deps)
        with session_scope(deps.engine) as session:
            req = queries.get(session, request_id, for_update=True)
            if req is None:
                return Outcome(False, N_("Request #{id} no longer exists.", id=request_id))
            return change(deps, session, req, **kwargs)

    return locked


def _post_key(request_id: int, attempt: int | str) -> str:
    """The outbox key of one posting of a request: its first post, a post after a transfer, a retry."""
    return f"post:{request_id}:{attempt}"


def render_job(session: Session, req: Request) -> int | None:
    """Bring the request's triage message and DM up to date (shortly; a listener kicks it at once)."""
    return job_queries.enqueue(session, kind="render", key=f"render:{req.id}:{uuid.uuid4().hex[:12]}",
                               payload={"request_id": req.id}, due_at=req.updated_at + KICK_GRACE)


def _know_responders(deps: Deps) -> None:
    """Read (or find cached) who responds for each team before a transaction that checks it, so no
    Slack call (which may take seconds) runs while the request's row, or SQLite's write lock, is held."""
    for team in deps.settings.teams:
        deps.directory.members(team.channel)


def may_handle(deps: Deps, team: Team, user: str) -> bool:
    """Responders (members of the triage channel) and the team's leads may claim, assign and ask."""
    return user in team.leads or deps.directory.is_responder(team, user)


def _team(deps: Deps, slug: str) -> Team:
    team = deps.settings.team(slug)
    if team is None:
        raise InputError({"team": N_("The team '{team}' is no longer configured.", team=slug)})
    return team


def first_line(text: str) -> str:
    return next(iter(text.strip().splitlines()), "")


def create_request(deps: Deps, form: RequestForm, *, requester_id: str, response_url: str | None = None) -> Outcome:
    """Save a new request and enqueue its posting. Raises InputError on bad input."""
    errors = form.errors(deps.settings)
    if errors:
        raise InputError(errors)
    body, team = form.text.strip(), _team(deps, form.team or "")
    # the form offers no categories for a team without any: such a value is stale or forged
    category = form.category if team.categories else None
    channel = form.channel
    if channel is not None and not is_channel_id(channel):
        log.warning("dropped a source channel that is no Slack channel id (%d chars)", len(str(channel)))
        channel = None
    now = deps.now()
    values = dict(
        team=team.slug, origin_team=team.slug, requester_id=requester_id, department="",
        summary=(form.summary or first_line(body)).strip()[:300], text=body, category=category,
        urgency=form.urgency, source_permalink=safe_url(form.permalink), source_channel=channel,
        response_url=response_url, created_at=now, updated_at=now)
    owner, until = deps.outbox.new_lease()
    # Committed before the slash command is acknowledged, in a group commit with the other requests
    # arriving at the same time (one INSERT per table for all of them). The post job is inserted
    # already leased to this instance, which runs it right after the ack with the request in hand;
    # should this process die first, the clock takes it when the lease ends.
    new = queries.NewRequest(values=values, detail={"category": form.category, "urgency": form.urgency},
                             job_kind="post_request", job_key=_first_post_key, lease=(owner, until))
    req, job_id = group_commit(deps.engine, queries.insert_new, new, urgent=True)
    assert job_id is not None  # the key embeds the new request's id
    job = job_queries.leased(job_id, kind="post_request", key=_first_post_key(req.id),
                             payload={"request_id": req.id}, owner=owner, until=until, preloaded=req)
    return Outcome(ok=True, request_id=req.id, request=req, leased=[job])


def _first_post_key(request_id: int) -> str:
    return _post_key(request_id, 0)


@locked
def claim(deps: Deps, session: Session, req: Request, *, actor: str) -> Outcome:
    now = deps.now()
    team = _team(deps, req.team)
    if not may_handle(deps, team, actor):
        return Outcome(False, N_("Only members of {team}'s triage channel can claim its requests.", team=team.name))
    if req.status == "resolved":
        return Outcome(False, N_("#{id} is already resolved.", id=req.id), req.id)
    if req.assignee_id == actor and req.sla_responded_at is not None:
        return Outcome(True, N_("You already have #{id}.", id=req.id), req.id)
    previous = req.assignee_id
    req.assignee_id, req.status, req.updated_at = actor, "claimed", now
    # claiming a request assigned to you is how you take it on (the first response)
    queries.add_event(session, req, "claimed", actor=actor, at=now,
                      detail={"previous": previous} if previous and previous != actor else None)
    if req.first_response_at is None:
        req.first_response_at = now
        queries.add_event(session, req, "first_response", actor=actor, at=now, detail={"via": "claim"})
    sla.responded(req, now)
    session.add(req)
    job = render_job(session, req)
    return Outcome(True, None, req.id, [job])


@locked
def resolve(deps: Deps, session: Session, req: Request, *, actor: str) -> Outcome:
    now = deps.now()
    team = _team(deps, req.team)
    if actor != req.requester_id and not deps.directory.is_responder(team, actor):
        return Outcome(False, N_("Only {team}'s responders or the person who asked can resolve #{id}.",
                                  team=team.name, id=req.id))
    if req.status == "resolved":
        return Outcome(True, N_("#{id} is already resolved.", id=req.id), req.id)
    req.status, req.resolved_at, req.updated_at = "resolved", now, now
    req.resolution_count += 1
    if req.assignee_id is None and actor != req.requester_id:
        req.assignee_id = actor
    if req.first_response_at is None and actor != req.requester_id:
        req.first_response_at = now
        queries.add_event(session, req, "first_response", actor=actor, at=now, detail={"via": "resolve"})
    req.waiting_since = None
    sla.replan(req)  # its timers are cancelled
    queries.add_event(session, req, "resolved", actor=actor, at=now)
    session.add(req)
    session.flush()
    jobs = [render_job(session, req), *feedback.on_resolved(deps, session, req)]
    return Outcome(True, None, req.id, jobs)


@locked
def reopen(deps: Deps, session: Session, req: Request, *, actor: str) -> Outcome:
    now = deps.now()
    if actor != req.requester_id and not deps.settings.is_admin(actor):
        return Outcome(False, N_("Only the person who asked ({user}) can reopen #{id}.",
                                  user=mention(req.requester_id), id=req.id))
    if req.status != "resolved":
        return Outcome(True, N_("#{id} is still open.", id=req.id), req.id)
    req.status = "claimed" if req.assignee_id else "open"
    req.resolved_at, req.updated_at = None, now
    req.reopen_count += 1
    # the SLAs start again; someone who has it already answered once
    sla.new_cycle(req, now, responded=req.assignee_id is not None)
    queries.add_event(session, req, "reopened", actor=actor, at=now)
    session.add(req)
    session.flush()
    feedback.on_reopened(deps, session, req)
    jobs = [render_job(session, req)]
    return Outcome(True, None, req.id, jobs)


@locked
def transfer(deps: Deps, session: Session, req: Request, *, actor: str, to_team: str,
             note: str | None = None) -> Outcome:
    now = deps.now()
    team = _team(deps, req.team)
    target = deps.settings.team(to_team)
    if not deps.directory.is_responder(team, actor):
        return Outcome(False, N_("Only members of {team}'s triage channel can transfer its requests.",
                                 team=team.name))
    if target is None:
        return Outcome(False, N_("There is no team '{team}'.", team=to_team))
    if target.slug == team.slug:
        return Outcome(False, N_("#{id} is already with {team}.", id=req.id, team=team.name))
    if req.status == "resolved":
        return Outcome(False, N_("#{id} is resolved; reopen it before transferring.", id=req.id))
    old_channel, old_ts = req.triage_channel, req.triage_ts
    req.team, req.status, req.assignee_id, req.updated_at = target.slug, "open", None, now
    req.transfer_count += 1
    req.post_state = "pending"
    sla.new_cycle(req, now, responded=False)  # the new team's SLAs start now
    queries.add_event(session, req, "transferred", actor=actor, at=now,
                      detail={"from": team.slug, "to": target.slug, "note": (note or "")[:1000]})
    session.add(req)
    jobs = [
        job_queries.enqueue(session, kind="transfer_notice", key=f"moved:{req.id}:{req.transfer_count}",
                            payload={"request_id": req.id, "channel": old_channel, "ts": old_ts,
                                     "from": team.slug, "to": target.slug}, due_at=now + KICK_GRACE),
        job_queries.enqueue(session, kind="post_request", key=_post_key(req.id, req.transfer_count),
                            payload={"request_id": req.id, "note": (note or "")[:1000], "by": actor,
                                     "from": team.slug}, due_at=now + KICK_GRACE),
    ]
    return Outcome(True, N_("#{id} moved to {team}.", id=req.id, team=target.name), req.id, jobs)


def thread_reply(deps: Deps, *, channel: str, thread_ts: str, user: str, event_id: str | None = None) -> Outcome:
    """A reply in a request's triage thread: the first one by a responder is the first response.

    `event_id` (the Events API delivery) is recorded in the same transaction: a redelivery does nothing."""
    now = deps.now()
    _know_responders(deps)
    with session_scope(deps.engine) as session:
        if event_id and not queries.first_seen(session, event_id, now=now):
            return Outcome(False)
        req = queries.by_message(session, channel, thread_ts)
        if req is None or user == req.requester_id or req.triage_ts != thread_ts:
            return Outcome(False, request_id=req.id if req else None)
        if req.first_response_at is not None and req.sla_responded_at is not None:
            return Outcome(False, request_id=req.id)
        if not deps.directory.is_responder(_team(deps, req.team), user):
            return Outcome(False, request_id=req.id)
        req.updated_at = now
        if req.first_response_at is None:
            req.first_response_at = now
            queries.add_event(session, req, "first_response", actor=user, at=now, detail={"via": "thread_reply"})
        sla.responded(req, now)
        session.add(req)
    return Outcome(True, request_id=req.id)


@locked
def retry_post(deps: Deps, session: Session, req: Request, *, actor: str) -> Outcome:
    if actor != req.requester_id and not deps.settings.is_admin(actor):
        return Outcome(False, N_("Only the person who asked or an admin can retry posting this request."))
    if req.post_state != "failed":
        posted = N_("#{id} is already posted.", id=req.id)
        return Outcome(True, posted if req.post_state == "posted" else None, req.id)
    req.post_state, req.post_error = "pending", None
    now = deps.now()
    queries.add_event(session, req, "post_retry", actor=actor, at=now)
    session.add(req)
    job = job_queries.enqueue(session, kind="post_request", key=_post_key(req.id, uuid.uuid4().hex[:8]),
                              payload={"request_id": req.id}, due_at=now + KICK_GRACE)
    return Outcome(True, N_("Trying again to post #{id}…", id=req.id), req.id, [job])


def get_request(deps: Deps, request_id: int) -> Request | None:
    with session_scope(deps.engine) as session:
        return queries.get(session, request_id)


@dataclass
class Home:
    """What App Home shows one person."""

    mine: list[Request]
    queues: list[tuple[Team, list[Request], int]]  # open requests, earliest deadline first, and how many
    sla: dict[int, SlaView]
    availability: list[tuple[Team, bool]]  # teams assigning in turn where the person is a responder


def home_data(deps: Deps, user_id: str) -> Home:
    teams = deps.directory.responder_teams(user_id)
    now = deps.now()
    with session_scope(deps.engine) as session:
        mine = queries.mine(session, user_id, resolved_since=now - timedelta(days=14))
        queues = [(team, *queries.open_queue(session, team.slug)) for team in teams]
        available = sla_queries.availability(session, user_id=user_id)
    views = {req.id: v for _, reqs, _ in queues for req in reqs  # type: ignore[misc]
             if (v := sla.view(deps.settings, req, now)) is not None}
    rotation = [(team, available.get(team.slug, False)) for team in teams if team.auto_assign == "round_robin"]
    return Home(mine=mine, queues=queues, sla=views, availability=rotation)  # type: ignore[arg-type]
