"""Emoji ratings end to end: signed reaction events in, rows in `reactions`, the requester's rating out."""

from __future__ import annotations

import pytest

from bot.services import ratings
from storage.models import Request
from tests.conftest import BOB, DAVE, FINANCE_CH, GENERAL, Harness
from tests.feedback_helpers import ask, reactions


def react(h: Harness, user: str, emoji: str, channel: str, ts: str, *, added: bool = True,
          event_id: str | None = None, item_user: str = "UBOT") -> None:
    build = h.driver.reaction_added if added else h.driver.reaction_removed
    resp = h.driver.event(build(user, emoji, channel, ts, item_user=item_user), event_id=event_id)
    assert resp.status == 200, resp.body


def rating(h: Harness, req: Request) -> int | None:
    return ratings.rating_of(h.deps, req.id)


def wait_rows(h: Harness, n: int) -> None:
    h.wait(lambda: len(reactions(h)) == n)


def test_skin_tone_counts_as_its_base_emoji(h: Harness) -> None:
    req = ask(h, "Skin tones")
    react(h, DAVE, "+1::skin-tone-3", req.triage_channel, req.triage_ts)
    wait_rows(h, 1)
    [row] = reactions(h)
    assert (row.emoji, row.score, row.is_requester) == ("+1::skin-tone-3", 5, True)
    assert (row.user_id, row.team) == (DAVE, "finance")
    assert rating(h, req) == 5


def test_latest_rating_wins_and_removal_falls_back_then_disappears(h: Harness) -> None:
    req = ask(h, "Change my mind")
    react(h, DAVE, "+1", req.triage_channel, req.triage_ts)
    h.wait(lambda: rating(h, req) == 5)
    h.clock.advance(minutes=5)
    react(h, DAVE, "confused", req.dm_channel, req.dm_ts)  # on the DM status message
    h.wait(lambda: rating(h, req) == 2)
    h.clock.advance(minutes=5)
    react(h, DAVE, "confused", req.dm_channel, req.dm_ts, added=False)
    h.wait(lambda: rating(h, req) == 5)  # back to the earlier reaction that is still there
    react(h, DAVE, "+1", req.triage_channel, req.triage_ts, added=False)
    h.wait(lambda: not reactions(h))
    assert rating(h, req) is None


def test_reactions_by_others_are_peer_reactions_not_the_score(h: Harness) -> None:
    req = ask(h, "Peers")
    react(h, BOB, "rage", req.triage_channel, req.triage_ts)
    react(h, DAVE, "smiley", req.triage_channel, req.triage_ts)
    wait_rows(h, 2)
    peer = next(r for r in reactions(h) if r.user_id == BOB)
    assert peer.is_requester is False and peer.score == 1
    assert rating(h, req) == 4
    react(h, DAVE, "smiley", req.triage_channel, req.triage_ts, added=False)
    wait_rows(h, 1)
    assert rating(h, req) is None  # a peer's reaction never becomes the customer's rating


def test_emoji_outside_the_table_are_ignored(h: Harness) -> None:
    req = ask(h, "Party")
    react(h, DAVE, "tada", req.triage_channel, req.triage_ts)
    react(h, BOB, "eyes", req.triage_channel, req.triage_ts)
    react(h, DAVE, "neutral_face", req.triage_channel, req.triage_ts)
    wait_rows(h, 1)
    assert reactions(h)[0].emoji == "neutral_face" and rating(h, req) == 3


def test_duplicate_deliveries_never_count_twice(h: Harness) -> None:
    req = ask(h, "Retries")
    react(h, DAVE, "heart_eyes", req.triage_channel, req.triage_ts, event_id="Ev0DUP1")
    wait_rows(h, 1)
    first = reactions(h)[0]
    h.clock.advance(minutes=1)
    react(h, DAVE, "heart_eyes", req.triage_channel, req.triage_ts, event_id="Ev0DUP1")  # Slack's retry
    react(h, DAVE, "heart_eyes", req.triage_channel, req.triage_ts, event_id="Ev0DUP2")  # same reaction again
    react(h, DAVE, "slightly_smiling_face", req.triage_channel, req.triage_ts)  # a marker after them
    wait_rows(h, 2)
    stored = [r for r in reactions(h) if r.emoji == "heart_eyes"]
    assert len(stored) == 1 and stored[0].id == first.id and stored[0].created_at == first.created_at


def test_reactions_on_foreign_messages_are_ignored_without_web_api_calls(h: Harness) -> None:
    req = ask(h, "Foreign messages")
    foreign_ts = h.sim.add_message(GENERAL, user=DAVE, text="lunch?")
    before = len(h.sim.calls)
    react(h, DAVE, "+1", GENERAL, foreign_ts, item_user=DAVE)  # a person's message
    react(h, BOB, "+1", GENERAL, foreign_ts, item_user="")  # author unknown: the table lookup finds nothing
    react(h, DAVE, "+1", FINANCE_CH, "1700000000.000001")  # the bot's, but no request's message
    react(h, DAVE, "-1", req.triage_channel, req.triage_ts, item_user=BOB)  # claims another author
    react(h, DAVE, "smiley", req.triage_channel, req.triage_ts)  # a marker that counts
    wait_rows(h, 1)
    assert reactions(h)[0].emoji == "smiley"
    with pytest.raises(TimeoutError):  # a bounded look: no Web API call and no row arrives late
        h.sim.wait_for(lambda: len(h.sim.calls) != before or len(reactions(h)) != 1, timeout=0.3)


def test_parse_reaction_drops_foreign_items_before_any_lookup() -> None:
    base = {"type": "reaction_added", "user": DAVE, "reaction": "+1", "item_user": "UBOT",
            "item": {"type": "message", "channel": "C1", "ts": "1.2"}}
    assert ratings.parse_reaction(base, "UBOT") is not None
    assert ratings.parse_reaction({**base, "item_user": DAVE}, "UBOT") is None
    assert ratings.parse_reaction({**base, "item": {"type": "file", "file": "F1"}}, "UBOT") is None
    assert ratings.parse_reaction({**base, "user": "UBOT"}, "UBOT") is None
    removed = ratings.parse_reaction({**base, "type": "reaction_removed"}, None)
    assert removed is not None and removed.added is False
