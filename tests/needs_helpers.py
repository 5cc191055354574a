"""Shared helpers of the needs-survey tests: a workspace with an audience channel, and driving a round."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bot.render.ids import Block, Callback
from bot.render.needs_blocks import score_block
from bot.runtime.scheduler import Clock
from slacksim.simulator import SlackSimulator
from storage import needs as queries
from storage.models import NeedsInvitation, NeedsRound
from storage.session import session_scope
from tests.conftest import ALICE, TEST_CONFIG, Harness

STAFF, LEADS = "C0STAFF", "C0LEADS"
P1, P2, P3, P4, P5 = "U0P1", "U0P2", "U0P3", "U0P4", "U0P5"
AUDIENCE = {P1: "Europe/London", P2: "Europe/Berlin", P3: "America/New_York", P4: "Europe/London",
            P5: "Europe/Berlin"}
# Tuesday 2026-01-13 15:00 UTC: working hours in London, Berlin and New York; 07:00 in Los Angeles (Dave).
T0 = datetime(2026, 1, 13, 15, 0, tzinfo=UTC)


def needs_config(threshold: int = 3, **finance: Any) -> dict[str, Any]:
    config = copy.deepcopy(TEST_CONFIG)
    config["workspace"]["leadership_channel"] = LEADS
    config["teams"][0].update({"needs_survey": "quarterly", "needs_audience": [STAFF], **finance})
    config["surveys"] = {"anonymity_threshold": threshold}
    return config


def add_audience(sim: SlackSimulator) -> None:
    for user, tz in AUDIENCE.items():
        sim.add_user(user, name=user.lower(), tz=tz)
    sim.add_channel(STAFF, name="staff", members=[*AUDIENCE, ALICE, "UBOT"])
    sim.add_channel(LEADS, name="leadership", members=["U0ADMIN", "UBOT"])


def start_clock(h: Harness, when: datetime = T0) -> None:
    h.clock.set(when)
    h.scheduler = Clock(h.deps)


def tick(h: Harness, times: int = 1) -> None:
    """Deterministic scheduler ticks, periodic housekeeping included."""
    assert h.scheduler is not None
    for _ in range(times):
        h.scheduler._last_run.clear()
        h.tick()


def rounds(h: Harness, team: str = "finance") -> list[NeedsRound]:
    with session_scope(h.deps.engine) as s:
        return queries.rounds_of(s, team=team)


def invitations(h: Harness, round_id: int) -> dict[str, NeedsInvitation]:
    with session_scope(h.deps.engine) as s:
        return {i.user_id: i for i in queries.invitations_of(s, round_id=round_id)}


def dms(h: Harness, user: str, event_type: str = "askdesk_needs") -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(user) if (m.get("metadata") or {}).get("event_type") == event_type]


def posts(h: Harness, channel: str, event_type: str) -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(channel) if (m.get("metadata") or {}).get("event_type") == event_type]


def shown(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [], ensure_ascii=False) + (message.get("text") or "")


def click(h: Harness, user: str, action_id: str, value: str, message: dict[str, Any], channel: str) -> None:
    resp = h.driver.block_action(user_id=user, action_id=action_id, value=value, channel_id=channel,
                                 message_ts=message["ts"])
    assert resp.status == 200, resp.body


def pick(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def text(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def questionnaire(*, overall: str | None = None, communication: str | None = None, obstacle: str | None = None,
                  start_stop: str | None = None, share: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if overall:
        values[score_block("overall")] = pick(overall)
    if communication:
        values[score_block("communication")] = pick(communication)
    if obstacle:
        values[Block.NEEDS_OBSTACLE] = text(obstacle)
    if start_stop:
        values[Block.NEEDS_START_STOP] = text(start_stop)
    values[Block.NEEDS_SHARE] = {"value": {"type": "checkboxes",
                                           "selected_options": [{"value": "share"}] if share else []}}
    return values


def submit(h: Harness, user: str, invitation_id: int, values: dict[str, Any]) -> Any:
    resp = h.driver.view_submission(user_id=user, callback_id=Callback.NEEDS_MODAL.value,
                                    private_metadata=str(invitation_id), values=values)
    assert resp.status == 200, resp.body
    return resp


def answered(h: Harness, invitation_id: int) -> bool:
    with session_scope(h.deps.engine) as s:
        return queries.answer_of(s, invitation_id) is not None


def clocked(h: Harness) -> Iterator[Harness]:
    """The `h` fixture of the needs tests: the harness with a scheduler clock at T0, stopped after."""
    start_clock(h)
    yield h
    assert h.scheduler is not None
    h.scheduler.stop(wait=False)
