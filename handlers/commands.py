"""Slash commands: `/ask-<team>` (one per configured team) and a fallback for unknown ones."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot import blocks
from bot.runtime import Deps
from bot.services import requests as service
from handlers.common import funnel, safe_ack, tell


def register(app: App, deps: Deps) -> None:
    settings = deps.settings

    @safe_ack
    def ask_ack(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
        team = settings.team_for_command(command.get("command", ""))
        if team is None:
            ack(text=blocks.unknown_command(command.get("command", ""), settings.teams))
            return
        text = (command.get("text") or "").strip()
        if not text:
            context["open_modal_for"] = team.slug
            ack()
            return
        try:
            outcome = service.create_request(deps, team_slug=team.slug, requester_id=command["user_id"],
                                             text=text, source_channel=command.get("channel_id"),
                                             response_url=command.get("response_url"))
        except service.InputError as exc:
            ack(text=str(exc))
            return
        context["jobs"] = outcome.jobs
        msg = blocks.confirmation(outcome.request, team, link=None)  # type: ignore[arg-type]
        ack(text=msg.text, blocks=msg.as_dicts())

    @funnel
    def ask_lazy(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        slug = context.get("open_modal_for")
        if slug:
            team = settings.team(slug)
            view = blocks.request_modal(teams=settings.teams, team=team, source_channel=body.get("channel_id"))
            if not body.get("trigger_id"):
                tell(client, body, f"Please add your question after `{team.command if team else '/ask'}`.")
                return
            client.views_open(trigger_id=body["trigger_id"], view=view)
            return
        deps.outbox.kick(context.get("jobs") or [])  # type: ignore[attr-defined]

    commands = [t.command for t in settings.teams]
    pattern = re.compile("^(" + "|".join(re.escape(c) for c in commands) + r"|/ask-[\w-]*)$")
    app.command(pattern)(ack=ask_ack, lazy=[ask_lazy])
