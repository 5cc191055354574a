"""Assign (picker of the team's responders), round robin over available responders, and waiting on
the requester (question in the DM thread, clock paused until the answer) — end to end (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.render.ids import Action, Block, Callback
from slacksim.simulator import SlackSimulator
from tests.conftest import ALICE, BOB, CAROL, DAVE, ERIN, FINANCE_CH, Harness
from tests.sla_helpers import LEAD, LEADS_CH, harness, replies, sla_config, timer_jobs
from tests.test_request_loop import ask, button, events, load, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin


@pytest.fixture
def sh(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    yield from harness(sim, db_url, start=START)


@pytest.fixture
def rr(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    yield from harness(sim, db_url, start=START, config=sla_config(auto_assign="round_robin"))


def select(value: str) -> dict:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def text_input(value: str) -> dict:
    return {"value": {"type": "plain_text_input", "value": value}}


def test_assign_opens_a_picker_of_the_teams_responders_and_tells_the_assignee(sh: Harness) -> None:
    req = ask(sh, "Reimburse my train ticket")
    button(sh, req, Action.ASSIGN, ALICE)
    picker = sh.wait(lambda: (v := sh.sim.find_view(callback_id=Callback.ASSIGN_MODAL)) and
                     "static_select" in texts_of({"blocks": v["blocks"]}) and v)
    options = [o["value"] for b in picker["blocks"] if b["type"] == "input" for o in b["element"]["options"]]
    assert sorted(options) == [ALICE, BOB]  # the triage channel's people; not the bot, not Carol
    assert sh.sim.opened_views[-1]["id"] == picker["id"]  # opened at once, then filled in (views.update)
    sh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASSIGN_MODAL, view_id=picker["id"],
                              values={Block.ASSIGNEE: select(BOB)})
    sh.wait(lambda: load(sh, req.id).assignee_id == BOB)
    stored = load(sh, req.id)
    assert stored.status == "claimed" and stored.sla_responded_at is None  # assigned, not yet answered
    dm = sh.wait(lambda: sh.sim.messages(sh.sim.dm_channel_for(BOB)))
    assert "<@U0ALICE> assigned #1 to you" in texts_of(dm[0]) and "req_claim" in texts_of(dm[0])
    sh.wait(lambda: "<@U0BOB>" in texts_of(sh.triage(FINANCE_CH)[0]))
    sh.wait(lambda: "handled by <@U0BOB>" in texts_of(sh.sim.messages(stored.dm_channel)[0]))
    assert "assigned" in events(sh, req.id)
    # the reminder names the assignee; Bob's Claim is his first response
    sh.tick()
    sh.clock.advance(minutes=23)
    sh.tick()
    (reminder,) = replies(sh, FINANCE_CH, req.triage_ts)
    assert "It is assigned to <@U0BOB>" in texts_of(reminder)
    sh.driver.block_action(user_id=BOB, action_id=Action.CLAIM.value, value=str(req.id),
                           channel_id=sh.sim.dm_channel_for(BOB), message_ts=dm[0]["ts"])
    sh.wait(lambda: load(sh, req.id).sla_responded_at is not None)


def test_only_responders_can_be_assigned_and_only_responders_or_leads_assign(sh: Harness) -> None:
    req = ask(sh, "Budget")
    resp = sh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASSIGN_MODAL,
                                     private_metadata=str(req.id), values={Block.ASSIGNEE: select(CAROL)})
    assert "not in Finance's triage channel" in resp.body
    resp = sh.driver.view_submission(user_id=ERIN, callback_id=Callback.ASSIGN_MODAL,
                                     private_metadata=str(req.id), values={Block.ASSIGNEE: select(BOB)})
    assert "responders and leads" in resp.body
    resp = sh.driver.view_submission(user_id=LEAD, callback_id=Callback.ASSIGN_MODAL,
                                     private_metadata=str(req.id), values={Block.ASSIGNEE: select(ALICE)})
    assert resp.status == 200 and "errors" not in resp.body
    sh.wait(lambda: load(sh, req.id).assignee_id == ALICE)
    # someone else pressing Assign gets the reason instead of a picker
    button(sh, load(sh, req.id), Action.ASSIGN, ERIN)
    sh.wait(lambda: (v := sh.sim.find_view(callback_id=Callback.NOTICE_MODAL)) and "responders and leads" in
            texts_of({"blocks": v["blocks"]}))
    assert sh.sim.messages(LEADS_CH) == []


def test_round_robin_assigns_new_requests_in_turn_among_available_responders(rr: Harness) -> None:
    rr.driver.event(rr.driver.app_home_opened(ALICE))
    home = rr.wait(lambda: rr.sim.published_views.get(ALICE))
    assert "home_available" in texts_of(home) and "not available" in texts_of(home)
    for user in (ALICE, BOB):
        rr.driver.block_action(user_id=user, action_id=Action.AVAILABLE.value, value="finance",
                               view=rr.sim.published_views.get(user) or {"type": "home"})
    rr.wait(lambda: "*available*" in texts_of(rr.sim.published_views.get(BOB) or {}))
    assigned = []
    for n in range(3):
        req = ask(rr, f"Question {n}")
        assigned.append(rr.wait(lambda r=req: load(rr, r.id).assignee_id))
    assert assigned == [ALICE, BOB, ALICE]
    # the triage message is posted with the assignee, and the assignee is told
    assert "<@U0ALICE>" in texts_of(rr.triage(FINANCE_CH)[0])
    dm = rr.wait(lambda: rr.sim.messages(rr.sim.dm_channel_for(ALICE)))
    assert "in turn among Finance's available responders" in texts_of(dm[0])
    # Bob steps away: the next ones go to Alice only
    rr.driver.block_action(user_id=BOB, action_id=Action.AWAY.value, value="finance", view={"type": "home"})
    rr.wait(lambda: "not available" in texts_of(rr.sim.published_views.get(BOB) or {}))
    req = ask(rr, "Question 3")
    assert rr.wait(lambda: load(rr, req.id).assignee_id) == ALICE
    # someone outside the team cannot make themselves available
    resp = rr.driver.block_action(user_id=CAROL, action_id=Action.AVAILABLE.value, value="finance",
                                  view={"type": "home"})
    assert resp.status == 200


def test_waiting_on_the_requester_pauses_the_clock_until_the_answer_in_the_dm_thread(sh: Harness) -> None:
    req = ask(sh, "My expense was rejected")
    sh.tick()
    sh.clock.advance(minutes=10)
    resp = sh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                                     values={Block.QUESTION: text_input("Which report number?")})
    assert resp.status == 200 and "errors" not in resp.body
    dm_channel = load(sh, req.id).dm_channel
    question = sh.wait(lambda: [m for m in replies(sh, dm_channel, req.dm_ts) if "Which report number" in texts_of(m)])
    assert "req_reply" in texts_of(question[0])
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Which report number" in texts_of(m)])
    stored = load(sh, req.id)
    assert stored.waiting_since == sh.clock.now and stored.sla_responded_at == sh.clock.now  # a question answers
    sh.wait(lambda: "Waiting on you" in texts_of(sh.sim.messages(dm_channel)[0]))
    sh.wait(lambda: "Waiting on the requester" in texts_of(sh.triage(FINANCE_CH)[0]))
    sh.tick()
    assert {status for status, _ in timer_jobs(sh, req.id).values()} == {"cancelled"}  # paused
    sh.clock.advance(days=3)  # far past the resolution SLA: nothing is sent while paused
    sh.tick()
    assert not [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]
    assert sh.sim.messages(LEADS_CH) == []
    # the requester answers in the DM thread: relayed to the team, the clock runs again
    sh.driver.event(sh.driver.message_event(DAVE, dm_channel, "It is ER-2231", thread_ts=req.dm_ts))
    sh.wait(lambda: load(sh, req.id).waiting_since is None)
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "It is ER-2231" in texts_of(m)])
    resumed = load(sh, req.id)
    assert resumed.sla_paused_seconds == 3 * 86400
    sh.tick()
    # the 2d resolution SLA from 08:00 Monday, moved by the 3 days paused
    assert timer_jobs(sh, req.id)["sla:1:0:res:escalate"] == ("pending", START + timedelta(days=5))
    assert "requester_answered" in events(sh, req.id)
    sh.wait(lambda: "Waiting on you" not in texts_of(sh.sim.messages(dm_channel)[0]))


def test_the_reply_button_answers_and_only_the_requester_may(sh: Harness) -> None:
    req = ask(sh, "Travel advance")
    sh.driver.view_submission(user_id=BOB, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                              values={Block.QUESTION: text_input("Which trip?")})
    sh.wait(lambda: load(sh, req.id).waiting_since is not None)
    resp = sh.driver.view_submission(user_id=ERIN, callback_id=Callback.REPLY_MODAL, private_metadata=str(req.id),
                                     values={Block.ANSWER: text_input("not mine")})
    assert "who asked" in resp.body
    button(sh, load(sh, req.id), Action.REPLY, DAVE, where="dm")
    sh.wait(lambda: sh.sim.find_view(callback_id=Callback.REPLY_MODAL))
    sh.clock.advance(minutes=20)
    sh.driver.view_submission(user_id=DAVE, callback_id=Callback.REPLY_MODAL, private_metadata=str(req.id),
                              values={Block.ANSWER: text_input("Berlin, next week")})
    sh.wait(lambda: load(sh, req.id).waiting_since is None)
    assert load(sh, req.id).sla_paused_seconds == 20 * 60
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, load(sh, req.id).triage_ts)
                     if "Berlin, next week" in texts_of(m)])


def test_asking_is_for_responders_and_leads_only(sh: Harness) -> None:
    req = ask(sh, "Salary slip")
    resp = sh.driver.view_submission(user_id=ERIN, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                                     values={Block.QUESTION: text_input("?")})
    assert "responders and leads" in resp.body
    assert load(sh, req.id).waiting_since is None
