"""Assign, ask the requester, the requester's Reply, and App Home availability (issue 15)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.config import Team
from bot.i18n import N_, Translator
from bot.render import sla_blocks
from bot.render.blocks import mention
from bot.render.ids import Action, Block, Callback
from bot.runtime.deps import Deps
from bot.services import assignment, questions
from bot.services import requests as service
from handlers.actions import request_id_of
from handlers.common import funnel, noop_ack, safe_ack, tell
from handlers.home import publish_home
from handlers.views import field
from storage.models import Request


@funnel
def open_assign(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    request_id = request_id_of(body)
    req = service.get_request(deps, request_id) if request_id else None
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    if req is None:
        tell(client, body, N_("That request no longer exists."), t)
        return
    # a trigger_id lasts 3 s: open at once, then fill in the responders' names
    opened = client.views_open(trigger_id=body["trigger_id"], view=sla_blocks.loading_modal(req, t=t))
    found = assignment.picker(deps, req=req, actor=body["user"]["id"])
    view = sla_blocks.assign_modal(req, *found, t=t) if isinstance(found, tuple) else \
        sla_blocks.notice_modal(req, text=t.render(found), t=t)
    client.views_update(view_id=opened["view"]["id"], view=view)


def _clicked(body: dict[str, Any], deps: Deps) -> tuple[Request | None, Team | None, Translator]:
    """The request a button names (None when gone), its team, and the clicker's translator."""
    request_id = request_id_of(body)
    req = service.get_request(deps, request_id) if request_id else None
    team = deps.settings.team(req.team) if req else None
    return req, team, deps.directory.translator_for(body["user"]["id"], now=deps.now())


@funnel
def open_ask(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    req, team, t = _clicked(body, deps)
    if req is None or team is None:
        tell(client, body, N_("That request no longer exists."), t)
    elif not service.may_handle(deps, team, body["user"]["id"]):
        tell(client, body, N_("Only {team}'s responders and leads can ask about its requests.", team=team.name), t)
    elif req.status == "resolved":
        tell(client, body, N_("#{id} is resolved; reopen it to ask more.", id=req.id), t)
    else:
        client.views_open(trigger_id=body["trigger_id"], view=sla_blocks.ask_modal(req, t=t))


@funnel
def open_reply(body: dict[str, Any], client: WebClient, deps: Deps) -> None:
    req, team, t = _clicked(body, deps)
    if req is None or team is None:
        tell(client, body, N_("That request no longer exists."), t)
    elif body["user"]["id"] != req.requester_id:
        tell(client, body, N_("Only {user}, who asked, can answer about #{id}.", user=mention(req.requester_id),
                              id=req.id), t)
    else:
        client.views_open(trigger_id=body["trigger_id"], view=sla_blocks.reply_modal(req, team, t=t))


@funnel
def toggle_availability(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    user = body["user"]["id"]
    outcome = assignment.set_available(deps, team_slug=str(action.get("value") or ""), user=user,
                                       available=action["action_id"] == Action.AVAILABLE)
    if not outcome.ok and outcome.message:
        tell(client, body, outcome.message, deps.directory.translator_for(user, now=deps.now()))
    publish_home(deps, client, user)


SUBMISSIONS: dict[str, tuple[str, Callable[..., service.Outcome]]] = {
    Callback.ASSIGN_MODAL: (Block.ASSIGNEE, lambda deps, rid, user, value: assignment.assign(
        deps, request_id=rid, actor=user, assignee=value)),
    Callback.ASK_MODAL: (Block.QUESTION, lambda deps, rid, user, value: questions.ask(
        deps, request_id=rid, actor=user, question=value)),
    Callback.REPLY_MODAL: (Block.ANSWER, lambda deps, rid, user, value: questions.reply(
        deps, request_id=rid, user=user, text=value)),
}


@safe_ack
def submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    block, run = SUBMISSIONS[view["callback_id"]]
    request_id = str(view.get("private_metadata") or "")
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    if not request_id.isdigit() or len(request_id) > 10:
        ack(response_action="errors", errors={block: t._("This form is out of date.")})
        return
    outcome = run(deps, int(request_id), body["user"]["id"], field(view, block) or "")
    if not outcome.ok:
        ack(response_action="errors", errors={block: t.render(outcome.message or N_("Not allowed."))[:150]})
        return
    if not outcome.jobs and outcome.message:  # done already (a double click): say so instead of closing
        title = str((view.get("title") or {}).get("text") or "askdesk")
        ack(response_action="update", view=sla_blocks.done_modal(title, text=t.render(outcome.message), t=t))
        return
    context["outcome"] = outcome
    ack()


@funnel
def after_submit(context: BoltContext, deps: Deps) -> None:
    outcome: service.Outcome | None = context.get("outcome")
    if outcome is not None:
        outcome.kick(deps)


def register(app: App) -> None:
    app.action(Action.ASSIGN)(ack=noop_ack, lazy=[open_assign])
    app.action(Action.ASK_REQUESTER)(ack=noop_ack, lazy=[open_ask])
    app.action(Action.REPLY)(ack=noop_ack, lazy=[open_reply])
    for action_id in (Action.AVAILABLE, Action.AWAY):
        app.action(action_id)(ack=noop_ack, lazy=[toggle_availability])
    for callback_id in SUBMISSIONS:
        app.view(callback_id)(ack=submit, lazy=[after_submit])
