"""Shared set-up for the SLA tests: a config with escalation, business hours and urgency SLAs."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from storage.models import Job, RequestEvent
from storage.session import session_scope
from tests.conftest import ADMIN, ALICE, BOB, CAROL, TEST_CONFIG, FakeClock, Harness, make_settings, start_harness

LEADS_CH, LEAD = "C0LEADS", "U0LEAD"


def sla_config(**finance: Any) -> dict[str, Any]:
    """Finance: calendar clock, 30m / 2d, high urgency 10m / 4h, escalation channel and a lead.
    IT: a business clock in Shanghai (09:00-18:00, mon-fri, with a holiday), 1h / 1d."""
    config = copy.deepcopy(TEST_CONFIG)
    config["teams"][0].update({"escalation_channel": LEADS_CH, "leads": [LEAD],
                               "urgency": {"high": {"first_response_sla": "10m", "resolution_sla": "4h"}},
                               **finance})
    config["teams"][1].update({"sla_clock": "business", "timezone": "Asia/Shanghai", "hours": "09:00-18:00",
                               "days": "mon-fri", "holidays": ["2026-12-25"]})
    return config


def add_leads(sim: Any) -> None:
    sim.add_user(LEAD, name="lead", tz="Europe/Berlin")
    sim.add_channel(LEADS_CH, name="finance-leads", members=[LEAD, "UBOT"])


def harness(sim: Any, db_url: str, *, start: datetime | None = None, config: dict[str, Any] | None = None,
            ) -> Iterator[Harness]:
    add_leads(sim)
    h, stop = start_harness(sim, make_settings(sim, db_url, config or sla_config()), clock=FakeClock(start))
    try:
        yield h
    finally:
        stop()


@contextmanager
def two_instances(sim: Any, db_url: str, start: datetime) -> Iterator[tuple[Harness, Harness]]:
    """Two instances of askdesk on one database and one Slack, sharing one (virtual) wall clock."""
    add_leads(sim)
    settings = make_settings(sim, db_url, sla_config())
    clock = FakeClock(start)
    first, stop_first = start_harness(sim, settings, clock=clock)
    second, stop_second = start_harness(sim, settings, clock=clock)
    try:
        yield first, second
    finally:
        stop_second()
        stop_first()


def timer_jobs(h: Harness, request_id: int) -> dict[str, tuple[str, datetime]]:
    """{key: (status, due_at)} of the request's SLA timers."""
    with session_scope(h.deps.engine) as s:
        jobs = s.exec(select(Job).where(col(Job.key).like(f"sla:{request_id}:%"))).all()
        return {j.key: (j.status, j.due_at) for j in jobs}


def sla_events(h: Harness, request_id: int) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(h.deps.engine) as s:
        rows = s.exec(select(RequestEvent).where(RequestEvent.request_id == request_id,
                                                 col(RequestEvent.kind).like("sla_%"))
                      .order_by(col(RequestEvent.id))).all()
        return [(e.kind, json.loads(e.detail or "{}")) for e in rows]


def replies(h: Harness, channel: str, thread_ts: str) -> list[dict[str, Any]]:
    return [m for m in h.sim.thread(channel, thread_ts) if m["ts"] != thread_ts]


__all__ = ["ADMIN", "ALICE", "BOB", "CAROL", "LEAD", "LEADS_CH", "add_leads", "harness", "replies", "sla_config",
           "sla_events", "timer_jobs", "two_instances"]
