"""Buttons on request messages, DMs and App Home: claim, resolve, reopen, retry, transfer, full text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.i18n import N_, Message
from bot.render import blocks
from bot.render.ids import Action
from bot.runtime.deps import Deps
from bot.services import requests as service
from bot.services.request_forms import full_text
from handlers.common import funnel, noop_ack, safe_ack, tell
from handlers.home import publish_home

MAX_ID = 2**31 - 1
CHANGES: dict[str, Callable[..., service.Outcome]] = {
    Action.CLAIM: service.claim, Action.RESOLVE: service.resolve, Action.REOPEN: service.reopen,
    Action.RETRY_POST: service.retry_post}


def request_id_of(body: dict[str, Any]) -> int | None:
    """The request id a button carries, or None when it is not a plausible id (forged or stale)."""
    try:
        value = str(body["actions"][0]["value"])
    except (KeyError, IndexError, TypeError):
        return None
    if not value.isdigit() or len(value) > 10 or not 0 < int(value) <= MAX_ID:
        return None
    return int(value)


@safe_ack
def change(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    # The state change is stored before Slack gets its ack (a few ms), so a crash right after the
    # ack loses nothing; Slack messages are then brought up to date by outbox jobs.
    request_id = request_id_of(body)
    if request_id is None:
        context["outcome"] = service.Outcome(False, N_("That button is out of date; please use the latest message."))
    else:
        context["outcome"] = CHANGES[action["action_id"]](deps, request_id=request_id, actor=body["user"]["id"])
    ack()


@funnel
def after_change(body: dict[str, Any], client: WebClient, context: BoltContext, deps: Deps) -> None:
    outcome: service.Outcome | None = context.get("outcome")
    if outcome is None:
        return
    outcome.kick(deps)
    if outcome.message:
        tell(client, body, outcome.message, deps.directory.translator_for(body["user"]["id"], now=deps.now()))
    if (body.get("view") or {}).get("type") == "home":
        publish_home(deps, client, body["user"]["id"])


@funnel
def open_modal(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    # views.open must use the trigger_id within 3 s, so the modal opens before anything else
    request_id = request_id_of(body)
    req = service.get_request(deps, request_id) if request_id else None
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    if req is None:
        tell(client, body, N_("That request no longer exists."), t)
        return
    team = deps.settings.team(req.team)
    if action["action_id"] == Action.TRANSFER:
        if team is None or not deps.directory.is_responder(team, body["user"]["id"]):
            name = team.name if team else req.team
            tell(client, body, N_("Only members of {team}'s triage channel can transfer its requests.",
                                  team=name), t)
            return
        view: View | Message = blocks.transfer_modal(req, deps.settings.teams, t=t)
    else:  # the whole text only for the team's responders, the person who asked and admins
        view = full_text(deps, request_id=req.id, user=body["user"]["id"], t=t)  # type: ignore[arg-type]
    if isinstance(view, Message):
        tell(client, body, view, t)
        return
    client.views_open(trigger_id=body["trigger_id"], view=view)


@funnel
def refresh(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    publish_home(deps, client, body["user"]["id"])


def register(app: App) -> None:
    for action_id in CHANGES:
        app.action(action_id)(ack=change, lazy=[after_change])
    for action_id in (Action.TRANSFER, Action.FULL_TEXT):
        app.action(action_id)(ack=noop_ack, lazy=[open_modal])
    app.action(Action.HOME_REFRESH)(ack=noop_ack, lazy=[refresh])
