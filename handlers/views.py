"""Modal submissions: a new request (from a command or the message shortcut) and transfers."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.i18n import N_
from bot.render.ids import INPUT, Block, Callback
from bot.runtime.deps import Deps
from bot.services import requests as service
from bot.services.request_forms import TAMPERED, FormOrigin, form_origin
from handlers.actions import after_change
from handlers.common import handle_error, safe_ack


def field(view: dict[str, Any], block_id: str) -> str | None:
    """The value of one input in `view.state.values`, whatever the element type."""
    element = ((view.get("state") or {}).get("values") or {}).get(block_id, {}).get(INPUT) or {}
    if element.get("selected_option"):
        return element["selected_option"].get("value")
    value = element.get("value")
    return value.strip() if isinstance(value, str) else None


def request_form(view: dict[str, Any], origin: FormOrigin) -> service.RequestForm:
    """The submitted request modal (`bot.render.blocks.request_modal`): its inputs and its sealed origin."""
    summary, details = field(view, Block.SUMMARY) or "", field(view, Block.DETAILS) or ""
    return service.RequestForm(
        team=origin.team or field(view, Block.TEAM), text=summary + (f"\n\n{details}" if details else ""),
        summary=summary, category=field(view, Block.CATEGORY), urgency=field(view, Block.URGENCY) or "normal",
        permalink=origin.permalink, channel=origin.channel)


@safe_ack
def request_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, deps: Deps) -> None:
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    origin = form_origin(deps, view.get("private_metadata"), user=body["user"]["id"])
    if origin is None:  # not sealed by askdesk (changed on its way back): refused, logged, nothing saved
        ack(response_action="errors", errors={Block.SUMMARY: t.render(TAMPERED)})
        return
    try:
        outcome = service.create_request(deps, request_form(view, origin), requester_id=body["user"]["id"])
    except service.InputError as exc:
        ack(response_action="errors", errors={name: t.render(text)[:150] for name, text in exc.errors.items()})
        return
    ack()
    outcome.start(deps, on_error=lambda exc: handle_error(exc, body, client))


@safe_ack
def transfer_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    target = field(view, Block.TRANSFER_TEAM)
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    if not target or deps.settings.team(target) is None:
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


def register(app: App) -> None:
    app.view(Callback.REQUEST_MODAL)(request_ack)
    app.view(Callback.TRANSFER_MODAL)(ack=transfer_ack, lazy=[after_change])
