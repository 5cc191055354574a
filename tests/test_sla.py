"""SLA reminders and escalations end to end: the real app, the simulator, the scheduler's tick and an
injectable clock (issue 15)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.render.ids import Action, Block, Callback
from bot.services.sealed import key_for, seal
from slacksim.simulator import SlackSimulator
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import ALICE, BOB, CAROL, DAVE, FINANCE_CH, GENERAL, IT_CH, TEST_CONFIG, Harness, write_config
from tests.sla_helpers import LEAD, LEADS_CH, harness, replies, sla_events, timer_jobs
from tests.test_request_loop import ask, button, load, texts_of

ROOT = Path(__file__).resolve().parent.parent
MONDAY_9_BERLIN = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def sh(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    yield from harness(sim, db_url, start=MONDAY_9_BERLIN)


def finance_form(h: Harness) -> str:
    """The sealed private_metadata of Finance's request form, as askdesk opens it."""
    return seal(key_for(h.deps.settings), {"team": "finance", "channel": None, "permalink": None})


def reminders(h: Harness, req: Request) -> list[dict]:
    return [m for m in replies(h, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]


def test_reminder_at_75_percent_then_one_escalation_with_claim_and_assign(sh: Harness) -> None:
    req = ask(sh, "Where is my refund?")
    sh.tick()  # plans the timers: 30m first response, reminder at 22.5m
    assert timer_jobs(sh, req.id)["sla:1:0:fr:remind"] == ("pending", req.created_at + timedelta(minutes=22.5))
    sh.clock.advance(minutes=22)
    sh.tick()
    assert reminders(sh, req) == []
    sh.clock.advance(minutes=1)
    sh.tick()
    (reminder,) = reminders(sh, req)
    assert "first response to #1 is due in 7m" in texts_of(reminder)
    assert "Nobody has claimed it yet" in texts_of(reminder)
    assert reminder["metadata"]["event_payload"]["ref"] == "sla:1:0:fr:remind"
    sh.tick()
    sh.tick()
    assert len(reminders(sh, req)) == 1  # one per request and SLA
    assert sh.sim.messages(LEADS_CH) == []

    sh.clock.advance(minutes=8)  # breached at 30 min
    sh.tick()
    (escalation,) = sh.sim.messages(LEADS_CH)
    shown = texts_of(escalation)
    assert "#1 in Finance has had no first response within its SLA of 30m" in shown and "overdue 1m" in shown
    assert "req_claim" in shown and "req_assign" in shown
    (lead_dm,) = sh.sim.messages(sh.sim.dm_channel_for(LEAD))
    assert lead_dm["metadata"]["event_payload"]["ref"] == "sla:1:0:fr:escalate"
    # the triage message names the deadline as a Slack date, which Slack shows as "… ago" by now
    due = int((req.created_at + timedelta(minutes=30)).timestamp())
    assert f"First response due <!date^{due}^" in texts_of(sh.triage(FINANCE_CH)[0])
    for _ in range(3):
        sh.tick()
    assert len(sh.sim.messages(LEADS_CH)) == 1 and len(reminders(sh, req)) == 1
    assert [k for k, _ in sla_events(sh, req.id)] == ["sla_reminder", "sla_breached", "sla_escalated"]

    # a lead claims from the escalation message (leads need not be in the triage channel)
    button(sh, req, Action.CLAIM, LEAD)
    stored = sh.wait(lambda: (r := load(sh, req.id)).assignee_id == LEAD and r)
    assert stored.sla_responded_at is not None


def test_a_claim_before_the_reminder_cancels_the_first_response_timers(sh: Harness) -> None:
    req = ask(sh, "Payroll question")
    sh.tick()
    sh.clock.advance(minutes=5)
    button(sh, req, Action.CLAIM, ALICE)
    sh.wait(lambda: load(sh, req.id).status == "claimed")
    sh.tick()
    timers = timer_jobs(sh, req.id)
    assert timers["sla:1:0:fr:remind"][0] == timers["sla:1:0:fr:escalate"][0] == "cancelled"
    assert timers["sla:1:0:res:remind"][0] == "pending"  # the resolution SLA runs on
    sh.clock.advance(hours=2)
    sh.tick()
    assert reminders(sh, req) == [] and sh.sim.messages(LEADS_CH) == []


def test_a_thread_reply_is_the_first_response_and_resolving_cancels_everything(sh: Harness) -> None:
    req = ask(sh, "Invoice copy?")
    sh.tick()
    sh.driver.event(sh.driver.message_event(BOB, FINANCE_CH, "On it", thread_ts=req.triage_ts))
    sh.wait(lambda: load(sh, req.id).sla_responded_at is not None)
    button(sh, req, Action.RESOLVE, BOB)
    sh.wait(lambda: load(sh, req.id).status == "resolved")
    sh.tick()
    assert {status for status, _ in timer_jobs(sh, req.id).values()} == {"cancelled"}
    sh.clock.advance(days=3)
    sh.tick()
    assert reminders(sh, req) == [] and sh.sim.messages(LEADS_CH) == [] and sla_events(sh, req.id) == []


def test_a_timer_job_checks_stored_state_when_it_runs(sh: Harness) -> None:
    """Even if the planner has not run since the claim (same tick), the due reminder sends nothing."""
    req = ask(sh, "Quick one")
    sh.tick()
    sh.clock.advance(minutes=25)
    button(sh, req, Action.CLAIM, ALICE)
    sh.wait(lambda: load(sh, req.id).status == "claimed")
    sh.deps.outbox.tick()  # the due jobs, without the planner
    assert reminders(sh, req) == []
    assert timer_jobs(sh, req.id)["sla:1:0:fr:remind"][0] == "cancelled"


def test_transfer_cancels_and_the_new_teams_sla_starts(sh: Harness) -> None:
    req = ask(sh, "Actually a laptop problem")
    sh.tick()
    sh.clock.advance(minutes=20)
    sh.driver.view_submission(user_id=ALICE, callback_id=Callback.TRANSFER_MODAL, private_metadata=str(req.id),
                              values={Block.TRANSFER_TEAM: {"value": {"type": "static_select",
                                                                       "selected_option": {"value": "it"}}}})
    moved = sh.wait(lambda: (r := load(sh, req.id)).triage_channel == IT_CH and r)
    assert moved.sla_cycle == 1 and moved.sla_start_at == sh.clock.now
    sh.tick()
    timers = timer_jobs(sh, req.id)
    assert {timers[k][0] for k in timers if k.startswith("sla:1:0:")} == {"cancelled"}
    # IT's business clock (Shanghai 09:00-18:00): Monday 08:20 UTC is 16:20 there; 1h SLA, reminder at 45m
    assert timers["sla:1:1:fr:remind"] == ("pending", datetime(2026, 12, 7, 9, 5, tzinfo=UTC))
    assert timers["sla:1:1:fr:escalate"] == ("pending", datetime(2026, 12, 7, 9, 20, tzinfo=UTC))
    sh.clock.advance(minutes=15)  # finance's reminder time is long past: nothing for finance
    sh.tick()
    assert reminders(sh, req) == []


def test_reopen_re_arms_the_timers_in_a_new_cycle(sh: Harness) -> None:
    req = ask(sh, "Expense limit?")
    button(sh, req, Action.RESOLVE, DAVE, where="dm")  # the requester closes it himself
    sh.wait(lambda: load(sh, req.id).status == "resolved")
    sh.tick()
    sh.clock.advance(hours=1)
    button(sh, load(sh, req.id), Action.REOPEN, DAVE, where="dm")
    sh.wait(lambda: load(sh, req.id).status == "open")
    sh.tick()
    timers = timer_jobs(sh, req.id)
    assert timers["sla:1:1:fr:escalate"] == ("pending", sh.clock.now + timedelta(minutes=30))
    assert timers["sla:1:1:res:escalate"] == ("pending", sh.clock.now + timedelta(days=2))


def test_urgency_sets_the_sla_and_the_triage_message_shows_the_due_time(sh: Harness) -> None:
    sh.driver.view_submission(user_id=DAVE, callback_id=Callback.REQUEST_MODAL,
                              private_metadata=finance_form(sh), values={
                                  Block.SUMMARY: {"value": {"type": "plain_text_input", "value": "Card blocked"}},
                                  Block.URGENCY: {"value": {"type": "radio_buttons",
                                                            "selected_option": {"value": "high"}}}})
    sh.wait(lambda: sh.triage(FINANCE_CH))
    due = int((MONDAY_9_BERLIN + timedelta(minutes=10)).timestamp())
    assert f"First response due <!date^{due}^" in texts_of(sh.triage(FINANCE_CH)[0])
    sh.tick()
    assert timer_jobs(sh, 1)["sla:1:0:fr:escalate"][1] == MONDAY_9_BERLIN + timedelta(minutes=10)


def test_business_clock_reminder_outside_hours_waits_for_the_next_business_minute(sh: Harness) -> None:
    # Friday 09:30 UTC is 17:30 in Shanghai: 30 working minutes left that day
    sh.clock.set(datetime(2026, 12, 4, 9, 30, tzinfo=UTC))
    req = ask(sh, "VPN token", command="/ask-it")
    sh.tick()
    # 1h SLA: 30 min on Friday, then Monday 09:00-09:30 Shanghai; the reminder (45 min) Monday 09:15
    timers = timer_jobs(sh, req.id)
    assert timers["sla:1:0:fr:remind"][1] == datetime(2026, 12, 7, 1, 15, tzinfo=UTC)
    # downtime: the clock next ticks on Saturday with the job made due by hand (as after a clock change)
    sh.clock.set(datetime(2026, 12, 5, 4, 0, tzinfo=UTC))
    with session_scope(sh.deps.engine) as s:
        job = s.exec(select(Job).where(Job.key == "sla:1:0:fr:remind")).one()
        job.due_at = sh.clock.now
        s.add(job)
    sh.deps.outbox.tick()  # only the due jobs
    assert replies(sh, IT_CH, req.triage_ts) == []
    assert timer_jobs(sh, req.id)["sla:1:0:fr:remind"] == ("pending", datetime(2026, 12, 7, 1, 15, tzinfo=UTC))
    sh.clock.set(datetime(2026, 12, 7, 1, 15, tzinfo=UTC))  # Monday 09:15 in Shanghai
    sh.tick()
    (reminder,) = replies(sh, IT_CH, req.triage_ts)
    assert "due in 15m" in texts_of(reminder)


def test_escalation_falling_at_closing_time_waits_for_the_next_morning(sh: Harness) -> None:
    # Monday 09:00 UTC is 17:00 in Shanghai: the 1h SLA runs out exactly at 18:00 closing
    sh.clock.set(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    req = ask(sh, "Printer", command="/ask-it")
    sh.tick()
    assert timer_jobs(sh, req.id)["sla:1:0:fr:escalate"][1] == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    sh.clock.set(datetime(2026, 12, 7, 10, 0, tzinfo=UTC))
    sh.tick()
    assert sla_events(sh, req.id) == []  # the reminder came too late (breached) and the office is closed
    # Tuesday 09:00 Shanghai = 01:00 UTC
    assert timer_jobs(sh, req.id)["sla:1:0:fr:escalate"] == ("pending", datetime(2026, 12, 8, 1, 0, tzinfo=UTC))
    sh.clock.set(datetime(2026, 12, 8, 1, 0, tzinfo=UTC))
    sh.tick()
    assert [k for k, _ in sla_events(sh, req.id)][-1] == "sla_breached"


def test_the_app_home_queue_orders_by_due_time_overdue_first(sh: Harness) -> None:
    normal = ask(sh, "Normal one")
    sh.clock.advance(minutes=1)
    sh.driver.view_submission(user_id=DAVE, callback_id=Callback.REQUEST_MODAL,
                              private_metadata=finance_form(sh), values={
                                  Block.SUMMARY: {"value": {"type": "plain_text_input", "value": "Urgent one"}},
                                  Block.URGENCY: {"value": {"type": "radio_buttons",
                                                            "selected_option": {"value": "high"}}}})
    sh.wait(lambda: len(sh.triage(FINANCE_CH)) == 2)
    sh.tick()
    sh.clock.advance(minutes=15)  # 08:16: the urgent one (due 08:11) is overdue, the normal one due at 08:30
    sh.driver.event(sh.driver.app_home_opened(ALICE))
    home = sh.wait(lambda: sh.sim.published_views.get(ALICE))
    shown = texts_of(home)
    assert shown.index("Urgent one") < shown.index("Normal one")
    assert "overdue 5m" in shown and "due in 14m" in shown
    assert normal.id == 1


def test_messages_elsewhere_change_nothing(sh: Harness) -> None:
    """Messages elsewhere (not a triage thread, not a DM thread) change nothing."""
    req = ask(sh, "Hello")
    sh.driver.event(sh.driver.message_event(CAROL, GENERAL, "lunch?"))
    sh.tick()
    assert load(sh, req.id).sla_responded_at is None


def test_the_digest_counts_reminders_escalations_and_breaches_per_urgency(sh: Harness, db_url: str,
                                                                          tmp_path: Path) -> None:
    normal = ask(sh, "Normal one")
    sh.driver.view_submission(user_id=DAVE, callback_id=Callback.REQUEST_MODAL,
                              private_metadata=finance_form(sh), values={
                                  Block.SUMMARY: {"value": {"type": "plain_text_input", "value": "Urgent one"}},
                                  Block.URGENCY: {"value": {"type": "radio_buttons",
                                                            "selected_option": {"value": "high"}}}})
    sh.wait(lambda: len(sh.triage(FINANCE_CH)) == 2)
    sh.tick()
    for minutes in (8, 3, 12, 8):  # high: reminder, breach; normal: reminder, breach
        sh.clock.advance(minutes=minutes)
        sh.tick()
        sh.tick()
    assert len(sh.sim.messages(LEADS_CH)) == 2
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url,
           "ASKDESK_CONFIG": str(write_config(tmp_path / "askdesk.toml", TEST_CONFIG)), "LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-m", "bot", "digest", "--team", "finance", "--week", "2026-W50",
                          "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)["sla"]
    one_each = {"reminders": 1, "escalations": 1, "breaches": 1}
    assert data["by_urgency"] == {"high": one_each, "normal": one_each}
    assert (data["reminders"], data["escalations"], data["breaches"]) == (2, 2, 2)
    # open requests by due time, overdue first (the urgent one is due earliest)
    assert [r["id"] for r in data["open_by_due"]["requests"]] == [2, normal.id]
    text = subprocess.run([sys.executable, "-m", "bot", "digest", "--team", "finance", "--week", "2026-W50",
                           "--dry-run"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
    assert "SLA: 2 reminders sent, 2 escalations, 2 breaches" in text
    assert "High: 1 / 1 / 1 · Normal: 1 / 1 / 1" in text
    listed = text[text.index("Open by due time (2), overdue first:"):]
    assert listed.index("Urgent one") < listed.index("Normal one") and "overdue" in listed


def test_business_clock_skips_a_holiday_and_the_weekend(sh: Harness) -> None:
    # Thursday 24 Dec 17:30 in Shanghai; Friday 25 Dec is IT's holiday
    sh.clock.set(datetime(2026, 12, 24, 9, 30, tzinfo=UTC))
    req = ask(sh, "Before the holidays", command="/ask-it")
    sh.tick()
    # 1h SLA: 30 min on Thursday, then Monday 28 Dec 09:00-09:30 in Shanghai (01:30 UTC)
    assert timer_jobs(sh, req.id)["sla:1:0:fr:escalate"] == ("pending", datetime(2026, 12, 28, 1, 30, tzinfo=UTC))


def test_business_clock_across_the_dst_change_keeps_office_hours(sim: SlackSimulator, db_url: str) -> None:
    from tests.sla_helpers import sla_config

    config = sla_config(sla_clock="business", hours="09:00-18:00", days="mon-fri", timezone="Europe/Berlin")
    friday_1745_berlin = datetime(2026, 3, 27, 16, 45, tzinfo=UTC)  # UTC+1 before the change
    for h in harness(sim, db_url, start=friday_1745_berlin, config=config):
        req = ask(h, "Just before the weekend")
        h.tick()
        # 30m SLA: 15 min on Friday, 15 min from 09:00 on Monday, which is UTC+2 after the change
        assert timer_jobs(h, req.id)["sla:1:0:fr:escalate"] == ("pending",
                                                                 datetime(2026, 3, 30, 7, 15, tzinfo=UTC))
