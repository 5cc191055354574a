"""The message shortcut "Ask a team about this message"."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.render import blocks
from bot.render.ids import Callback
from bot.runtime.deps import Deps
from bot.services.requests import first_line
from handlers.common import funnel, noop_ack


@funnel
def open_modal(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    channel = (body.get("channel") or {}).get("id")
    message = body.get("message") or {}
    permalink = blocks.message_link(deps.workspace_url, channel, message.get("ts"))
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    view = blocks.request_modal(t=t, teams=deps.settings.teams, team=None, permalink=permalink,
                                initial_text=first_line(message.get("text") or ""), source_channel=channel)
    client.views_open(trigger_id=body["trigger_id"], view=view)


def register(app: App) -> None:
    app.shortcut(Callback.SHORTCUT)(ack=noop_ack, lazy=[open_modal])
