"""The message shortcut "Ask a team about this message"."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.render.ids import Callback
from bot.runtime.deps import Deps
from bot.services.request_forms import request_modal_for
from bot.services.requests import first_line
from handlers.common import funnel, noop_ack


@funnel
def open_modal(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    channel = (body.get("channel") or {}).get("id")
    message = body.get("message") or {}
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    view = request_modal_for(deps, t=t, team=None, channel=channel, message_ts=message.get("ts"),
                             initial_text=first_line(message.get("text") or ""))
    client.views_open(trigger_id=body["trigger_id"], view=view)


def register(app: App) -> None:
    app.shortcut(Callback.SHORTCUT)(ack=noop_ack, lazy=[open_modal])
