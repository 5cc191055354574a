"""`/askdesk`: help, `/askdesk digest [team]` (the current figures, shown only to the asker) and
`/askdesk action [team]` (record an improvement action, handlers/needs.py)."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.runtime.deps import Deps
from bot.services.digest_access import current_figures, unknown_subcommand, usage
from handlers.common import funnel, safe_ack
from handlers.needs import open_action_form


@safe_ack
def askdesk_ack(ack: Ack, command: dict[str, Any], context: BoltContext, deps: Deps) -> None:
    words = (command.get("text") or "").split()
    sub = words[0].lower() if words else "help"
    if sub == "action":
        context["action_team"] = words[1].lower()[:30] if len(words) > 1 else ""
        ack()  # the form opens right after, from the lazy listener
        return
    if sub != "digest":
        t = deps.directory.translator_for(command.get("user_id"), now=deps.now())
        ack(text=usage(t) if sub in ("help", "?") else unknown_subcommand(sub, t))
        return
    context["digest_team"] = words[1].lower() if len(words) > 1 else ""
    ack()  # computing takes a moment: the figures follow through response_url


@funnel
def askdesk_lazy(body: dict[str, Any], context: BoltContext, client: WebClient, deps: Deps) -> None:
    if "action_team" in context:
        open_action_form(deps, client, body, context["action_team"])
        return
    if "digest_team" not in context:
        return
    answer = current_figures(deps, user_id=body["user_id"], team_slug=context["digest_team"] or None)
    WebhookClient(body["response_url"], timeout=10).send(
        text=answer.rendered.text, blocks=answer.rendered.as_dicts(), response_type="ephemeral",
        replace_original=False)


def register(app: App) -> None:
    app.command("/askdesk")(ack=askdesk_ack, lazy=[askdesk_lazy])
