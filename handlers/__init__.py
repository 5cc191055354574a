"""Bolt listeners only: module-level functions, bound to their ids by each module's `register(app)`.

A listener declares what it needs as parameters: Bolt's own (`ack`, `body`, `client`, ...) and `deps`,
which a middleware of `bot.app` puts into the context. Listeners ack, parse, call one service."""

from __future__ import annotations

from slack_bolt import App

from handlers import actions, admin, commands, events, feedback, home, needs, shortcuts, sla, views


def register_all(app: App) -> None:
    for module in (commands, actions, views, shortcuts, home, events, feedback, needs, admin, sla):
        module.register(app)
