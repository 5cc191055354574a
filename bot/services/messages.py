"""Jobs that bring Slack up to date with stored request state: post, re-render, transfer notices."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.render import blocks
from bot.runtime.deps import Deps
from bot.runtime.outbox import PermanentFailure
from bot.services.delivery import post_once
from bot.slack.client import is_permanent, slack_error
from storage import requests as queries
from storage.group_commit import group_commit
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import session_scope

log = logging.getLogger(__name__)


def _load(deps: Deps, request_id: int) -> Request:
    with session_scope(deps.engine) as session:
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


def sync_dm(deps: Deps, req: Request, *, reconcile: bool = False) -> tuple[str, str] | None:
    """Post or update the requester's DM status message from stored state.

    Returns (channel, ts) when a new message was posted; the caller stores it.
    """
    team = deps.settings.team(req.team)
    if team is None:
        return None
    t = deps.directory.translator_for(req.requester_id, now=deps.now())
    msg = blocks.dm_status_message(req, team, t=t, triage_link=_triage_link(deps, req))
    if req.dm_ts and req.dm_channel:
        deps.client.chat_update(channel=req.dm_channel, ts=req.dm_ts, text=msg.text, blocks=msg.as_dicts())
        return None
    posted = post_once(deps.send_client, channel=req.requester_id, text=msg.text, blocks=msg.as_dicts(),
                       event_type="askdesk_request_dm", ref=str(req.id), reconcile=reconcile)
    return posted.channel, posted.ts


def _sync_dm_and_save(deps: Deps, req: Request) -> None:
    new_dm = sync_dm(deps, req)
    if new_dm:
        _save(deps, req.id, dm_channel=new_dm[0], dm_ts=new_dm[1])  # type: ignore[arg-type]


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
    (retries reconcile through message metadata, so nothing is posted twice).
    """
    req = job.preloaded if isinstance(job.preloaded, Request) else _load(deps, payload["request_id"])
    team = deps.settings.team(req.team)
    if team is None:
        raise PermanentFailure(f"team {req.team} is not configured")
    now, retry = deps.now(), job.attempts > 1
    if not req.department:
        req.department = deps.directory.department_of(req.requester_id, now=now)
    new_post = None
    if req.triage_channel != team.channel or not req.triage_ts:
        origin = deps.settings.team(payload["from"]) if payload.get("from") else None
        t = deps.directory.team_translator(team)
        msg = blocks.triage_message(req, team, t=t, origin_team=origin)
        new_post = post_once(deps.send_client, channel=team.channel, text=msg.text, blocks=msg.as_dicts(),
                             event_type="askdesk_request", ref=f"{req.id}:{req.transfer_count}", reconcile=retry)
        req.triage_channel, req.triage_ts = new_post.channel, new_post.ts
        if (payload.get("note") or payload.get("by")) and not new_post.reconciled:
            text = blocks.transferred_here_note(payload["by"], payload.get("note") or "", t=t)
            deps.client.chat_postMessage(channel=new_post.channel, thread_ts=new_post.ts, text=text)
    req.post_state, req.post_error = "posted", None
    new_dm = sync_dm(deps, req, reconcile=retry)

    record = queries.PostRecord(
        request_id=req.id, department=req.department, channel=req.triage_channel,  # type: ignore[arg-type]
        ts=req.triage_ts, dm=new_dm, new_post=new_post is not None, at=now, job_id=job.id, owner=deps.instance_id)
    team_now = group_commit(deps.engine, queries.record_posts, record)
    if team_now is None:
        raise PermanentFailure(f"request {req.id} is gone")
    req.team = team_now
    job.status = "done"


def post_request_failed(deps: Deps, payload: dict[str, Any], reason: str) -> None:
    """The request stays saved; the requester is told clearly and can retry."""
    req = _load(deps, payload["request_id"])
    with session_scope(deps.engine) as session:
        fresh = queries.get(session, req.id, for_update=True)  # type: ignore[arg-type]
        assert fresh is not None
        fresh.post_state, fresh.post_error = "failed", reason[:200]  # shown through blocks.post_error_text
        queries.add_event(session, fresh, "post_failed", actor=None, at=deps.now(), detail={"error": reason})
        session.add(fresh)
        req = fresh
    team = deps.settings.team(req.team)
    if team is not None:
        t = deps.directory.translator_for(req.requester_id, now=deps.now())
        _confirm(deps, req, blocks.notice(t._(
            ":warning: Your request *#{id}* is saved, but I could not post it to {team} ({error}). Nothing is "
            "lost: press *Retry* in my DM once the channel is fixed.", id=req.id, team=blocks.escape(team.name),
            error=blocks.post_error_text(reason, t))))
    try:
        _sync_dm_and_save(deps, req)
    except SlackApiError as exc:
        log.error("could not tell %s about failed post of #%s: %s", req.requester_id, req.id, slack_error(exc))


def render(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    req = _load(deps, payload["request_id"])
    team = deps.settings.team(req.team)
    if team is None:
        return
    if req.triage_channel == team.channel and req.triage_ts:
        origin = deps.settings.team(req.origin_team)
        msg = blocks.triage_message(req, team, t=deps.directory.team_translator(team), origin_team=origin)
        try:
            deps.client.chat_update(channel=req.triage_channel, ts=req.triage_ts, text=msg.text,
                                    blocks=msg.as_dicts())
        except SlackApiError as exc:
            if not is_permanent(exc):
                raise
            log.warning("triage message of #%s not updated: %s", req.id, slack_error(exc))
    if req.dm_ts or req.post_state != "pending":
        _sync_dm_and_save(deps, req)


def transfer_notice(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    if not payload.get("channel") or not payload.get("ts"):
        return
    req = _load(deps, payload["request_id"])
    source, target = deps.settings.team(payload["from"]), deps.settings.team(payload["to"])
    if source is None or target is None:
        return
    msg = blocks.transferred_away_message(req, source, target, t=deps.directory.team_translator(source))
    deps.client.chat_update(channel=payload["channel"], ts=payload["ts"], text=msg.text, blocks=msg.as_dicts())
