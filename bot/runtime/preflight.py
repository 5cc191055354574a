"""Checks `askdesk run` makes against Slack before serving: the bot token works (`auth.test`), and the
bot is a member of every team's triage channel (`conversations.info` → `is_member`)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, Settings
from bot.slack.client import build_client, slack_error

log = logging.getLogger("askdesk")
TOKEN_REFUSED = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
                           "not_allowed_token_type"})


def check_slack(settings: Settings) -> None:
    """Raise `ConfigError` when Slack refuses the bot token; log a warning for each triage channel the
    bot cannot post to. When Slack cannot be reached, say so and go on (queued work waits for it)."""
    client = build_client(settings.bot_token, settings.slack_api_url, timeout=5)
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        error = slack_error(exc)
        if error in TOKEN_REFUSED:
            raise ConfigError(f"environment: key 'SLACK_BOT_TOKEN': Slack refused the token ({error}); use the "
                              "Bot User OAuth Token (xoxb-...) from your app's OAuth & Permissions page") from None
        log.warning("could not check the bot token: auth.test answered %s", error)
        return
    except OSError as exc:
        log.warning("could not reach Slack at %s to check the bot token (%s); starting anyway",
                    settings.slack_api_url, slack_error(exc))
        return
    log.info("Slack: workspace %s, bot @%s", identity.get("team"), identity.get("user"))
    seen: set[str] = set()
    for team in settings.teams:
        if team.channel in seen:
            continue
        seen.add(team.channel)
        problem = _channel_problem(client, team.channel)
        if problem:
            log.warning("triage channel %s of team %s: %s", team.channel, team.slug, problem)


def _channel_problem(client: object, channel: str) -> str | None:
    try:
        info = client.conversations_info(channel=channel)  # type: ignore[attr-defined]
    except SlackApiError as exc:
        error = slack_error(exc)
        if error == "channel_not_found":
            return ("not found: a wrong channel ID, or a private channel the bot has not been invited to "
                    "(invite @askdesk there)")
        return f"could not be checked: conversations.info answered {error}"
    except OSError as exc:
        return f"could not be checked: {slack_error(exc)}"
    data = info.get("channel") or {}
    if data.get("is_archived"):
        return "is archived; requests to this team cannot be posted"
    if not data.get("is_member"):
        return "the bot is not a member, so requests cannot be posted there; invite @askdesk to the channel"
    return None
