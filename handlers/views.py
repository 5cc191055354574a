"""Modal submissions: a new request (from a command or the message shortcut) and transfers."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.i18n import N_
from bot.render.ids import INPUT, Block, Callback
from bot.runtime.deps import Deps
from bot.services import requests as service
from handlers.common import funnel, handle_error, safe_ack, tell


def field(view: dict[str, Any], block_id: str) -> str | None:
    """The value of one input in `view.state.values`, whatever the element type."""
    element = ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(INPUT) or {}
    if element.get("selected_option"):
        return element["selected_option"].get("value")
    value = element.get("value")
    return value.strip() if isinstance(value, str) else None


def register(app: App, deps: Deps) -> None:
    settings = deps.settings

    @safe_ack
    def request_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        if not isinstance(meta, dict):
            meta = {}
        slug = meta.get("team") or field(view, Block.TEAM)
        summary = field(view, Block.SUMMARY) or ""
        details = field(view, Block.DETAILS) or ""
        t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
        errors: dict[str, str] = {}
        if not summary:
            errors[Block.SUMMARY] = t._("Please write a one-line summary.")
        if not slug or settings.team(slug) is None:
            errors[Block.TEAM] = t._("Please pick a team.")
        if errors:
            ack(response_action="errors", errors=errors)
            return
        text = summary + (f"\n\n{details}" if details else "")
        try:
            outcome = service.create_request(
                deps, team_slug=slug, requester_id=body["user"]["id"], text=text, summary=summary,
                category=field(view, Block.CATEGORY), urgency=field(view, Block.URGENCY) or "normal",
                source_permalink=meta.get("permalink"), source_channel=meta.get("channel"))
        except service.InputError as exc:
            ack(response_action="errors", errors={Block.SUMMARY: t.render(exc.message)[:150]})
            return
        ack()
        outcome.start(deps, on_error=lambda exc: handle_error(exc, body, client))

    app.view(Callback.REQUEST_MODAL.value)(request_ack)

    @safe_ack
    def transfer_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext) -> None:
        target = field(view, Block.TRANSFER_TEAM)
        t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
        if not target or settings.team(target) is None:
            ack(response_action="errors", errors={Block.TRANSFER_TEAM: t._("Please pick a team.")})
            return
        request_id = str(view.get("private_metadata") or "")
        if not request_id.isdigit():
            ack(response_action="errors", errors={Block.TRANSFER_TEAM: t._("This form is out of date.")})
            return
        outcome = service.transfer(deps, request_id=int(request_id), actor=body["user"]["id"], to_team=target,
                                   note=field(view, Block.TRANSFER_NOTE))
        if not outcome.ok:
            problem = t.render(outcome.message or N_("Not allowed."))
            ack(response_action="errors", errors={Block.TRANSFER_TEAM: problem[:150]})
            return
        context["outcome"] = outcome
        ack()

    @funnel
    def transfer_lazy(body: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        outcome: service.Outcome | None = context.get("outcome")
        if outcome is not None:
            outcome.kick(deps)
            if outcome.message:
                tell(client, body, outcome.message, deps.directory.translator_for(body["user"]["id"], now=deps.now()))

    app.view(Callback.TRANSFER_MODAL.value)(ack=transfer_ack, lazy=[transfer_lazy])
