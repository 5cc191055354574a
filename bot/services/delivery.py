"""Slack writes from jobs, safe to retry.

Every message askdesk posts carries metadata naming what it is (`event_type` + `ref`), so a retry
after an uncertain failure (a timeout, a 5xx after Slack stored the message, a crash mid-call)
first looks for the copy an earlier try may have left instead of posting a second one. Because a
slow earlier try can land after that look, a retry that posts looks once more right after posting
(the oldest copy wins, the others are deleted) and leaves a `sweep` job that looks again once any
earlier try has surely landed or died. The copy the database points to is always the oldest.

Calls go through `call`, which keeps Slack's rate limits: a channel (or method) that answered 429
is left alone until its Retry-After has passed, and the job waits for it without counting a failure.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.runtime.deps import Deps
from bot.runtime.outbox import RetryLater
from bot.slack.client import is_permanent, is_uncertain, retry_after, slack_error
from storage import jobs as job_queries
from storage.jobs import ClaimedJob
from storage.session import session_scope

log = logging.getLogger(__name__)
PER_CHANNEL = frozenset({"chat.postMessage", "chat.update", "chat.delete", "chat.postEphemeral"})
# A call Slack has not answered within this long has landed or died (the client gives up after 10 s):
# the `sweep` after a retried post looks this long after it.
SWEEP_AFTER = timedelta(seconds=60)
SWEEP = "sweep"  # the job kind
HISTORY_PAGES, PAGE = 10, 200  # how far back a look for an earlier copy goes (newest first)
CLOCK_SKEW = 60.0  # seconds of margin between our clock and Slack's `ts`


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    reconciled: bool = False  # found: posted by an earlier try


def call(deps: Deps, method: str, channel: str, args: dict[str, Any]) -> SlackResponse:
    """One Web API call from a job (JSON body). A channel (for chat.*; else the method) that Slack
    rate-limited is not called before its Retry-After has passed: the job waits for it, which is
    not a failure (`RetryLater`). A new 429 starts such a wait for every job of that channel."""
    pace = channel if method in PER_CHANNEL else method
    held = deps.pacer.held_for(pace, deps.now())
    if held > 0:  # spread out, so the jobs waiting for this channel do not all call again at once
        raise RetryLater(f"ratelimited ({method} on {pace})", after=held + random.uniform(0, 2), failure=False)
    # Posts and updates are retried by the outbox only: a post after looking for the copy an uncertain
    # try may have left, an update (after a timeout) once the late try has surely landed, so that it
    # cannot land after a newer state. Reads and deletes can be repeated as they are, so their client
    # also retries 5xx answers and timeouts in place.
    client = deps.send_client if method in ("chat.postMessage", "chat.update") else deps.client
    try:
        if method.startswith("conversations."):  # form arguments, as slack_sdk sends them
            verb = "POST" if method == "conversations.open" else "GET"
            return client.api_call(method, http_verb=verb, params=args)
        return client.api_call(method, json=args)
    except SlackApiError as exc:
        wait = retry_after(exc)
        if wait is not None:
            deps.pacer.hold(pace, deps.now() + timedelta(seconds=wait))
        raise


def _refused(exc: SlackApiError) -> bool:
    """A 5xx that is not a gateway timeout: Slack answered, so the call will not take effect later."""
    return exc.response.status_code >= 500 and not is_uncertain(exc)


def update(deps: Deps, *, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]) -> None:
    """chat.update; a 5xx answer is tried again at once (twice at most): the same update again is
    harmless, and nothing older can land after it (unlike a timed-out one, left to the outbox)."""
    args = {"channel": channel, "ts": ts, "text": text, "blocks": blocks}
    for again in (True, True, False):
        try:
            call(deps, "chat.update", channel, args)
            return
        except SlackApiError as exc:
            if not (again and _refused(exc)):
                raise


_DM_IDS: dict[str, str] = {}  # user id -> id of the app's DM with them (it never changes)


def _dm_id(deps: Deps, user: str) -> str:
    if user not in _DM_IDS:
        if len(_DM_IDS) > 100_000:
            _DM_IDS.clear()
        _DM_IDS[user] = str(call(deps, "conversations.open", user, {"users": user})["channel"]["id"])
    return _DM_IDS[user]


def _copies(deps: Deps, channel: str, event_type: str, ref: str, *, thread_ts: str | None,
            since: float | None) -> list[str]:
    """The `ts` of every message in `channel` (or in the thread `thread_ts`) with this metadata,
    oldest first. A transient Slack error is raised (the job retries); a permanent one means there
    is nothing to find (the post itself will fail the same way)."""
    found: list[str] = []
    args: dict[str, Any] = {"channel": channel, "limit": PAGE, "include_all_metadata": "true"}
    if thread_ts:
        args["ts"] = thread_ts
    if since is not None:
        args["oldest"] = f"{max(0.0, since - CLOCK_SKEW):.6f}"
    method = "conversations.replies" if thread_ts else "conversations.history"
    for _ in range(HISTORY_PAGES):
        try:
            resp = call(deps, method, channel, args)
        except SlackApiError as exc:
            if not is_permanent(exc) and slack_error(exc) != "thread_not_found":
                raise
            log.info("%s of %s unavailable for reconciliation: %s", method, channel, slack_error(exc))
            break
        for message in resp.get("messages") or []:
            meta = message.get("metadata") or {}
            if meta.get("event_type") == event_type and (meta.get("event_payload") or {}).get("ref") == ref:
                found.append(str(message["ts"]))
        cursor = (resp.get("response_metadata") or {}).get("next_cursor")
        if not resp.get("has_more") or not cursor:
            break
        args["cursor"] = cursor
    return sorted(set(found), key=Decimal)


def keep_oldest(deps: Deps, channel: str, event_type: str, ref: str, *, thread_ts: str | None = None,
                since: float | None = None) -> Posted | None:
    """The oldest copy of this message, after deleting any later ones; None when there is none."""
    copies = _copies(deps, channel, event_type, ref, thread_ts=thread_ts, since=since)
    for extra in copies[1:]:
        try:
            call(deps, "chat.delete", channel, {"channel": channel, "ts": extra})
            log.warning("deleted a duplicate of %s %s in %s (%s; kept %s)", event_type, ref, channel, extra, copies[0])
        except SlackApiError as exc:
            if not is_permanent(exc):
                raise
    return Posted(channel=channel, ts=copies[0], reconciled=True) if copies else None


def post_once(deps: Deps, *, channel: str, text: str, blocks: list[dict[str, Any]], event_type: str, ref: str,
              reconcile: bool, since: datetime | None = None, known_channel: str | None = None,
              thread_ts: str | None = None, paced: bool = False) -> Posted:
    """chat.postMessage with metadata (`event_type`, `ref`). With `reconcile` (an earlier try may
    have posted it), look for that copy first, and after posting look again (see module doc).

    `channel` may be a user id (the app's DM; `known_channel` is its D… id when known); `since`:
    no earlier try can be older (the job's creation); `paced`: at most one post a second per channel.
    """
    look_in: str | None = None
    stamp = since.timestamp() if since is not None else None
    if reconcile:
        look_in = known_channel or (channel if channel[:1] in "CGD" else _dm_id(deps, channel))
        found = keep_oldest(deps, look_in, event_type, ref, thread_ts=thread_ts, since=stamp)
        if found:
            log.info("reconciled %s %s: already posted as %s", event_type, ref, found.ts)
            return found
        sweep_later(deps, channel=look_in, event_type=event_type, ref=ref, thread_ts=thread_ts, since=stamp)
    if paced:
        deps.pacer.wait(known_channel or channel)
    # `blocks` are JSON-ready dicts already (bot.render.blockjson): sent as they are.
    args: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False,
                            "metadata": {"event_type": event_type, "event_payload": {"ref": ref}}}
    if blocks:
        args["blocks"] = blocks
    if thread_ts:
        args["thread_ts"] = thread_ts
    for again in (True, True, False):
        try:
            resp = call(deps, "chat.postMessage", known_channel or channel, args)
            break
        except SlackApiError as exc:  # a 5xx: Slack may have stored it anyway; look, and post if it did not
            if not (again and _refused(exc)):
                raise
            look_in = look_in or known_channel or (channel if channel[:1] in "CGD" else _dm_id(deps, channel))
            found = keep_oldest(deps, look_in, event_type, ref, thread_ts=thread_ts, since=stamp)
            if found:
                return found
    posted = Posted(channel=resp["channel"], ts=resp["ts"])
    if look_in is not None:  # a slow earlier try may have landed while this one was posted
        oldest = keep_oldest(deps, look_in, event_type, ref, thread_ts=thread_ts, since=stamp)
        if oldest is not None and oldest.ts != posted.ts:
            return oldest
    return posted


def sweep_later(deps: Deps, *, channel: str, event_type: str, ref: str, thread_ts: str | None = None,
                since: float | None = None) -> None:
    """Have this message's copies swept once any earlier try has landed or died: one `sweep` job per
    message, due SWEEP_AFTER after its latest post (so a post retried all day leaves one job)."""
    with session_scope(deps.engine) as session:
        job_queries.pending_not_before(
            session, kind=SWEEP, key=f"sweep:{event_type}:{ref}",
            payload={"channel": channel, "event_type": event_type, "ref": ref, "thread_ts": thread_ts, "since": since},
            due_at=deps.now() + SWEEP_AFTER)


def sweep(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Delete copies of a message that a slow or killed earlier try left behind (keeps the oldest,
    which is the one stored)."""
    keep_oldest(deps, payload["channel"], payload["event_type"], payload["ref"], thread_ts=payload.get("thread_ts"),
                since=payload.get("since"))
