"""Posting that is safe to retry: messages carry metadata naming what they are, so a retry after
an uncertain failure (a crash or timeout after Slack accepted the post) finds the earlier message
instead of posting it twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.client import ChannelPacer, slack_error

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str
    reconciled: bool = False


def find_posted(client: WebClient, channel: str, event_type: str, ref: str, *, limit: int = 100) -> Posted | None:
    """Look through the channel's recent history for our message with this metadata reference."""
    try:
        resp = client.conversations_history(channel=channel, limit=limit, include_all_metadata=True)
    except SlackApiError as exc:
        log.info("history of %s unavailable for reconciliation: %s", channel, slack_error(exc))
        return None
    for message in resp.get("messages") or []:
        meta = message.get("metadata") or {}
        if meta.get("event_type") == event_type and (meta.get("event_payload") or {}).get("ref") == ref:
            return Posted(channel=channel, ts=message["ts"], reconciled=True)
    return None


def post_once(client: WebClient, *, channel: str, text: str, blocks: list[dict[str, Any]], event_type: str,
              ref: str, reconcile: bool, known_channel: str | None = None,
              pacer: ChannelPacer | None = None) -> Posted:
    """chat.postMessage with metadata; with `reconcile`, first look for a copy posted by an earlier try.

    `channel` may be a user id (the app's DM); `known_channel` is the DM's D… id when already known.
    """
    if reconcile:
        look_in = known_channel or (channel if channel[:1] in "CGD" else None)
        if look_in is None:
            try:
                look_in = client.conversations_open(users=channel)["channel"]["id"]
            except SlackApiError:
                look_in = None
        found = find_posted(client, look_in, event_type, ref) if look_in else None
        if found:
            log.info("reconciled %s %s: already posted as %s", event_type, ref, found.ts)
            return found
    if pacer is not None:
        pacer.wait(known_channel or channel)
    # `blocks` are JSON-ready dicts already (`Rendered.as_dicts`): `api_call` sends them as they are, where
    # `chat_postMessage` would first look for Block Kit objects to convert (~10 % of a call's CPU).
    resp = client.api_call("chat.postMessage", json={
        "channel": channel, "text": text, "blocks": blocks, "unfurl_links": False,
        "metadata": {"event_type": event_type, "event_payload": {"ref": ref}}})
    return Posted(channel=resp["channel"], ts=resp["ts"])
