"""Reactions (emoji ratings) and pulse-survey answers (issue 3)."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.i18n import N_
from bot.render.feedback_blocks import parse_survey_form
from bot.render.ids import Action, Block, Callback
from bot.runtime.deps import Deps
from bot.services import feedback, ratings
from handlers.common import event_id_of, funnel, noop_ack, safe_ack, tell

SCORE_ACTION = re.compile(rf"^{Action.SURVEY_SCORE.value}_([1-5])$")


def bot_user_of(body: dict[str, Any], context: BoltContext) -> str | None:
    """The bot's user id, from the event's authorizations (no Web API call) or Bolt's context."""
    for auth in body.get("authorizations") or []:
        if auth.get("is_bot") and auth.get("user_id"):
            return str(auth["user_id"])
    return context.get("bot_user_id")


def _survey_id(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


@safe_ack
def on_reaction(ack: Ack, body: dict[str, Any], event: dict[str, Any], context: BoltContext,
                deps: Deps) -> None:
    # stored before the ack, like thread replies: once acked, Slack never delivers the event again
    reaction = ratings.parse_reaction(event, bot_user_of(body, context))
    if reaction is not None:
        ratings.record(deps, reaction, event_id=event_id_of(body))
    ack()


@funnel
def on_score(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    match = SCORE_ACTION.match(action.get("action_id", ""))
    survey_id = _survey_id(action.get("value"))
    if match is None or survey_id is None:
        tell(client, body, N_("That button is out of date."))
        return
    outcome = feedback.answer(deps, survey_id=survey_id, user=body["user"]["id"],
                              values={"score": int(match.group(1))})
    deps.outbox.kick(outcome.jobs)
    if outcome.message:
        tell(client, body, outcome.message, deps.directory.translator_for(body["user"]["id"], now=deps.now()))


@funnel
def on_more(body: dict[str, Any], action: dict[str, Any], client: WebClient, deps: Deps) -> None:
    survey_id = _survey_id(action.get("value"))
    view = feedback.modal_for(deps, survey_id=survey_id, user=body["user"]["id"]) if survey_id else None
    if view is None or not isinstance(view, View):
        t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
        tell(client, body, view or N_("That button is out of date."), t)
        return
    client.views_open(trigger_id=body["trigger_id"], view=view)


@safe_ack
def modal_ack(ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext,
              deps: Deps) -> None:
    survey_id = _survey_id(view.get("private_metadata"))
    form = parse_survey_form((view.get("state") or {}).get("values") or {})
    t = deps.directory.translator_for(body["user"]["id"], now=deps.now())
    if form.empty:
        ack(response_action="errors",
            errors={Block.COMMENT: t._("Pick a score or write a comment — or press Cancel.")})
        return
    outcome = feedback.answer(deps, survey_id=survey_id or 0, user=body["user"]["id"],
                              values=form.values())
    if not outcome.ok:
        problem = t.render(outcome.message or N_("Not saved."))
        ack(response_action="errors", errors={Block.COMMENT: problem[:150]})
        return
    context["jobs"] = outcome.jobs
    ack()


@funnel
def modal_lazy(context: BoltContext, deps: Deps) -> None:
    deps.outbox.kick(context.get("jobs") or [])


def register(app: App) -> None:
    for name in ("reaction_added", "reaction_removed"):
        app.event(name)(on_reaction)
    app.action(SCORE_ACTION)(ack=noop_ack, lazy=[on_score])
    app.action(Action.SURVEY_MORE)(ack=noop_ack, lazy=[on_more])
    app.view(Callback.SURVEY_MODAL)(ack=modal_ack, lazy=[modal_lazy])
