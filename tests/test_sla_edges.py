"""SLA reminders and escalations at their edges, through the real app and the simulator (issue 15):
the resolution SLA, a team with nowhere to escalate to, an archived escalation channel and a
deactivated lead, who may press Claim/Assign in an escalation, double clicks and double submissions,
and an assignee deactivated right after the assignment (the DM fails once, clearly; the SLA net still
catches it; round robin skips them)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.render.ids import Action, Block, Callback
from slacksim.simulator import SlackSimulator
from storage.models import Job
from storage.session import session_scope
from tests.conftest import ALICE, BOB, DAVE, ERIN, FINANCE_CH, IT_CH, Harness
from tests.sla_helpers import LEAD, LEADS_CH, harness, replies, sla_config, sla_events
from tests.test_request_loop import ask, button, events, load, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin, 16:00 in Shanghai
LEAD2, IT_LEAD = "U0LEAD2", "U0ITLEAD"


def edge_config(**finance: Any) -> dict[str, Any]:
    config = sla_config(leads=[LEAD, LEAD2], **finance)
    config["teams"][1]["leads"] = []  # IT: a business clock and nowhere to escalate to
    return config


@pytest.fixture
def eh(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    sim.add_user(LEAD2, name="lead2", tz="Europe/Berlin")
    sim.add_user(IT_LEAD, name="itlead", tz="Asia/Shanghai")
    config = edge_config()
    yield from harness(sim, db_url, start=START, config=config)


def posts_to(h: Harness, channel: str) -> list[Any]:
    return [c for c in h.sim.calls_to("chat.postMessage") if c.args.get("channel") == channel]


def escalate(h: Harness, text: str = "Refund?") -> tuple[Any, dict]:
    """A Finance request left alone until its first-response SLA (30 min) is breached."""
    req = ask(h, text)
    h.tick()
    h.clock.advance(minutes=31)
    h.tick()
    h.tick()
    return req, h.wait(lambda: h.sim.messages(LEADS_CH))[0]


def job(h: Harness, key: str) -> Job:
    with session_scope(h.deps.engine) as s:
        return s.exec(select(Job).where(Job.key == key)).one()


def test_the_resolution_sla_reminds_and_escalates_naming_the_assignee(eh: Harness) -> None:
    req = ask(eh, "Close my cost centre")
    eh.tick()
    eh.clock.advance(minutes=5)
    button(eh, req, Action.CLAIM, ALICE)
    eh.wait(lambda: load(eh, req.id).sla_responded_at is not None)
    eh.tick()
    eh.clock.set(START + timedelta(hours=36))  # 75 % of the 2d resolution SLA
    eh.tick()
    (reminder,) = [m for m in replies(eh, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]
    assert "#1 should be resolved, due in 12h" in texts_of(reminder)
    assert "It is assigned to <@U0ALICE>" in texts_of(reminder)
    eh.clock.set(START + timedelta(days=2, minutes=1))
    eh.tick()
    (escalation,) = eh.sim.messages(LEADS_CH)
    assert "#1 in Finance was not resolved within its SLA of 2d" in texts_of(escalation)
    assert [k for k, d in sla_events(eh, req.id)] == ["sla_reminder", "sla_breached", "sla_escalated"]
    assert {d["sla"] for _, d in sla_events(eh, req.id)} == {"resolution"}


def test_a_team_with_neither_escalation_channel_nor_leads_gets_reminders_only(eh: Harness) -> None:
    eh.clock.set(datetime(2026, 12, 7, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    req = ask(eh, "Laptop will not boot", command="/ask-it")
    eh.tick()
    eh.clock.advance(minutes=45)  # 75 % of IT's 1h
    eh.tick()
    assert len([m for m in replies(eh, IT_CH, req.triage_ts) if "Reminder" in texts_of(m)]) == 1
    posted = len(eh.sim.calls_to("chat.postMessage"))
    eh.clock.advance(minutes=16)
    for _ in range(3):
        eh.tick()
    assert len(eh.sim.calls_to("chat.postMessage")) == posted  # no escalation anywhere, no DM
    assert [k for k, _ in sla_events(eh, req.id)] == ["sla_reminder", "sla_breached"]  # still counted
    assert job(eh, "sla:1:0:fr:escalate").status == "done"


def test_an_archived_escalation_channel_and_a_deactivated_lead_skip_only_themselves(
        eh: Harness, caplog: pytest.LogCaptureFixture) -> None:
    eh.sim.fail_next("chat.postMessage", "is_archived", count=10, channel=LEADS_CH)
    eh.sim.user(LEAD2).deleted = True
    with caplog.at_level(logging.WARNING):
        req = ask(eh, "Refund?")
        eh.tick()
        eh.clock.advance(minutes=23)
        eh.tick()
        assert len([m for m in replies(eh, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]) == 1
        eh.clock.advance(minutes=8)
        for _ in range(4):  # more ticks: nothing is tried again
            eh.tick()
    (lead_dm,) = eh.sim.messages(eh.sim.dm_channel_for(LEAD))  # the lead who can be reached is told
    assert "no first response" in texts_of(lead_dm) and "req_claim" in texts_of(lead_dm)
    assert eh.sim.messages(LEADS_CH) == []
    assert len(posts_to(eh, LEADS_CH)) == 1 and len(posts_to(eh, LEAD2)) == 1  # one try each, no retry storm
    done = job(eh, "sla:1:0:fr:escalate")
    assert done.status == "done" and done.attempts == 1
    assert [k for k, _ in sla_events(eh, req.id)] == ["sla_reminder", "sla_breached", "sla_escalated"]
    logged = [r.getMessage() for r in caplog.records if "escalation of #1" in r.getMessage()]
    assert any(LEADS_CH in m and "is_archived" in m for m in logged), logged
    assert any(LEAD2 in m and "user_disabled" in m for m in logged), logged


def test_an_escalation_nobody_can_receive_is_still_counted_as_a_breach_once(
        eh: Harness, caplog: pytest.LogCaptureFixture) -> None:
    eh.sim.fail_next("chat.postMessage", "not_in_channel", count=10, channel=LEADS_CH)
    eh.sim.user(LEAD).deleted = True
    eh.sim.user(LEAD2).deleted = True
    req = ask(eh, "Nobody listens")
    eh.tick()
    eh.clock.advance(minutes=31)
    for _ in range(4):
        eh.tick()
    assert [k for k, _ in sla_events(eh, req.id)] == ["sla_breached"]  # breached, escalated to no one
    assert len(posts_to(eh, LEADS_CH)) == 1
    assert job(eh, "sla:1:0:fr:escalate").status == "done"


def test_who_may_claim_or_assign_from_an_escalation_and_what_a_double_click_does(eh: Harness) -> None:
    req, escalation = escalate(eh)

    def press(user: str, action: Action, channel: str = LEADS_CH, ts: str | None = None) -> None:
        resp = eh.driver.block_action(user_id=user, action_id=action.value, value=str(req.id), channel_id=channel,
                                      message_ts=ts or escalation["ts"])
        assert resp.status == 200

    # a lead of another team, and someone outside the team, are refused; nothing changes
    press(IT_LEAD, Action.CLAIM)
    eh.wait(lambda: [p for p in eh.sim.response_posts if "Only members of Finance" in str(p)])
    press(ERIN, Action.ASSIGN)
    eh.wait(lambda: (v := eh.sim.find_view(callback_id=Callback.NOTICE_MODAL)) and "responders and leads" in
            texts_of({"blocks": v["blocks"]}))
    assert load(eh, req.id).assignee_id is None and load(eh, req.id).status == "open"
    # the lead double-clicks Claim (and presses it once more later, as a retry would)
    threads = [threading.Thread(target=press, args=(LEAD, Action.CLAIM)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eh.wait(lambda: load(eh, req.id).assignee_id == LEAD)
    press(LEAD, Action.CLAIM)
    eh.wait(lambda: [p for p in eh.sim.response_posts if "You already have #1" in str(p)])
    assert events(eh, req.id).count("claimed") == 1 and events(eh, req.id).count("first_response") == 1
    eh.clock.advance(hours=1)
    for _ in range(2):
        eh.tick()
    assert len(eh.sim.messages(LEADS_CH)) == 1  # escalated once; the claim ended the first-response SLA


def test_assigning_twice_at_once_tells_the_assignee_once(eh: Harness) -> None:
    req = ask(eh, "Budget line")

    def submit() -> None:
        eh.driver.view_submission(user_id=LEAD, callback_id=Callback.ASSIGN_MODAL, private_metadata=str(req.id),
                                  values={Block.ASSIGNEE: {"value": {"type": "static_select",
                                                                     "selected_option": {"value": BOB}}}})

    threads = [threading.Thread(target=submit) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    eh.wait(lambda: eh.sim.messages(eh.sim.dm_channel_for(BOB)))
    eh.tick()
    assert len(eh.sim.messages(eh.sim.dm_channel_for(BOB))) == 1
    assert events(eh, req.id).count("assigned") == 1


def test_a_deactivated_assignee_fails_the_dm_once_and_the_sla_net_still_catches_the_request(
        eh: Harness, caplog: pytest.LogCaptureFixture) -> None:
    req = ask(eh, "Who has this?")
    eh.tick()
    # deactivated between the assignment and its DM (an assignment to someone deactivated already is
    # refused: tests/test_sla_clicks.py)
    eh.sim.fail_next("chat.postMessage", "user_disabled", channel=BOB)
    with caplog.at_level(logging.ERROR):
        eh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASSIGN_MODAL, private_metadata=str(req.id),
                                  values={Block.ASSIGNEE: {"value": {"type": "static_select",
                                                                     "selected_option": {"value": BOB}}}})
        eh.wait(lambda: load(eh, req.id).assignee_id == BOB)
        failed = eh.wait(lambda: [j for j in _jobs(eh, "assigned_dm") if j.status == "failed"])
    eh.sim.user(BOB).deleted = True
    assert failed[0].attempts == 1 and failed[0].last_error == "user_disabled"  # at once, not retried
    assert any("failed permanently: user_disabled" in r.getMessage() for r in caplog.records)
    eh.clock.advance(minutes=23)
    eh.tick()
    (reminder,) = [m for m in replies(eh, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]
    assert "It is assigned to <@U0BOB>" in texts_of(reminder)  # the team sees who holds it
    eh.clock.advance(minutes=8)
    eh.tick()
    (escalation,) = eh.wait(lambda: eh.sim.messages(LEADS_CH))
    assert "It is assigned to <@U0BOB>" in texts_of(escalation)
    # a lead gives it to someone who is there
    eh.driver.view_submission(user_id=LEAD, callback_id=Callback.ASSIGN_MODAL, private_metadata=str(req.id),
                              values={Block.ASSIGNEE: {"value": {"type": "static_select",
                                                                 "selected_option": {"value": ALICE}}}})
    eh.wait(lambda: eh.sim.messages(eh.sim.dm_channel_for(ALICE)))
    assert load(eh, req.id).assignee_id == ALICE


def _jobs(h: Harness, kind: str) -> list[Job]:
    with session_scope(h.deps.engine) as s:
        return list(s.exec(select(Job).where(Job.kind == kind)).all())


@pytest.fixture
def rr(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    yield from harness(sim, db_url, start=START, config=sla_config(auto_assign="round_robin"))


def test_round_robin_skips_a_deactivated_responder_and_takes_them_out_of_the_turn(
        rr: Harness, caplog: pytest.LogCaptureFixture) -> None:
    for user in (ALICE, BOB):
        rr.driver.block_action(user_id=user, action_id=Action.AVAILABLE.value, value="finance", view={"type": "home"})
    rr.wait(lambda: "*available*" in texts_of(rr.sim.published_views.get(BOB) or {}))
    first = ask(rr, "First")
    assert rr.wait(lambda: load(rr, first.id).assignee_id) == ALICE
    rr.sim.user(BOB).deleted = True  # Bob would be next
    with caplog.at_level(logging.WARNING):
        second = ask(rr, "Second", user=DAVE)
        assert rr.wait(lambda: load(rr, second.id).assignee_id) == ALICE
    assert any(BOB in r.getMessage() and "round robin" in r.getMessage() for r in caplog.records)
    rr.driver.event(rr.driver.app_home_opened(BOB))
    rr.wait(lambda: "not available" in texts_of(rr.sim.published_views.get(BOB) or {}))
