"""SLA timers across a SIGKILL: the real `askdesk run --http` process dies in the middle of posting a
reminder; the next process reclaims the job when its lease ends and finds the reminder in the thread
instead of posting it again (issue 15)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import select

from slacksim.simulator import SlackSimulator
from storage.models import Job, Request, RequestEvent
from tests.conftest import DAVE, FINANCE_CH, GENERAL
from tests.test_restart_safety import App, pending_faults, read

CONFIG = """
[workspace]
timezone = "Europe/Berlin"

[[teams]]
slug = "finance"
name = "Finance"
channel = "C0FINANCE"
first_response_sla = "30m"

[scheduler]
tick = 0.2
lease = "2s"
"""


@pytest.fixture
def app(sim: SlackSimulator, db_url: str, tmp_path: Path) -> App:
    config = tmp_path / "askdesk.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return App(sim, db_url, config, tmp_path / "askdesk.log")


def reminders(sim: SlackSimulator) -> list[dict]:
    return [m for m in sim.messages(FINANCE_CH)
            if m.get("thread_ts") and (m.get("metadata") or {}).get("event_type") == "askdesk_sla"]


def test_a_reminder_killed_while_posting_is_reclaimed_and_reconciled(sim: SlackSimulator, db_url: str,
                                                                      app: App) -> None:
    try:
        driver = app.start()
        assert driver.slash("/ask-finance", "Remind me once", user_id=DAVE, channel_id=GENERAL).ok
        req = sim.wait_for(lambda: read(db_url, lambda s: (r := s.get(Request, 1)) and r.triage_ts and r.dm_ts and r),
                           timeout=20)
        sim.wait_for(lambda: read(db_url, lambda s: s.exec(select(Job).where(
            Job.key == "sla:1:0:fr:remind", Job.status == "pending")).first()), timeout=20)
        sim.delay_next("chat.postMessage", seconds=3)  # Slack takes the reminder only after 3 s
        # 23 minutes went by (stored state moves, the planner re-plans: the reminder is due now)
        read(db_url, lambda s: s.exec(update(Request).where(Request.id == 1).values(  # type: ignore[call-overload]
            created_at=req.created_at - timedelta(minutes=23), sla_plan=None)))
        sim.wait_for(lambda: not pending_faults(sim), timeout=20)  # the post has reached Slack...
        app.kill()  # ...and the process dies before it hears back
        sim.wait_for(lambda: len(reminders(sim)) == 1, timeout=10)  # Slack still delivers it
        job = read(db_url, lambda s: s.exec(select(Job).where(Job.key == "sla:1:0:fr:remind")).one())
        assert job.status == "running" and job.attempts == 1  # leased to the dead process
        app.start()
        done = sim.wait_for(lambda: (j := read(db_url, lambda s: s.exec(select(Job).where(
            Job.key == "sla:1:0:fr:remind")).one())).status == "done" and j, timeout=30)
        assert done.attempts == 2  # the dead process's attempt, then the reclaim
        assert len(reminders(sim)) == 1 and sim.calls_to("conversations.replies")  # found, not posted again
        counted = read(db_url, lambda s: s.exec(select(RequestEvent.kind).where(
            RequestEvent.kind == "sla_reminder")).all())
        assert counted == ["sla_reminder"]
        with pytest.raises(TimeoutError):  # several more ticks: never a second reminder
            sim.wait_for(lambda: len(reminders(sim)) > 1, timeout=1.5)
    finally:
        app.stop()
