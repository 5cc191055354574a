"""Jobs that bring Slack up to date with stored request state: post, re-render, transfer notices."""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.config import Team
from bot.render import blocks
from bot.runtime.deps import Deps
from bot.runtime.outbox import SETTLE, PermanentFailure, RetryLater
from bot.services import assignment, sla
from bot.services.delivery import Posted, post_once, update
from bot.slack.client import is_permanent, is_uncertain, slack_error
from storage import jobs as job_queries
from storage import requests as queries
from storage.group_commit import group_commit
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import read_scope, session_scope

log = logging.getLogger(__name__)
CONVERGE_ROUNDS = 4


def _load(deps: Deps, request_id: int) -> Request:
    with read_scope(deps.engine) as session:
        req = queries.get(session, request_id)
    if req is None:
        raise PermanentFailure(f"request {request_id} is gone")
    return req


def _triage_link(deps: Deps, req: Request) -> str | None:
    return blocks.message_link(deps.workspace_url, req.triage_channel, req.triage_ts)


def _save(deps: Deps, request_id: int, **values: Any) -> None:
    with session_scope(deps.engine) as session:
        req = queries.get(session, request_id, for_update=True)
        if req is None:
            return
        for key, value in values.items():
            setattr(req, key, value)
        session.add(req)


Shown = dict[str, bytes]  # "triage" / "dm" -> fingerprint of what this job last put there


def _fingerprint(msg: blocks.Rendered) -> bytes:
    """The message as built: equal bytes, equal messages (a tenth of the cost of `to_dict()`, which
    validates every object; a message built alike but pickled differently only costs an update)."""
    return pickle.dumps((msg.text, msg.blocks))


# Columns no message shows: the SLA planner's bookkeeping (it may write them while a post is under way),
# and what the post itself stores of the messages that need no showing.
NOT_SHOWN = frozenset({"sla_plan", "sla_due_at", "response_url", "dm_channel", "dm_ts"})


def shows(req: Request, stored: Mapping[str, Any]) -> bool:
    """Whether messages rendered from `req` show the request as `stored` (a row of its columns)."""
    return all(getattr(req, key) == value for key, value in stored.items() if key not in NOT_SHOWN)


def triage_view(deps: Deps, req: Request, team: Team) -> blocks.Rendered:
    """The triage message as the stored request renders it (in the team's language)."""
    return blocks.triage_message(req, team, t=deps.directory.team_translator(team),
                                 origin_team=deps.settings.team(req.origin_team),
                                 sla=sla.view(deps.settings, req, deps.now()))


def dm_view(deps: Deps, req: Request, team: Team) -> blocks.Rendered:
    """The requester's DM status message as the stored request renders it (in their language)."""
    t = deps.directory.translator_for(req.requester_id, now=deps.now())
    return blocks.dm_status_message(req, team, t=t, triage_link=_triage_link(deps, req))


def sync_dm(deps: Deps, req: Request, msg: blocks.Rendered, *, reconcile: bool,
            since: datetime | None = None) -> Posted | None:
    """Post or update the requester's DM status message (`msg`).

    Returns the message when it was posted (or found: posted by an earlier try); the caller stores it.
    """
    if req.dm_ts and req.dm_channel:
        update(deps, channel=req.dm_channel, ts=req.dm_ts, text=msg.text, blocks=msg.as_dicts())
        return None
    return post_once(deps, channel=req.requester_id, text=msg.text, blocks=msg.as_dicts(),
                     event_type="askdesk_request_dm", ref=str(req.id), reconcile=reconcile, since=since)


def _confirm(deps: Deps, req: Request, msg: blocks.Rendered) -> None:
    """Replace the slash command's ephemeral confirmation (a nicety: failures are only logged)."""
    if not req.response_url:
        return
    try:
        WebhookClient(req.response_url, timeout=5).send(text=msg.text, blocks=msg.as_dicts(),
                                                        response_type="ephemeral", replace_original=True)
    except Exception as exc:  # noqa: BLE001 - the DM carries the same information
        log.info("response_url for #%s failed: %s", req.id, type(exc).__name__)


def post_request(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Post the request to its team's triage channel and DM the requester its status.

    Slack calls first, then one transaction that stores what they produced and finishes the job
    (retries reconcile through message metadata, so nothing is posted twice). Then the messages are
    brought up to the stored state, which a click may have changed while they were being posted.
    """
    req = job.preloaded if isinstance(job.preloaded, Request) else _load(deps, payload["request_id"])
    team = deps.settings.team(req.team)
    if team is None:
        raise PermanentFailure(f"team {req.team} is not configured")
    now, retry, since = deps.now(), job.attempts > 1, job.created_at
    if not req.department:
        req.department = deps.directory.department_of(req.requester_id, now=now)
    new_post, sent, assigned = None, {}, []
    if req.triage_channel != team.channel or not req.triage_ts:
        assigned = assignment.auto_assign(deps, req, team)  # round robin, when the team assigns in turn
        msg = triage_view(deps, req, team)
        new_post = post_once(deps, channel=team.channel, text=msg.text, blocks=msg.as_dicts(),
                             event_type="askdesk_request", ref=f"{req.id}:{req.transfer_count}", reconcile=retry,
                             since=since)
        req.triage_channel, req.triage_ts = new_post.channel, new_post.ts
        if not new_post.reconciled:  # a copy found shows what an earlier try saw
            sent["triage"] = msg
        if payload.get("note") or payload.get("by"):
            text = blocks.transferred_here_note(payload["by"], payload.get("note") or "",
                                                t=deps.directory.team_translator(team))
            post_once(deps, channel=new_post.channel, thread_ts=new_post.ts, text=text, blocks=[],
                      event_type="askdesk_transfer_note", ref=f"{req.id}:{req.transfer_count}", reconcile=retry,
                      since=since)
    req.post_state, req.post_error = "posted", None
    dm = dm_view(deps, req, team)
    new_dm = sync_dm(deps, req, dm, reconcile=retry, since=since)
    if new_dm is None or not new_dm.reconciled:
        sent["dm"] = dm

    record = queries.PostRecord(
        request_id=req.id, department=req.department, channel=req.triage_channel,  # type: ignore[arg-type]
        ts=req.triage_ts, dm=(new_dm.channel, new_dm.ts) if new_dm else None, new_post=new_post is not None,
        at=now, job_id=job.id, owner=deps.instance_id)
    stored = group_commit(deps.engine, queries.record_posts, record)
    if stored is None:
        raise PermanentFailure(f"request {req.id} is gone")
    job.status = "done"
    # Unless both messages were rendered from the request as it is stored (the post changed only what
    # they do not show), a click or an earlier try changed what they should show: bring them up to date.
    if len(sent) < 2 or not shows(req, stored):
        try:
            converge(deps, req.id, {key: _fingerprint(msg) for key, msg in sent.items()})  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - this job is finished: a render job takes it from here
            log.info("#%s: update after posting failed (%s); a render job will retry", req.id, slack_error(exc))
            _render_later(deps, req.id, after=SETTLE if is_uncertain(exc) else 0.0)  # type: ignore[arg-type]
    if assigned:
        deps.outbox.kick(assigned)  # the assignee's DM links the new post


def post_request_failed(deps: Deps, payload: dict[str, Any], reason: str) -> None:
    """The request stays saved; the requester is told clearly (naming the cause) and can retry."""
    with session_scope(deps.engine) as session:
        req = queries.get(session, payload["request_id"], for_update=True)
        if req is None:
            return
        req.post_state, req.post_error = "failed", reason[:200]  # shown through blocks.post_error_text
        queries.add_event(session, req, "post_failed", actor=None, at=deps.now(), detail={"error": reason})
        session.add(req)
    team = deps.settings.team(req.team)
    if team is not None:
        t = deps.directory.translator_for(req.requester_id, now=deps.now())
        values = {"id": req.id, "team": blocks.escape(team.name), "error": blocks.post_error_text(reason, t)}
        if reason in blocks.CHANNEL_ERRORS:
            text = t._(":warning: Your request *#{id}* is saved, but I could not post it to {team} ({error}). "
                       "Nothing is lost: press *Retry* in my DM once the channel is fixed.", **values)
        else:
            text = t._(":warning: Your request *#{id}* is saved, but I could not post it to {team} ({error}). "
                       "Nothing is lost: press *Retry* in my DM to try again.", **values)
        _confirm(deps, req, blocks.notice(text))
    try:
        converge(deps, req.id, reconcile=True)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a render job tells them later
        error = exc.reason if isinstance(exc, RetryLater) else slack_error(exc)
        log.error("could not tell %s about failed post of #%s: %s", req.requester_id, req.id, error)
        _render_later(deps, req.id, after=SETTLE if is_uncertain(exc) else 0.0)  # type: ignore[arg-type]


def render(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    if not converge(deps, payload["request_id"], reconcile=True):
        # The post job shows the latest state right after storing the post; this job looks again
        # afterwards in case that process died in between (waiting is no failure).
        raise RetryLater("waiting for the request to be posted", after=min(60.0, 2.0 * job.attempts), failure=False)


def converge(deps: Deps, request_id: int, shown: Shown | None = None, *, reconcile: bool = False) -> bool:
    """Bring the request's triage message and DM to its stored state; then read it again and repeat
    while it changed meanwhile (another job may have sent an older state after this one read it).

    Returns False, doing nothing, while the request is waiting for its post: the post job converges
    right after it has stored the post, and reads every change committed before that."""
    shown = dict(shown or {})
    for _ in range(CONVERGE_ROUNDS):
        req = _load(deps, request_id)
        team = deps.settings.team(req.team)
        if team is None:
            return True
        if req.post_state == "pending":
            return False
        sent = False
        if req.triage_channel == team.channel and req.triage_ts:
            msg = triage_view(deps, req, team)
            if shown.get("triage") != (mark := _fingerprint(msg)):
                _update_or_log(deps, req, "triage message", channel=req.triage_channel, ts=req.triage_ts, msg=msg)
                shown["triage"], sent = mark, True
        dm = dm_view(deps, req, team)
        if shown.get("dm") != (mark := _fingerprint(dm)):
            if req.dm_ts and req.dm_channel:
                _update_or_log(deps, req, "DM", channel=req.dm_channel, ts=req.dm_ts, msg=dm)
            else:
                new_dm = sync_dm(deps, req, dm, reconcile=reconcile, since=req.created_at)
                if new_dm:
                    _save(deps, request_id, dm_channel=new_dm.channel, dm_ts=new_dm.ts)
                    if new_dm.reconciled:  # found: it shows what the earlier try rendered
                        _update_or_log(deps, req, "DM", channel=new_dm.channel, ts=new_dm.ts, msg=dm)
            shown["dm"], sent = mark, True
        if not sent:
            return True
    _render_later(deps, request_id)  # still changing: another round later
    return True


def _update_or_log(deps: Deps, req: Request, what: str, *, channel: str, ts: str, msg: blocks.Rendered) -> None:
    try:
        update(deps, channel=channel, ts=ts, text=msg.text, blocks=msg.as_dicts())
    except SlackApiError as exc:
        if not is_permanent(exc):
            raise
        log.warning("%s of #%s not updated: %s", what, req.id, slack_error(exc))


def _render_later(deps: Deps, request_id: int, *, after: float = 0.0) -> None:
    """A render job `after` seconds from now (after an update that timed out: once it has surely
    landed, so that the render's newer state is the last one Slack applies)."""
    with session_scope(deps.engine) as session:
        job_queries.enqueue(session, kind="render", key=f"render:{request_id}:{uuid.uuid4().hex[:12]}",
                            payload={"request_id": request_id}, due_at=deps.now() + timedelta(seconds=after))


def transfer_notice(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    if not payload.get("channel") or not payload.get("ts"):
        return
    req = _load(deps, payload["request_id"])
    source, target = deps.settings.team(payload["from"]), deps.settings.team(payload["to"])
    if source is None or target is None:
        return
    msg = blocks.transferred_away_message(req, source, target, t=deps.directory.team_translator(source))
    _update_or_log(deps, req, "transfer notice", channel=payload["channel"], ts=payload["ts"], msg=msg)
