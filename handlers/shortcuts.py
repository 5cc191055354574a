"""The message shortcut "Ask a team about this message"."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.render import blocks
from bot.render.ids import Callback
from bot.runtime.deps import Deps
from handlers.common import funnel, noop_ack


def register(app: App, deps: Deps) -> None:
    @funnel
    def open_modal(body: dict[str, Any], client: WebClient) -> None:
        channel = (body.get("channel") or {}).get("id")
        message = body.get("message") or {}
        permalink = blocks.message_link(deps.workspace_url, channel, message.get("ts"))
        first_line = (message.get("text") or "").strip().splitlines()[:1]
        t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
        view = blocks.request_modal(t=t, teams=deps.settings.teams, team=None, permalink=permalink,
                                    initial_text=first_line[0] if first_line else "", source_channel=channel)
        client.views_open(trigger_id=body["trigger_id"], view=view)

    app.shortcut(Callback.SHORTCUT.value)(ack=noop_ack, lazy=[open_modal])
