"""App Home: my requests, and the team queues for responders."""

from __future__ import annotations

from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.render import blocks
from bot.runtime.deps import Deps
from bot.services import requests as service
from handlers.common import funnel, noop_ack


def publish_home(deps: Deps, client: WebClient, user_id: str, note: str | None = None) -> None:
    home = service.home_data(deps, user_id)
    names = {team.slug: team.name for team in deps.settings.teams}
    t = deps.directory.translator_for(user_id, now=deps.now())
    client.views_publish(user_id=user_id, view=blocks.home_view(
        t=t, mine=home.mine, queues=home.queues, team_names=names, note=note, sla=home.sla,
        availability=home.availability))


@funnel
def home_opened(body: dict[str, Any], client: WebClient, event: dict[str, Any], deps: Deps) -> None:
    user = event.get("user")
    if event.get("tab", "home") == "home" and isinstance(user, str) and user:
        publish_home(deps, client, user)


def register(app: App) -> None:
    app.event("app_home_opened")(ack=noop_ack, lazy=[home_opened])
