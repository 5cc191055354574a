"""The modals around a request: the new-request form (from `/ask-<team>` alone or the message shortcut)
and "View full text".

The new-request form remembers its team, the source channel and the shortcut's permalink in a sealed
`private_metadata` (bot/services/sealed.py): a submission whose metadata was changed is refused, logged
and creates nothing. The permalink is built here from the shortcut's channel and message ts (both
checked against Slack's formats) and the workspace URL, never taken from the client.
"""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.views import View

from bot.config import Team
from bot.i18n import N_, Message, Translator
from bot.render import blocks
from bot.render.links import is_channel_id, message_link, safe_url
from bot.runtime.deps import Deps
from bot.services.sealed import key_for, seal, unseal
from storage import requests as queries
from storage.session import session_scope

TAMPERED = N_("This form is out of date or was changed on its way back. Please open it again.")


@dataclass(frozen=True)
class FormOrigin:
    """Where a new-request form came from: its fixed team (None: the person picks one), the channel
    it was opened in and, from the message shortcut, the permalink of that message."""

    team: str | None
    channel: str | None
    permalink: str | None


def request_modal_for(deps: Deps, *, t: Translator, team: Team | None, channel: str | None,
                 message_ts: str | None = None, initial_text: str = "") -> View:
    """The new-request modal with its sealed origin."""
    channel = channel if is_channel_id(channel) else None
    permalink = message_link(deps.workspace_url, channel, message_ts) if message_ts else None
    meta = seal(key_for(deps.settings), {"team": team.slug if team else None, "channel": channel,
                                          "permalink": permalink})
    return blocks.request_modal(t=t, teams=deps.settings.teams, team=team, private_metadata=meta,
                                permalink=permalink, initial_text=initial_text)


def form_origin(deps: Deps, private_metadata: object, *, user: str) -> FormOrigin | None:
    """The origin sealed into a submitted form, or None (logged) when it was not sealed by askdesk."""
    meta = unseal(key_for(deps.settings), private_metadata, user=user)
    if meta is None:
        return None
    team, channel = meta.get("team"), meta.get("channel")
    return FormOrigin(team=team if isinstance(team, str) else None,
                      channel=channel if is_channel_id(channel) else None,
                      permalink=safe_url(meta.get("permalink")))


def full_text(deps: Deps, *, request_id: int, user: str, t: Translator) -> View | Message:
    """The whole request text for its team's responders, the person who asked and admins; else why not."""
    with session_scope(deps.engine) as session:
        req = queries.get(session, request_id)
    if req is None:
        return N_("That request no longer exists.")
    team = deps.settings.team(req.team)
    allowed = (user == req.requester_id or deps.settings.is_admin(user)
               or (team is not None and deps.directory.is_responder(team, user)))
    if not allowed:
        name = team.name if team else req.team
        return N_("Only {team}'s responders and the person who asked can read request #{id}.", team=name, id=req.id)
    return blocks.full_text_modal(req, t=t)
