"""Needs surveys (issue 17): answers to the survey DM, and improvement actions from the report."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.i18n import N_, Message, Translator
from bot.render.ids import Action, Block, Callback
from bot.render.needs_blocks import parse_needs_form
from bot.render.needs_report_blocks import parse_action_form, parse_done_detail, parse_round_metadata
from bot.runtime.deps import Deps
from bot.services import needs_actions, needs_invites
from handlers.common import funnel, noop_ack, safe_ack, tell

SCORE_ACTION = re.compile(rf"^{Action.NEEDS_SCORE.value}_([1-5])$")
STALE = N_("That button is out of date.")


def _id(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, str) and raw.isdigit() and len(raw) < 12 else None


def _reader(deps: Deps, body: dict[str, Any]) -> Translator:
    user = body.get("user_id") or (body.get("user") or {}).get("id")
    return deps.directory.translator_for(user, now=deps.now())


def _tell(deps: Deps, client: WebClient, body: dict[str, Any], message: Message) -> None:
    tell(client, body, message, _reader(deps, body))


def _open_or_tell(deps: Deps, client: WebClient, body: dict[str, Any], view: Any) -> None:
    if isinstance(view, Message):
        _tell(deps, client, body, view)
    else:
        client.views_open(trigger_id=body["trigger_id"], view=view)


def _errors(deps: Deps, body: dict[str, Any], block: str, message: Message | None) -> dict[str, str]:
    """A modal's error under `block`, in the reader's language (Slack shows at most 150 characters)."""
    return {block: _reader(deps, body).render(message or N_("Not saved."))[:150]}


def _state(view: dict[str, Any]) -> dict[str, Any]:
    return (view.get("state") or {}).get("values") or {}


@funnel
def on_score(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    match, invitation = SCORE_ACTION.match(action.get("action_id", "")), _id(action.get("value"))
    if match is None or invitation is None:
        _tell(deps, client, body, STALE)
        return
    outcome = needs_invites.answer(deps, invitation_id=invitation, user=body["user"]["id"],
                                   values={"overall": int(match.group(1))})
    deps.outbox.kick(outcome.jobs)
    if outcome.message:
        _tell(deps, client, body, outcome.message)


@funnel
def on_more(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    invitation = _id(action.get("value"))
    view = needs_invites.modal_for(deps, invitation_id=invitation, user=body["user"]["id"]) if invitation else STALE
    _open_or_tell(deps, client, body, view)


@safe_ack
def survey_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    form = parse_needs_form(_state(view))
    if form.empty:
        ack(response_action="errors", errors=_errors(deps, body, Block.NEEDS_OBSTACLE,
                                                     N_("Pick a score or write an answer — or press Cancel.")))
        return
    outcome = needs_invites.answer(deps, invitation_id=_id(view.get("private_metadata")) or 0,
                                   user=body["user"]["id"], values=form.values())
    if not outcome.ok:
        ack(response_action="errors", errors=_errors(deps, body, Block.NEEDS_OBSTACLE, outcome.message))
        return
    context["jobs"] = outcome.jobs
    ack()


@funnel
def kick_jobs(context: BoltContext, deps: Deps) -> None:
    deps.outbox.kick(context.get("jobs") or [])


# -- improvement actions ------------------------------------------------------------------------
@funnel
def on_new_action(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    round_id = _id(action.get("value"))
    view = needs_actions.form_for(deps, user=body["user"]["id"], round_id=round_id) if round_id else STALE
    _open_or_tell(deps, client, body, view)


ACTION_FIELDS = {"theme": Block.ACTION_THEME, "owner": Block.ACTION_OWNER, "due": Block.ACTION_DUE}


@safe_ack
def action_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    view_id = view.get("id")
    outcome = needs_actions.record(deps, user=body["user"]["id"], form=parse_action_form(_state(view)),
                                   round_id=parse_round_metadata(view.get("private_metadata")) or 0,
                                   submission=view_id if isinstance(view_id, str) else None)
    if not outcome.ok:
        block = ACTION_FIELDS.get(outcome.about or "", Block.ACTION_TITLE)
        ack(response_action="errors", errors=_errors(deps, body, block, outcome.message))
        return
    context["jobs"] = outcome.jobs
    ack()


@funnel
def on_progress(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    outcome = needs_actions.set_status(deps, user=body["user"]["id"], action_id=_id(action.get("value")) or 0,
                                       status="in_progress")
    deps.outbox.kick(outcome.jobs)
    if outcome.message:
        _tell(deps, client, body, outcome.message)


@funnel
def on_done(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    action_id = _id(action.get("value"))
    view = needs_actions.done_form_for(deps, user=body["user"]["id"], action_id=action_id) if action_id else STALE
    _open_or_tell(deps, client, body, view)


@safe_ack
def done_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    outcome = needs_actions.set_status(deps, user=body["user"]["id"], status="done",
                                       detail=parse_done_detail(_state(view)),
                                       action_id=_id(view.get("private_metadata")) or 0)
    if not outcome.ok:
        ack(response_action="errors", errors=_errors(deps, body, Block.ACTION_DETAIL, outcome.message))
        return
    context["jobs"] = outcome.jobs
    ack()


def open_action_form(deps: Deps, client: WebClient, body: dict[str, Any], team: str | None) -> None:
    """`/askdesk action [team]`: the "Record an action" modal for the team's latest closed round."""
    _open_or_tell(deps, client, body, needs_actions.form_for(deps, user=body["user_id"], team_slug=team or None))


def register(app: App) -> None:
    app.action(SCORE_ACTION)(ack=noop_ack, lazy=[on_score])
    app.action(Action.NEEDS_MORE)(ack=noop_ack, lazy=[on_more])
    app.view(Callback.NEEDS_MODAL)(ack=survey_ack, lazy=[kick_jobs])
    app.action(Action.NEEDS_ACTION_NEW)(ack=noop_ack, lazy=[on_new_action])
    app.view(Callback.NEEDS_ACTION_MODAL)(ack=action_ack, lazy=[kick_jobs])
    app.action(Action.NEEDS_ACTION_PROGRESS)(ack=noop_ack, lazy=[on_progress])
    app.action(Action.NEEDS_ACTION_DONE)(ack=noop_ack, lazy=[on_done])
    app.view(Callback.NEEDS_DONE_MODAL)(ack=done_ack, lazy=[kick_jobs])
