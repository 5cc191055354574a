"""Events API: thread replies in triage channels (first response)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Deps
from bot.services import requests as service
from handlers.common import funnel, noop_ack


def is_thread_reply(event: dict[str, Any]) -> bool:
    subtype = event.get("subtype")
    return (bool(event.get("thread_ts")) and event.get("thread_ts") != event.get("ts")
            and subtype in (None, "thread_broadcast") and not event.get("bot_id") and bool(event.get("user")))


def register(app: App, deps: Deps) -> None:
    triage_channels = {t.channel for t in deps.settings.teams}

    @funnel
    def on_message(body: dict[str, Any], client: WebClient, event: dict[str, Any]) -> None:
        if event.get("channel") in triage_channels and is_thread_reply(event):
            service.thread_reply(deps, channel=event["channel"], thread_ts=event["thread_ts"], user=event["user"])

    app.event("message")(ack=noop_ack, lazy=[on_message])
