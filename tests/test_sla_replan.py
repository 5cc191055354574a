"""A changed SLA config re-plans the open requests in bounded steps spread over ticks: each tick marks
one range of request ids after another while its time lasts, the cursor is stored (a restart goes on
where it stopped), every open request is re-planned exactly once, and an instance whose config is
older than the one in force neither rolls it back, nor plans, nor sends a timer under it (issue 15)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.services import sla as sla_service
from slacksim.simulator import SlackSimulator
from storage import sla as sla_queries
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import FINANCE_CH, FakeClock, Harness, make_settings, start_harness
from tests.sla_helpers import add_leads, replies, sla_config, timer_jobs
from tests.test_request_loop import ask, texts_of

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # a Monday
N = 5


def config(first_response: str) -> dict[str, Any]:
    changed = copy.deepcopy(sla_config())
    changed["teams"][0]["first_response_sla"] = first_response
    return changed


@pytest.fixture
def instances(sim: SlackSimulator, db_url: str) -> Iterator[Callable[[dict[str, Any]], Harness]]:
    """Start instances of askdesk on one database and one clock (each with its own config)."""
    add_leads(sim)
    clock, stops = FakeClock(START), []

    def start(cfg: dict[str, Any]) -> Harness:
        h, stop = start_harness(sim, make_settings(sim, db_url, cfg), clock=clock)
        stops.append(stop)
        return h

    yield start
    for stop in reversed(stops):
        stop()


def seeded(start: Callable[[dict[str, Any]], Harness]) -> tuple[Harness, list[Request]]:
    """N open requests planned under the 30 min SLA."""
    h = start(config("30m"))
    reqs = [ask(h, f"Request {n}") for n in range(N)]
    sla_service.plan_pending(h.deps)
    assert all(timer_jobs(h, r.id)[f"sla:{r.id}:0:fr:escalate"] == ("pending", START + timedelta(minutes=30))
               for r in reqs)
    return h, reqs


def step(h: Harness) -> sla_service.PlanResult:
    """One tick's SLA work with no time to spare: one marking statement (2 ids), one planning batch."""
    return sla_service.plan_pending(h.deps, budget=0.0, batch=1, span=2)


def in_force(h: Harness) -> dict[str, sla_queries.StoredPolicy]:
    with session_scope(h.deps.engine) as s:
        return sla_queries.stored_policies(s)


def plans(h: Harness) -> dict[int, str | None]:
    with session_scope(h.deps.engine) as s:
        return {r.id: r.sla_plan for r in s.exec(select(Request)).all()}  # type: ignore[misc]


def fingerprint(h: Harness, team: str = "finance") -> str:
    team_obj = h.deps.settings.team(team)
    assert team_obj is not None
    return sla_service.policy_for(h.deps.settings, team_obj).fingerprint


def test_a_changed_config_is_marked_range_by_range_over_ticks_and_re_plans_each_request_once(
        instances: Callable[[dict[str, Any]], Harness]) -> None:
    before, reqs = seeded(instances)
    after = instances(config("2h"))
    new = fingerprint(after)
    results = [step(after)]
    stored = in_force(after)["finance"]
    assert stored.plan == new and stored.replan_from == 2  # noticed; ids 0-1 marked; the cursor is stored
    assert results[0].marked == 1
    assert plans(after)[reqs[-1].id] != new  # the last one waits for a later tick
    while in_force(after)["finance"].replan_from is not None:
        results.append(step(after))
        assert len(results) < 20
    assert len(results) == 3  # ids 0-1, 2-3, 4-5: a bounded step per tick
    while step(after).requests:
        pass
    for _ in range(3):  # once marked and planned, never again
        results.append(step(after))
    assert sum(r.marked for r in results) == N  # each open request marked exactly once
    assert set(plans(after).values()) == {new}
    assert all(timer_jobs(after, r.id)[f"sla:{r.id}:0:fr:escalate"] == ("pending", START + timedelta(hours=2))
               for r in reqs)
    assert before.deps.settings.team("it") is not None
    assert in_force(after)["it"].replan_from is None  # IT's policy did not change: nothing to mark


def test_a_restart_in_the_middle_goes_on_from_the_stored_cursor(
        instances: Callable[[dict[str, Any]], Harness]) -> None:
    _, reqs = seeded(instances)
    first = instances(config("2h"))
    marked = step(first).marked + step(first).marked
    assert in_force(first)["finance"].replan_from == 4
    second = instances(config("2h"))  # the process restarted with the same config
    while in_force(second)["finance"].replan_from is not None:
        marked += step(second).marked
    while step(second).requests:
        pass
    assert marked == N
    assert set(plans(second).values()) == {fingerprint(second)}


def test_another_change_in_the_middle_starts_again_with_the_newest(
        instances: Callable[[dict[str, Any]], Harness]) -> None:
    _, reqs = seeded(instances)
    first = instances(config("2h"))
    step(first)
    step(first)  # requests 1-3 marked, 1-2 re-planned under 2h (3 waits for the planner), 4-5 not yet
    assert list(plans(first).values()).count(None) == 1
    latest = instances(config("1h"))
    marked = 0
    while (stored := in_force(latest)["finance"]).replan_from is not None or not marked:
        marked += step(latest).marked
    while step(latest).requests:
        pass
    assert stored.plan == fingerprint(latest) and marked == N - 1  # the waiting one needs no mark
    assert set(plans(latest).values()) == {fingerprint(latest)}
    assert all(timer_jobs(latest, r.id)[f"sla:{r.id}:0:fr:escalate"] == ("pending", START + timedelta(hours=1))
               for r in reqs)


def test_an_instance_with_an_older_config_neither_rolls_it_back_nor_plans_nor_sends_under_it(
        instances: Callable[[dict[str, Any]], Harness], caplog: pytest.LogCaptureFixture) -> None:
    old, reqs = seeded(instances)
    old.clock.advance(minutes=1)
    new = instances(config("2h"))  # loaded later: its config is the one in force
    sla_service.check_policies(new.deps, span=1)  # noticed; marking has not reached request 1 yet
    assert in_force(new)["finance"].plan == fingerprint(new)
    old.clock.advance(minutes=22)  # the old plan's reminder (75 % of 30 min) is due now
    with caplog.at_level(logging.WARNING, logger="bot.services.sla"):
        assert sla_service.plan_pending(old.deps).stale
        assert sla_service.plan_pending(old.deps).stale
    assert len([r for r in caplog.records if "newer SLA config" in r.getMessage()]) == 1  # warned once
    assert in_force(old)["finance"].plan == fingerprint(new)  # not rolled back
    key = f"sla:{reqs[0].id}:0:fr:remind"
    old.deps.outbox.tick()  # the old instance's workers take the due timer...
    status, due = timer_jobs(old, reqs[0].id)[key]
    assert (status, due) == ("pending", old.clock() + sla_service.STALE_RETRY)  # ...and leave it
    assert replies(old, FINANCE_CH, reqs[0].triage_ts) == []  # nothing under the old policy
    while sla_service.plan_pending(new.deps).requests or in_force(new)["finance"].replan_from is not None:
        pass
    assert timer_jobs(new, reqs[0].id)[key] == ("pending", START + timedelta(minutes=90))  # 75 % of 2 h
    new.clock.set(START + timedelta(minutes=90))
    new.deps.outbox.tick()
    new.deps.outbox.tick()
    [reminder] = [m for m in replies(new, FINANCE_CH, reqs[0].triage_ts) if "Reminder" in texts_of(m)]
    with session_scope(new.deps.engine) as s:
        assert s.exec(select(Job).where(Job.key == key)).one().status == "done"
