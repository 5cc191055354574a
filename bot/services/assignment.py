"""Assignment: a responder or lead gives a request to one of the team's responders, or askdesk gives
each new request, in turn, to the next responder who marked themselves available (round robin).

An assignment is not a first response: the SLA keeps running (its reminder names the assignee) until
the assignee claims the request or answers in its thread. The assignee gets a DM (job `assigned_dm`,
posted once, found again through its metadata after a crash).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlmodel import Session

from bot.config import Team
from bot.i18n import N_, Message
from bot.render import blocks, sla_blocks
from bot.render.blocks import mention
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure
from bot.services.delivery import post_once
from bot.services.requests import InputError, Outcome, get_request, locked, may_handle, render_job
from storage import jobs as job_queries
from storage import requests as queries
from storage import sla as sla_queries
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import session_scope

log = logging.getLogger(__name__)
ASSIGNED_DM = "assigned_dm"
EVENT_TYPE = "askdesk_assigned"


def team_of(deps: Deps, req: Request) -> Team:
    team = deps.settings.team(req.team)
    if team is None:
        raise InputError({"team": N_("The team '{team}' is no longer configured.", team=req.team)})
    return team


def _assign(deps: Deps, session: Session, req: Request, assignee: str, *, by: str | None) -> list[int | None]:
    """Give `req` to `assignee` inside the caller's transaction; the jobs that tell everyone."""
    now = deps.now()
    previous = req.assignee_id
    req.assignee_id, req.status, req.updated_at = assignee, "claimed", now
    queries.add_event(session, req, "assigned", actor=by, at=now,
                      detail={"to": assignee, "previous": previous, "auto": by is None})
    session.add(req)
    session.flush()
    note = job_queries.enqueue(session, kind=ASSIGNED_DM, key=f"assigned:{req.id}:{uuid.uuid4().hex[:12]}",
                               payload={"request_id": req.id, "to": assignee, "by": by}, due_at=now + KICK_GRACE)
    return [note, render_job(session, req)]


def assign(deps: Deps, *, request_id: int, actor: str, assignee: str) -> Outcome:
    """`actor` gives the request to `assignee`. A picker opened a while ago may offer someone removed from
    the triage channel or deactivated since (or be submitted by someone who left the channel): the
    channel and the assignee are asked of Slack afresh, before the transaction (no Slack call while the
    row is locked), and such a submission is refused, the request left as it was."""
    req = get_request(deps, request_id)
    team = deps.settings.team(req.team) if req else None
    gone = False
    if team is not None:
        deps.directory.members(team.channel, fresh=True)
        gone = may_handle(deps, team, actor) and deps.directory.is_gone(assignee)
    return _assign_checked(deps, request_id=request_id, actor=actor, assignee=assignee, gone=gone)


@locked
def _assign_checked(deps: Deps, session: Session, req: Request, *, actor: str, assignee: str,
                    gone: bool) -> Outcome:
    team = team_of(deps, req)
    if not may_handle(deps, team, actor):
        return Outcome(False, N_("Only {team}'s responders and leads can assign its requests.", team=team.name))
    if req.status == "resolved":
        return Outcome(False, N_("#{id} is already resolved.", id=req.id), req.id)
    if gone:
        return Outcome(False, N_("{user} was deactivated in Slack; please choose someone else.",
                                 user=mention(assignee)), req.id)
    if not deps.directory.is_responder(team, assignee):
        return Outcome(False, N_("{user} is not in {team}'s triage channel.", user=mention(assignee),
                                 team=team.name), req.id)
    if req.assignee_id == assignee:
        return Outcome(True, N_("#{id} is already assigned to {user}.", id=req.id, user=mention(assignee)), req.id)
    jobs = _assign(deps, session, req, assignee, by=actor)
    return Outcome(True, N_("#{id} is now assigned to {user}.", id=req.id, user=mention(assignee)), req.id, jobs)


def auto_assign(deps: Deps, req: Request, team: Team) -> list[int | None]:
    """Round robin: give a new (or newly transferred) unassigned request to the available responder
    assigned longest ago. Updates `req` in place; returns the jobs to kick (none if nobody is free)."""
    if team.auto_assign != "round_robin" or req.assignee_id is not None or req.status != "open":
        return []
    members = set(deps.directory.members(team.channel))
    while True:
        with session_scope(deps.engine) as session:
            fresh = queries.get(session, req.id, for_update=True)  # type: ignore[arg-type]
            if fresh is None or fresh.assignee_id is not None or fresh.status != "open" or fresh.team != team.slug:
                return []
            chosen = sla_queries.next_in_rotation(session, team=team.slug, among=sorted(members))
            if chosen is None:
                return []
            if deps.directory.is_gone(chosen):  # deactivated, still listed as available: out of the turn
                log.warning("%s was deactivated or left Slack: no longer available for %s's round robin",
                            chosen, team.slug)
                sla_queries.set_available(session, team=team.slug, user_id=chosen, available=False, now=deps.now())
                members.discard(chosen)
                continue
            sla_queries.mark_assigned(session, team=team.slug, user_id=chosen, now=deps.now())
            jobs = _assign(deps, session, fresh, chosen, by=None)
        break
    req.assignee_id, req.status = chosen, "claimed"
    log.info("#%s assigned in turn to %s", req.id, chosen)
    return jobs


def set_available(deps: Deps, *, team_slug: str, user: str, available: bool) -> Outcome:
    team = deps.settings.team(team_slug)
    if team is None or team.auto_assign != "round_robin":
        return Outcome(False, N_("That team does not assign requests in turn."))
    if not deps.directory.is_responder(team, user):
        return Outcome(False, N_("Only members of {team}'s triage channel can take its requests.", team=team.name))
    with session_scope(deps.engine) as session:
        sla_queries.set_available(session, team=team.slug, user_id=user, available=available, now=deps.now())
    return Outcome(True)


def picker(deps: Deps, *, req: Request, actor: str) -> tuple[Team, list[tuple[str, str]]] | Message:
    """What the Assign modal offers for `req` (its team and responders), or why it cannot be opened."""
    team = deps.settings.team(req.team)
    if team is None or not may_handle(deps, team, actor):
        return N_("Only {team}'s responders and leads can assign its requests.", team=team.name if team else req.team)
    if req.status == "resolved":
        return N_("#{id} is already resolved.", id=req.id)
    return team, deps.directory.people_of(team)


def notify_assignee(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Job `assigned_dm`: tell the assignee (if the request is still theirs)."""
    with session_scope(deps.engine) as session:
        req = queries.get(session, int(payload["request_id"]))
    if req is None:
        raise PermanentFailure(f"request {payload['request_id']} is gone")
    team = deps.settings.team(req.team)
    if team is None or req.assignee_id != payload["to"] or req.status == "resolved":
        return
    link = blocks.message_link(deps.workspace_url, req.triage_channel, req.triage_ts)
    msg = sla_blocks.assigned_message(req, team, by=payload.get("by"), link=link,
                                      t=deps.directory.translator_for(payload["to"], now=deps.now()))
    post_once(deps, channel=payload["to"], text=msg.text, blocks=msg.as_dicts(), event_type=EVENT_TYPE,
              ref=job.key, reconcile=job.attempts > 1, since=job.created_at)
