"""The Slack app manifest for the configured teams (paste it at api.slack.com/apps → From a manifest)."""

from __future__ import annotations

from typing import Any

import yaml

from bot.config import Settings
from bot.render.ids import Callback

BOT_SCOPES = [
    "chat:write", "commands", "channels:history", "groups:history", "im:history", "channels:read",
    "groups:read", "im:write", "reactions:read", "users:read", "users.profile:read", "files:write",
]
PLACEHOLDER_URL = "https://askdesk.example.com/slack/events"
BOT_EVENTS = ["app_home_opened", "message.channels", "message.groups", "message.im", "reaction_added",
              "reaction_removed"]


def build_manifest(settings: Settings, *, request_url: str | None = None, socket: bool = False) -> dict[str, Any]:
    url = (request_url or PLACEHOLDER_URL) if not socket else None
    commands: list[dict[str, Any]] = []
    for team in settings.teams:
        command = {"command": team.command, "description": f"Ask {team.name} for help"[:2000],
                   "usage_hint": "[what you need — or leave empty for a form]", "should_escape": False}
        if url:
            command["url"] = url
        commands.append(command)
    admin = {"command": "/askdesk", "description": "askdesk digests and help",
             "usage_hint": "digest [team]", "should_escape": False}
    if url:
        admin["url"] = url
    commands.append(admin)
    interactivity: dict[str, Any] = {"is_enabled": True}
    if url:
        interactivity["request_url"] = url
    events: dict[str, Any] = {"bot_events": BOT_EVENTS}
    if url:
        events["request_url"] = url
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "askdesk",
            "description": "Ask any team for help; track, rate and learn from every internal request.",
            "background_color": "#2c2d30",
        },
        "features": {
            "app_home": {"home_tab_enabled": True, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": False},
            "bot_user": {"display_name": "askdesk", "always_online": True},
            "shortcuts": [{"name": "Ask a team about this", "type": "message", "callback_id": Callback.SHORTCUT.value,
                           "description": "Turn this message into a tracked request"}],
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": BOT_SCOPES}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket,
            "token_rotation_enabled": False,
        },
    }


def manifest_yaml(settings: Settings, *, request_url: str | None = None, socket: bool = False) -> str:
    return yaml.safe_dump(build_manifest(settings, request_url=request_url, socket=socket), sort_keys=False,
                          allow_unicode=True)
