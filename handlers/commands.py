"""Slash commands: `/ask-<team>` (one per configured team) and a fallback for unknown ones."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.config import Team
from bot.i18n import N_, translator
from bot.render import blocks
from bot.runtime.deps import Deps
from bot.services import requests as service
from bot.services.request_forms import request_modal_for
from handlers.common import funnel, handle_error, safe_ack, tell
from storage.models import Request

ASK = re.compile(r"^/ask-[\w-]*$")


def is_ask(command: dict[str, Any], deps: Deps) -> bool:
    """A team's command, or one that looks like one (answered with the list of teams)."""
    name = command.get("command", "")
    return bool(ASK.match(name)) or deps.settings.team_for_command(name) is not None


@funnel
def open_modal(body: dict[str, Any], client: WebClient, team: Team, deps: Deps) -> None:
    t = deps.directory.translator_for(body.get("user_id"), now=deps.now())
    if not body.get("trigger_id"):
        tell(client, body, N_("Please add your question after `{command}`.", command=team.command), t)
        return
    client.views_open(trigger_id=body["trigger_id"],
                      view=request_modal_for(deps, t=t, team=team, channel=body.get("channel_id")))


@funnel
def confirm_in_their_language(body: dict[str, Any], request: Request, team: Team, acked_in: str, deps: Deps) -> None:
    """First contact: the ack spoke the workspace's language without waiting for users.info; once
    Slack has said which language the person reads, a different one replaces the confirmation."""
    try:
        t = deps.directory.translator_for(body["user_id"], now=deps.now())
    except SlackApiError:  # Slack could not say (a passing error): the confirmation stays as it is
        return
    if t.locale != acked_in and body.get("response_url"):
        msg = blocks.confirmation(request, team, t=t, dm_link=_dm_link(body))
        WebhookClient(body["response_url"], timeout=5).send(text=msg.text, response_type="ephemeral",
                                                            replace_original=True)


@safe_ack
def ask(ack: Ack, command: dict[str, Any], client: WebClient, deps: Deps) -> None:
    # Everything after the ack goes straight to the live pool rather than through a Bolt lazy
    # listener, which would copy the whole request for every command. The ack speaks the person's
    # language when it is cached; it never waits for Slack's users.info.
    user = str(command.get("user_id") or "")
    cached = deps.directory.cached_translator(user, now=deps.now()) if user else None
    t = cached or translator(deps.settings.workspace.locale)
    team = deps.settings.team_for_command(command.get("command", ""))
    if team is None:
        ack(text=blocks.unknown_command(command.get("command", ""), deps.settings.teams, t=t))
        return
    text = (command.get("text") or "").strip()
    if not text:
        ack()
        deps.outbox.live.submit(open_modal, body=command, client=client, team=team, deps=deps)
        return
    form = service.RequestForm(team=team.slug, text=text, channel=command.get("channel_id"))
    try:
        outcome = service.create_request(deps, form, requester_id=user, response_url=command.get("response_url"))
    except service.InputError as exc:
        ack(text=t.render(exc.message))
        return
    # one line of text (mrkdwn, as Slack shows it) rather than the same line in a block: no Block Kit to serialise
    ack(text=blocks.confirmation(outcome.request, team, t=t, dm_link=_dm_link(command)).text)  # type: ignore[arg-type]
    # posts it to the triage channel and DMs its status; errors reach the requester like any other
    outcome.start(deps, on_error=lambda exc: handle_error(exc, command, client))
    if cached is None:
        deps.outbox.live.submit(confirm_in_their_language, body=command, request=outcome.request, team=team,
                                acked_in=t.locale, deps=deps)


def _dm_link(command: dict[str, Any]) -> str | None:
    return blocks.app_dm_link(command.get("team_id"), command.get("api_app_id"))


def register(app: App) -> None:
    app.command(re.compile(".*"), matchers=[is_ask])(ask)
