"""The running clock drains a burst of due jobs at the pace the workers allow, not one batch of idle
workers per tick (issue 15's burst of 10,000 reminders), without giving up what issue 14 asked of it:
a slow Slack call holds up no other job, no job is claimed without an idle worker to run it, and two
instances feeding at once send every reminder exactly once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import col, func, select

from bot.services import sla as sla_service
from slacksim.simulator import SlackSimulator
from storage import jobs as job_queries
from storage.models import Job, RequestEvent
from storage.session import session_scope
from tests.conftest import FINANCE_CH, IT_CH, Harness
from tests.sla_helpers import replies, two_instances
from tests.test_request_loop import ask, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # a Monday: every team is at work


def sweep_job(h: Harness, channel: str, ref: str) -> None:
    """A job that asks Slack for the channel's history (a real job kind; `delay_next` makes it slow)."""
    with session_scope(h.deps.engine) as s:
        job_queries.enqueue(s, kind="sweep", key=f"sweep:test:{ref}", due_at=h.clock(),
                            payload={"channel": channel, "event_type": "askdesk_request", "ref": ref})


def statuses(h: Harness, prefix: str) -> dict[str, str]:
    with session_scope(h.deps.engine) as s:
        jobs = s.exec(select(Job).where(col(Job.key).like(f"{prefix}%"))).all()
        return {j.key: j.status for j in jobs}


def test_one_feed_drains_a_burst_larger_than_the_workers_while_a_slow_call_waits(h: Harness) -> None:
    """The harness has 4 workers. One feed (a single tick of the running clock) claims 4 jobs; as
    they finish, the workers claim the rest themselves, so 20 due jobs are all done before any other
    tick, while the slow one still waits on Slack."""
    h.sim.delay_next("conversations.history", 3.0, channel=FINANCE_CH)
    sweep_job(h, FINANCE_CH, "slow")
    h.clock.advance(seconds=1)  # the quick ones fall due after the slow one: it is claimed first
    for i in range(20):
        sweep_job(h, IT_CH, f"quick-{i:02d}")
    assert h.deps.outbox.feed() == 4
    h.wait(lambda: h.sim.pending_faults() == 0)  # the slow job is waiting on Slack
    done = h.wait(lambda: (s := statuses(h, "sweep:test:quick-")) and all(v == "done" for v in s.values()) and s,
                  timeout=3)
    assert len(done) == 20
    assert statuses(h, "sweep:test:slow") == {"sweep:test:slow": "running"}
    h.wait(lambda: statuses(h, "sweep:test:slow") == {"sweep:test:slow": "done"}, timeout=10)


def test_workers_claim_no_more_than_the_idle_workers_can_run(h: Harness) -> None:
    """While every worker waits on a slow Slack, nothing more is claimed: the due jobs stay pending
    for another instance (or this one once a worker is free), none is leased to a queue here."""
    h.sim.delay_next("conversations.history", 2.0, count=4, channel=FINANCE_CH)
    for i in range(4):
        sweep_job(h, FINANCE_CH, f"slow-{i}")
    h.clock.advance(seconds=1)
    for i in range(6):
        sweep_job(h, IT_CH, f"later-{i}")
    assert h.deps.outbox.feed() == 4
    h.wait(lambda: h.sim.pending_faults() == 0)  # all four workers are waiting on Slack
    assert h.deps.outbox.feed() == 0  # the clock's next tick finds no idle worker
    assert set(statuses(h, "sweep:test:later-").values()) == {"pending"}
    # as the slow ones finish, the workers take the rest without another tick
    h.wait(lambda: set(statuses(h, "sweep:test:").values()) == {"done"}, timeout=10)


def test_a_stopped_outbox_claims_nothing_more(h: Harness) -> None:
    for i in range(6):
        sweep_job(h, IT_CH, f"after-stop-{i}")
    h.deps.outbox.stop()
    assert h.deps.outbox.feed() == 0
    assert set(statuses(h, "sweep:test:after-stop-").values()) == {"pending"}


def reminders_sent(h: Harness) -> int:
    with session_scope(h.deps.engine) as s:
        return int(s.exec(select(func.count()).select_from(RequestEvent)
                          .where(RequestEvent.kind == "sla_reminder")).one())


def quiet(h: Harness) -> bool:
    with session_scope(h.deps.engine) as s:
        return not s.exec(select(Job.id).where(Job.status == "running")).first()


def test_two_instances_feeding_at_once_send_each_reminder_of_a_burst_exactly_once(
        sim: SlackSimulator, db_url: str) -> None:
    with two_instances(sim, db_url, START) as two:
        send_a_burst(*two)


def send_a_burst(first: Harness, second: Harness) -> None:
    requests = [ask(first if i % 2 else second, f"Burst {i}") for i in range(10)]
    while sla_service.plan_pending(first.deps, budget=10.0).requests:  # plans the timers
        pass
    first.clock.advance(minutes=23)  # every first-response reminder (75 % of 30 min) is due
    for _ in range(30):  # rounds of both clocks ticking at once; paced reminders move a few seconds on
        threads = [threading.Thread(target=h.deps.outbox.feed) for h in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first.wait(lambda: quiet(first))
        if reminders_sent(first) == len(requests):
            break
        first.clock.advance(seconds=5)
    for req in requests:
        sent = [m for m in replies(first, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]
        assert len(sent) == 1, req.id
    assert reminders_sent(first) == len(requests)
    assert first.clock() < START + timedelta(minutes=30)  # before any escalation fell due


def test_a_fed_job_that_finishes_before_its_claim_returns_does_not_block_the_clock(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A job can finish before the feed that claimed it has let go of its lock (the feeding thread
    descheduled between submit and the next line). Freeing the worker and claiming again happen in
    the worker, so the feed still returns; a done-callback would have run them in the feeding thread
    while it held the feed lock, and the clock would have hung for good."""
    finished = threading.Event()
    run = h.deps.outbox.run

    def run_and_mark(job: Any) -> str:
        try:
            return run(job)
        finally:
            finished.set()

    submit = h.deps.outbox.pool.submit

    def slow_feeder(fn: Any, *args: Any) -> Any:
        future = submit(fn, *args)
        finished.wait(5)  # the feeding thread gets the CPU back only once the job is done
        return future

    monkeypatch.setattr(h.deps.outbox, "run", run_and_mark)
    monkeypatch.setattr(h.deps.outbox.pool, "submit", slow_feeder)
    for i in range(8):  # more due than workers: the finished worker claims again
        sweep_job(h, IT_CH, f"fast-{i}")
    feeder = threading.Thread(target=h.deps.outbox.feed, daemon=True)
    feeder.start()
    feeder.join(10)
    assert not feeder.is_alive()
    h.wait(lambda: set(statuses(h, "sweep:test:fast-").values()) == {"done"}, timeout=10)
