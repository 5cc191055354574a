"""Emoji ratings: the requester reacts to the request's triage message or their DM status message.

Rules (see docs/feedback.md):
- each emoji in `[ratings]` maps to a score 1-5; skin-tone variants count as their base emoji;
- emoji outside the table are ignored for everyone (nothing is stored);
- reactions by anyone but the requester are stored as peer reactions (`is_requester = false`) and never
  count as the internal customer's score;
- the requester's rating is their latest remaining scored reaction; a removed reaction is kept with
  its removal time (so a closed week's figures never change) and no longer counts from then on;
- every (request, user, emoji) is stored once while it is there (partial unique index + ON CONFLICT DO
  NOTHING), so retried or duplicated deliveries never count twice;
- reactions on messages that are not the bot's are dropped before any database or Web API work,
  and (channel, ts) is matched against the requests table with indexed lookups only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.runtime.deps import Deps
from storage import feedback as queries
from storage import requests as request_queries
from storage.session import session_scope

log = logging.getLogger(__name__)


def base_emoji(name: str) -> str:
    """`+1::skin-tone-3` -> `+1`; `:smiley:` -> `smiley`."""
    return name.strip().strip(":").split("::", 1)[0]


def score_of(name: str, ratings: Mapping[str, int]) -> int | None:
    return ratings.get(base_emoji(name))


@dataclass(frozen=True)
class ReactionEvent:
    added: bool
    user: str
    emoji: str
    channel: str
    ts: str


def parse_reaction(event: dict[str, Any], bot_user_id: str | None) -> ReactionEvent | None:
    """A reaction worth looking up, or None (not on a message, not on the bot's message, malformed)."""
    item = event.get("item") or {}
    if item.get("type") != "message" or not item.get("channel") or not item.get("ts"):
        return None
    item_user = event.get("item_user")
    if bot_user_id and item_user and item_user != bot_user_id:
        return None
    user, emoji = event.get("user"), event.get("reaction")
    if not user or not emoji or user == bot_user_id:
        return None
    return ReactionEvent(added=event.get("type") == "reaction_added", user=str(user), emoji=str(emoji),
                         channel=str(item["channel"]), ts=str(item["ts"]))


def record(deps: Deps, reaction: ReactionEvent, *, event_id: str | None = None) -> str:
    """Apply one reaction event; returns what happened: ignored | stored | duplicate | removed | absent.

    `event_id` (the Events API delivery) is recorded in the same transaction as the reaction, so a
    redelivery is a no-op ("duplicate") and a delivery that failed half-way is applied when redelivered."""
    score = score_of(reaction.emoji, deps.settings.ratings)
    if score is None:
        return "ignored"
    with session_scope(deps.engine) as session:
        if event_id and not request_queries.first_seen(session, event_id, now=deps.now()):
            return "duplicate"
        req = request_queries.by_message(session, reaction.channel, reaction.ts)
        if req is None or req.id is None:
            return "ignored"
        if not reaction.added:
            removed = queries.remove_reaction(session, request_id=req.id, user_id=reaction.user,
                                              emoji=reaction.emoji, at=deps.now())
            return "removed" if removed else "absent"
        stored = queries.add_reaction(session, request_id=req.id, team=req.team, user_id=reaction.user,
                                      emoji=reaction.emoji, score=score,
                                      is_requester=reaction.user == req.requester_id, at=deps.now())
    log.info("reaction %s on #%s by %s: %s", reaction.emoji, req.id, reaction.user,
             "stored" if stored else "duplicate")
    return "stored" if stored else "duplicate"


def rating_of(deps: Deps, request_id: int) -> int | None:
    """The requester's current rating of a request (None: not rated)."""
    with session_scope(deps.engine) as session:
        latest = queries.requester_rating(session, request_id)
    return latest.score if latest else None
