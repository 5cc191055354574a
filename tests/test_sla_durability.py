"""SLA timers are durable jobs: exactly once across a restart, a worker killed mid-send, two instances
ticking at once, and re-planned from stored state when the config changes (issue 15)."""

from __future__ import annotations

import copy
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from bot.services import sla as sla_service
from slacksim.simulator import SlackSimulator
from storage import jobs as job_queries
from storage import requests as request_queries
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import FINANCE_CH, FakeClock, Harness, make_settings, start_harness
from tests.sla_helpers import LEADS_CH, add_leads, replies, sla_config, sla_events, timer_jobs, two_instances
from tests.test_request_loop import ask, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def reminders(h: Harness, req: Request) -> list[dict]:
    return [m for m in replies(h, FINANCE_CH, req.triage_ts) if "Reminder" in texts_of(m)]


def job(h: Harness, key: str) -> Job:
    with session_scope(h.deps.engine) as s:
        return s.exec(select(Job).where(Job.key == key)).one()


def test_timers_planned_before_a_restart_are_sent_once_after_it(sim: SlackSimulator, db_url: str) -> None:
    add_leads(sim)
    settings = make_settings(sim, db_url, sla_config())
    clock = FakeClock(START)
    first, stop_first = start_harness(sim, settings, clock=clock)
    req = ask(first, "Before the restart")
    first.tick()
    stop_first()  # the process goes away with the timers pending
    second, stop_second = start_harness(sim, settings, clock=clock)
    try:
        clock.advance(minutes=23)
        second.tick()
        second.tick()
        assert len(reminders(second, req)) == 1
        clock.advance(minutes=10)
        second.tick()
        second.tick()
        assert len(sim.messages(LEADS_CH)) == 1
    finally:
        stop_second()


def test_a_worker_killed_after_posting_is_reclaimed_and_reconciled_not_reposted(
        sim: SlackSimulator, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_leads(sim)
    h, stop = start_harness(sim, make_settings(sim, db_url, sla_config()), clock=FakeClock(START))
    try:
        req = ask(h, "Killed mid-send")
        h.tick()
        h.clock.advance(minutes=23)
        key = "sla:1:0:fr:remind"
        with session_scope(h.deps.engine) as s:  # a worker that will die holds the lease
            [leased] = job_queries.claim_due(s, owner=h.deps.instance_id, lease=timedelta(minutes=1), limit=1,
                                             now=h.clock(), job_id=job(h, key).id)

        class Killed(BaseException):
            pass

        def die(*args: object, **kwargs: object) -> bool:
            raise Killed()

        monkeypatch.setattr(job_queries, "finish", die)
        with pytest.raises(Killed):
            sla_service.run_timer(h.deps, {"request_id": req.id, "cycle": 0, "sla": "first_response"}, leased)
        monkeypatch.undo()
        assert len(reminders(h, req)) == 1  # Slack has it; the database does not know
        h.tick()  # the lease still holds: nobody touches the job
        assert job(h, key).status == "running"
        h.clock.advance(minutes=2)
        h.tick()
        done = job(h, key)
        assert done.status == "done" and done.attempts == 2
        assert len(reminders(h, req)) == 1  # found through the thread's metadata, not posted again
        assert [k for k, _ in sla_events(h, req.id)] == ["sla_reminder"]
    finally:
        stop()


def test_two_instances_ticking_together_send_each_timer_once(sim: SlackSimulator, db_url: str) -> None:
    with two_instances(sim, db_url, START) as (a, b):
        clock = a.clock
        reqs = [ask(a if n % 2 else b, f"Request {n}") for n in range(8)]
        a.tick()
        clock.advance(minutes=31)  # every reminder and first-response escalation is due

        def run(h: Harness) -> None:
            for _ in range(3):
                h.deps.outbox.tick()

        for _ in range(12):  # posts to the escalation channel are paced: later ones wait for their slot
            threads = [threading.Thread(target=run, args=(h,)) for h in (a, b, a, b)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            clock.advance(seconds=5)
        a.tick()
        refs = [m["metadata"]["event_payload"]["ref"] for m in sim.messages(LEADS_CH)]
        assert sorted(refs) == sorted(f"sla:{r.id}:0:fr:escalate" for r in reqs)
        # the reminders came after the breach (the clock jumped): the escalation said it instead
        assert all(reminders(a, r) == [] for r in reqs)
        for r in reqs:
            assert [k for k, _ in sla_events(a, r.id)] == ["sla_breached", "sla_escalated"]


def test_a_config_change_re_plans_the_open_requests(sim: SlackSimulator, db_url: str) -> None:
    add_leads(sim)
    clock = FakeClock(START)
    before, stop = start_harness(sim, make_settings(sim, db_url, sla_config()), clock=clock)
    req = ask(before, "Plan me twice")
    before.tick()
    assert timer_jobs(before, req.id)["sla:1:0:fr:escalate"][1] == START + timedelta(minutes=30)
    stop()
    changed = copy.deepcopy(sla_config())
    changed["teams"][0].update({"first_response_sla": "2h", "remind_at": "off", "sla_clock": "business",
                                "hours": "10:00-18:00", "timezone": "Europe/Berlin"})
    after, stop = start_harness(sim, make_settings(sim, db_url, changed), clock=clock)
    try:
        after.tick()  # the leader notices the new policy and re-plans
        after.tick()
        timers = timer_jobs(after, req.id)
        # Monday 09:00 Berlin, but the office opens at 10:00: 2 working hours end at 12:00 (11:00 UTC)
        assert timers["sla:1:0:fr:escalate"] == ("pending", datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
        assert timers["sla:1:0:fr:remind"][0] == "cancelled"  # reminders are off now
        with session_scope(after.deps.engine) as s:
            stored = request_queries.get(s, req.id)
            assert stored is not None and stored.sla_due_at == datetime(2026, 12, 7, 11, 0, tzinfo=UTC)
    finally:
        stop()


def test_planning_is_time_boxed_and_resumes_at_the_next_tick(sim: SlackSimulator, db_url: str) -> None:
    add_leads(sim)
    h, stop = start_harness(sim, make_settings(sim, db_url, sla_config()), clock=FakeClock(START))
    try:
        for n in range(5):
            ask(h, f"Batch {n}")
        first = sla_service.plan_pending(h.deps, budget=0.0, batch=2)  # one batch, then out of time
        assert first.requests == 2 and first.created == 8
        rest = sla_service.plan_pending(h.deps, budget=60.0, batch=2)  # the next tick, with time for two batches
        assert rest.requests == 3  # (the default 30 ms fits one batch of two on a loaded machine, not always two)
        assert sla_service.plan_pending(h.deps).requests == 0  # nothing left: one index probe
    finally:
        stop()


def test_planning_batches_are_sized_to_the_time_left_and_every_request_is_planned_once(
        sim: SlackSimulator, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    add_leads(sim)
    h, stop = start_harness(sim, make_settings(sim, db_url, sla_config()), clock=FakeClock(START))
    try:
        for n in range(20):
            ask(h, f"Backlog {n}")
        # the tick's deadline has passed already (other housekeeping took the budget): one small batch
        late = sla_service.plan_pending(h.deps, until=time.monotonic() - 1.0)
        assert late.requests == sla_service.MIN_BATCH == 8
        # batches have been slow lately (1 s a request): one small batch again, not a batch of 32
        monkeypatch.setitem(sla_service._COST, h.deps.instance_id, 1.0)
        assert sla_service.plan_pending(h.deps).requests == 8
        assert sla_service._COST[h.deps.instance_id] > 0.5  # it forgets a slow spell slowly
        monkeypatch.setitem(sla_service._COST, h.deps.instance_id, 1e-6)  # fast again: the rest at once
        assert sla_service.plan_pending(h.deps, budget=10.0).requests == 4
        with session_scope(h.deps.engine) as s:
            timers = s.exec(select(Job.key).where(col(Job.kind).in_(list(sla_service.KINDS.values())))).all()
            unplanned = s.exec(select(Request.id).where(col(Request.sla_plan).is_(None))).all()
        assert len(timers) == len(set(timers)) == 20 * 4 and unplanned == []
    finally:
        stop()


def test_the_clock_gives_time_boxed_housekeeping_the_rest_of_the_tick_budget(h: Harness) -> None:
    from bot.runtime.outbox import Periodic
    from bot.runtime.scheduler import TICK_BUDGET, Clock

    deadlines: list[float] = []
    h.deps.outbox.periodic = [*h.deps.outbox.periodic,
                              Periodic("probe", 0, lambda deps, until: deadlines.append(until), timeboxed=True)]
    clock = Clock(h.deps)
    try:
        before = time.monotonic()
        clock.tick()
        after = time.monotonic()
    finally:
        clock.stop()
    [until] = deadlines
    assert before + TICK_BUDGET <= until <= after + TICK_BUDGET  # counted from the tick's start


def test_a_sent_timer_whose_job_row_was_purged_is_not_sent_again(sim: SlackSimulator, db_url: str) -> None:
    add_leads(sim)
    h, stop = start_harness(sim, make_settings(sim, db_url, sla_config()), clock=FakeClock(START))
    try:
        req = ask(h, "Open for a long time")
        h.tick()
        h.clock.advance(minutes=23)
        h.tick()
        assert len(reminders(h, req)) == 1
        with session_scope(h.deps.engine) as s:  # `askdesk purge` deletes finished jobs...
            s.delete(s.exec(select(Job).where(Job.key == "sla:1:0:fr:remind")).one())
            stored = request_queries.get(s, req.id)
            assert stored is not None
            stored.sla_plan = None  # ...and a later change re-plans the request
            s.add(stored)
        h.tick()
        h.tick()
        assert job(h, "sla:1:0:fr:remind").status == "done"
        assert len(reminders(h, req)) == 1
    finally:
        stop()
