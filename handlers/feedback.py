"""Reactions (emoji ratings) and pulse-survey answers (issue 3)."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime import Deps
from handlers.common import noop_ack


def register(app: App, deps: Deps) -> None:
    # Subscribed events must be acknowledged even before ratings exist, or Slack retries them.
    for name in ("reaction_added", "reaction_removed"):
        app.event(name)(noop_ack)
