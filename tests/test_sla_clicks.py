"""Old pickers, double clicks and Slack's retries on the SLA paths, through the real app and the
simulator (issue 15): an assignee removed from the triage channel or deactivated since the picker opened
is refused (the request left as it was) and no longer offered; who may Claim/Assign from a lead's
escalation DM; Assign, "Ask requester" and Reply submitted twice do one thing and tell the second
submitter so; the requester's answer in the DM thread delivered twice by Slack resumes the clock once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.render.ids import Action, Block, Callback
from slacksim.driver import DriverResponse
from slacksim.simulator import SlackSimulator
from tests.conftest import ALICE, BOB, DAVE, ERIN, FINANCE_CH, Harness
from tests.sla_helpers import LEAD, harness, replies
from tests.test_request_loop import ask, button, events, load, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
FRANK = "U0FRANK"


@pytest.fixture
def sh(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    sim.add_user(FRANK, name="frank", tz="Europe/Berlin")
    sim.channels[FINANCE_CH].members.append(FRANK)
    yield from harness(sim, db_url, start=START)


def select(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def text_input(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def open_picker(h: Harness, req: Any, user: str = ALICE) -> tuple[dict[str, Any], list[str]]:
    """Press Assign; the picker once its names are in, and the user ids it offers."""
    opened = len(h.sim.opened_views)
    button(h, req, Action.ASSIGN, user)
    view_id = h.wait(lambda: len(h.sim.opened_views) > opened and h.sim.opened_views[opened]["id"])
    picker = h.wait(lambda: (v := h.sim.find_view(view_id=view_id)) and
                    "static_select" in texts_of({"blocks": v["blocks"]}) and v)
    options = [o["value"] for b in picker["blocks"] if b["type"] == "input" for o in b["element"]["options"]]
    return picker, sorted(options)


def submit_assign(h: Harness, picker: dict[str, Any], assignee: str, user: str = ALICE) -> DriverResponse:
    return h.driver.view_submission(user_id=user, callback_id=Callback.ASSIGN_MODAL, view_id=picker["id"],
                                    values={Block.ASSIGNEE: select(assignee)})


def left_as_it_was(h: Harness, request_id: int) -> None:
    stored = load(h, request_id)
    assert (stored.assignee_id, stored.status) == (None, "open")
    assert "assigned" not in events(h, request_id)


def test_an_old_picker_cannot_assign_to_someone_removed_from_the_triage_channel(sh: Harness) -> None:
    req = ask(sh, "Reimburse my train ticket")
    picker, offered = open_picker(sh, req)
    assert offered == [ALICE, BOB, FRANK]
    sh.sim.channels[FINANCE_CH].members.remove(BOB)  # Bob moves to another team meanwhile
    resp = submit_assign(sh, picker, BOB)
    assert resp.status == 200 and '"response_action": "errors"' in resp.body.replace('":"', '": "')
    assert "<@U0BOB> is not in Finance's triage channel" in resp.body
    left_as_it_was(sh, req.id)
    assert sh.sim.messages(sh.sim.dm_channel_for(BOB)) == []
    assert open_picker(sh, req)[1] == [ALICE, FRANK]  # no longer offered
    # and someone who left the channel since opening a picker cannot use it
    picker, _ = open_picker(sh, req, user=FRANK)
    sh.sim.channels[FINANCE_CH].members.remove(FRANK)
    resp = submit_assign(sh, picker, ALICE, user=FRANK)
    assert "errors" in resp.body and "Only Finance's responders and leads can assign" in resp.body
    left_as_it_was(sh, req.id)


def test_an_old_picker_cannot_assign_to_someone_deactivated_since(sh: Harness) -> None:
    req = ask(sh, "Who has this?")
    picker, offered = open_picker(sh, req)
    assert FRANK in offered
    sh.sim.user(FRANK).deleted = True  # deactivated after the picker listed him (still a channel member)
    resp = submit_assign(sh, picker, FRANK)
    assert "errors" in resp.body and "<@U0FRANK> was deactivated in Slack; please choose someone else." in resp.body
    left_as_it_was(sh, req.id)
    assert open_picker(sh, req)[1] == [ALICE, BOB]  # the picker no longer offers him
    resp = submit_assign(sh, picker, BOB)  # the same old picker, someone who is there: fine
    assert resp.status == 200 and "errors" not in resp.body
    sh.wait(lambda: load(sh, req.id).assignee_id == BOB)
    sh.wait(lambda: sh.sim.messages(sh.sim.dm_channel_for(BOB)))


def escalated(h: Harness, text: str) -> tuple[Any, dict[str, Any]]:
    """A Finance request past its 30-minute first-response SLA; its escalation DM to the lead."""
    req = ask(h, text)
    h.tick()
    h.clock.advance(minutes=31)
    h.tick()
    h.tick()
    dm = h.wait(lambda: h.sim.messages(h.sim.dm_channel_for(LEAD)))[0]
    assert "req_claim" in texts_of(dm) and "req_assign" in texts_of(dm)
    return req, dm


def test_from_the_escalation_dm_the_lead_may_assign_and_claim_and_nobody_else(sh: Harness) -> None:
    req, dm = escalated(sh, "Refund, please")
    lead_dm = sh.sim.dm_channel_for(LEAD)

    def press(user: str, action: Action) -> None:
        resp = sh.driver.block_action(user_id=user, action_id=action.value, value=str(req.id), channel_id=lead_dm,
                                      message_ts=dm["ts"])
        assert resp.status == 200

    press(ERIN, Action.CLAIM)  # a random user (a forwarded link, a shared screen)
    sh.wait(lambda: [p for p in sh.sim.response_posts if "Only members of Finance" in str(p)])
    press(ERIN, Action.ASSIGN)
    sh.wait(lambda: (v := sh.sim.find_view(callback_id=Callback.NOTICE_MODAL)) and "responders and leads" in
            texts_of({"blocks": v["blocks"]}))
    left_as_it_was(sh, req.id)
    # the lead is not in the triage channel, yet may assign to a responder...
    press(LEAD, Action.ASSIGN)
    picker = sh.wait(lambda: (v := sh.sim.find_view(callback_id=Callback.ASSIGN_MODAL)) and
                     "static_select" in texts_of({"blocks": v["blocks"]}) and v)
    assert "U0LEAD" not in texts_of({"blocks": picker["blocks"]})  # leads are not offered: not responders
    resp = submit_assign(sh, picker, LEAD, user=LEAD)  # ...but not to themselves
    assert "<@U0LEAD> is not in Finance's triage channel" in resp.body
    submit_assign(sh, picker, ALICE, user=LEAD)
    sh.wait(lambda: load(sh, req.id).assignee_id == ALICE)
    # ...and may claim it themselves
    press(LEAD, Action.CLAIM)
    sh.wait(lambda: load(sh, req.id).assignee_id == LEAD and load(sh, req.id).sla_responded_at is not None)


def test_assign_submitted_twice_assigns_once_and_tells_the_second_submitter(sh: Harness) -> None:
    req = ask(sh, "Budget line")
    first, _ = open_picker(sh, req)
    second, _ = open_picker(sh, req, user=BOB)  # two people, or a double click on Assign: two pickers
    assert "errors" not in submit_assign(sh, first, FRANK).body
    again = submit_assign(sh, second, FRANK, user=BOB)
    assert '"response_action": "update"' in again.body.replace('":"', '": "')
    assert "#1 is already assigned to <@U0FRANK>." in again.body and "errors" not in again.body
    sh.wait(lambda: sh.sim.messages(sh.sim.dm_channel_for(FRANK)))
    sh.tick()
    assert len(sh.sim.messages(sh.sim.dm_channel_for(FRANK))) == 1
    assert events(sh, req.id).count("assigned") == 1


def test_ask_and_reply_submitted_twice_post_once_and_say_so(sh: Harness) -> None:
    req = ask(sh, "My expense was rejected")

    def ask_requester() -> DriverResponse:
        return sh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                                         values={Block.QUESTION: text_input("Which report number?")})

    assert "errors" not in ask_requester().body
    sh.clock.advance(minutes=2)
    again = ask_requester()
    assert "update" in again.body and "You already asked <@U0DAVE> this" in again.body
    dm_channel = load(sh, req.id).dm_channel
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Which report number" in texts_of(m)])
    sh.tick()
    assert len([m for m in replies(sh, dm_channel, req.dm_ts) if "Which report number" in texts_of(m)]) == 1
    assert len([m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Which report number" in texts_of(m)]) == 1
    assert events(sh, req.id).count("waiting_on_requester") == 1
    asked_at = load(sh, req.id).waiting_since
    assert asked_at == START  # the second submission did not move the start of the wait

    def reply() -> DriverResponse:
        return sh.driver.view_submission(user_id=DAVE, callback_id=Callback.REPLY_MODAL, private_metadata=str(req.id),
                                         values={Block.ANSWER: text_input("ER-2231")})

    sh.clock.advance(minutes=8)
    assert "errors" not in reply().body
    again = reply()
    assert "update" in again.body and "Your answer about #1 was already sent to the team." in again.body
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "ER-2231" in texts_of(m)])
    sh.tick()
    assert len([m for m in replies(sh, FINANCE_CH, req.triage_ts) if "ER-2231" in texts_of(m)]) == 1
    stored = load(sh, req.id)
    assert stored.waiting_since is None and stored.sla_paused_seconds == 10 * 60
    assert events(sh, req.id).count("requester_answered") == 1
    # a new question is a new wait: the same answer to it is relayed again
    sh.driver.view_submission(user_id=ALICE, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                              values={Block.QUESTION: text_input("And the one before?")})
    sh.wait(lambda: load(sh, req.id).waiting_since is not None)
    sh.clock.advance(minutes=1)
    answered = reply()
    assert "errors" not in answered.body and "already" not in answered.body
    sh.wait(lambda: len([m for m in replies(sh, FINANCE_CH, req.triage_ts) if "ER-2231" in texts_of(m)]) == 2)


def test_the_requesters_answer_delivered_twice_by_slack_resumes_the_clock_once(sh: Harness) -> None:
    req = ask(sh, "Travel advance")
    sh.driver.view_submission(user_id=BOB, callback_id=Callback.ASK_MODAL, private_metadata=str(req.id),
                              values={Block.QUESTION: text_input("Which trip?")})
    sh.wait(lambda: load(sh, req.id).waiting_since is not None)
    dm_channel = load(sh, req.id).dm_channel
    sh.wait(lambda: [m for m in replies(sh, dm_channel, req.dm_ts) if "Which trip" in texts_of(m)])
    sh.clock.advance(minutes=15)
    answer = sh.driver.message_event(DAVE, dm_channel, "Berlin, next week", thread_ts=req.dm_ts)
    assert sh.driver.event(answer, event_id="Ev0ANSWER01").status == 200
    sh.clock.advance(minutes=5)  # Slack did not see the ack in time and delivers it again
    assert sh.driver.event(answer, event_id="Ev0ANSWER01", retry_num=1).status == 200
    sh.wait(lambda: [m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Berlin, next week" in texts_of(m)])
    sh.tick()
    assert len([m for m in replies(sh, FINANCE_CH, req.triage_ts) if "Berlin, next week" in texts_of(m)]) == 1
    stored = load(sh, req.id)
    assert stored.waiting_since is None and stored.sla_paused_seconds == 15 * 60  # resumed once, at the first
    assert events(sh, req.id).count("requester_answered") == 1
