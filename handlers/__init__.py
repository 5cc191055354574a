"""Bolt listeners only: each module has `register(app, deps)`; listeners ack, parse, call one service."""

from __future__ import annotations

from slack_bolt import App

from bot.runtime.deps import Deps


def register_all(app: App, deps: Deps) -> None:
    from handlers import actions, admin, commands, events, feedback, home, shortcuts, views

    for module in (commands, actions, views, shortcuts, home, events, feedback, admin):
        module.register(app, deps)
