"""Events API: thread replies in triage channels (first response) and requesters' answers in their DM
status threads (waiting on the requester)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.runtime.deps import Deps
from bot.services import questions
from bot.services import requests as service
from handlers.common import event_id_of, safe_ack


def is_thread_reply(event: dict[str, Any]) -> bool:
    subtype, thread_ts, user = event.get("subtype"), event.get("thread_ts"), event.get("user")
    return (isinstance(thread_ts, str) and bool(thread_ts) and thread_ts != event.get("ts")
            and subtype in (None, "thread_broadcast") and not event.get("bot_id")
            and isinstance(user, str) and bool(user))


@safe_ack
def on_message(ack: Ack, body: dict[str, Any], event: dict[str, Any], deps: Deps) -> None:
    # a few ms of database work, stored before the ack: an event is not delivered again once acked
    channel = event.get("channel")
    if (isinstance(channel, str) and any(t.channel == channel for t in deps.settings.teams)
            and is_thread_reply(event)):
        service.thread_reply(deps, channel=event["channel"], thread_ts=event["thread_ts"], user=event["user"],
                             event_id=event_id_of(body))
    elif isinstance(channel, str) and event.get("channel_type") == "im" and is_thread_reply(event):
        # the requester answering a question in their DM status thread
        outcome = questions.dm_thread_reply(deps, channel=channel, thread_ts=event["thread_ts"], user=event["user"],
                                            text=str(event.get("text") or ""), event_id=event_id_of(body))
        ack()
        if outcome.jobs:  # relay the answer now (the clock would, within seconds)
            deps.outbox.live.submit(deps.outbox.kick, outcome.jobs)
        return
    ack()


def register(app: App) -> None:
    app.event("message")(on_message)
