"""SLA deadlines and reminder/escalation times of one request, computed from its stored state (pure).

A request's SLA *cycle* starts when it is created, transferred (the new team's SLAs start) or
reopened. In a cycle two SLAs run from the cycle's start on the team's clock (`WorkCalendar`):
the first response (met by a claim, a thread reply, a question to the requester or a resolution)
and the resolution. Time spent waiting on the requester does not count. Each unmet SLA has two
timers: a reminder at `remind_at` of the SLA (unless reminders are off) and an escalation when it
is breached. Everything here is derived from the stored columns, so a changed config or clock
re-plans the same request to new times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Protocol

from bot.services.sla_clock import SlaSpan, WorkCalendar

FIRST_RESPONSE, RESOLUTION = "first_response", "resolution"
REMIND, ESCALATE = "remind", "escalate"
SLAS = (FIRST_RESPONSE, RESOLUTION)
STAGES = (REMIND, ESCALATE)
_SHORT = {FIRST_RESPONSE: "fr", RESOLUTION: "res"}


class SlaState(Protocol):
    """The stored columns the plan reads (a `storage.models.Request` has them all)."""

    id: int | None
    status: str
    urgency: str
    created_at: datetime
    sla_cycle: int
    sla_start_at: datetime | None
    sla_responded_at: datetime | None
    sla_paused_seconds: int
    waiting_since: datetime | None


@dataclass(frozen=True)
class Targets:
    first_response: SlaSpan
    resolution: SlaSpan

    def of(self, sla: str) -> SlaSpan:
        return self.first_response if sla == FIRST_RESPONSE else self.resolution


@dataclass(frozen=True)
class SlaPolicy:
    """A team's SLA rules: its clock, targets per urgency (with a default) and when to remind."""

    calendar: WorkCalendar
    default: Targets
    by_urgency: Mapping[str, Targets]
    remind_at: float | None  # share of the SLA elapsed, 0 < x < 1; None: reminders off

    def targets(self, urgency: str) -> Targets:
        return self.by_urgency.get(urgency, self.default)

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever anything that moves a timer changes (stored with each planned request)."""
        cal = self.calendar
        parts = [str(cal.business), str(cal.tz), str(cal.hours), str(sorted(cal.days)),
                 str(sorted(cal.holidays)), str(self.remind_at), _targets_key(self.default),
                 *(f"{u}={_targets_key(t)}" for u, t in sorted(self.by_urgency.items()))]
        return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def _targets_key(t: Targets) -> str:
    return f"{t.first_response!r}/{t.resolution!r}"


@dataclass(frozen=True)
class Deadline:
    """An unmet SLA of the current cycle: when it is due and when its reminder falls."""

    sla: str
    due_at: datetime
    remind_at: datetime | None
    target: SlaSpan


@dataclass(frozen=True)
class Timer:
    """A reminder or escalation to send at `due_at`; `key` is its unique outbox key."""

    request_id: int
    cycle: int
    sla: str
    stage: str
    due_at: datetime

    @property
    def key(self) -> str:
        return timer_key(self.request_id, self.cycle, self.sla, self.stage)


def timer_key(request_id: int, cycle: int, sla: str, stage: str) -> str:
    return f"sla:{request_id}:{cycle}:{_SHORT[sla]}:{stage}"


def cycle_start(req: SlaState) -> datetime:
    return req.sla_start_at or req.created_at


def is_open(req: SlaState) -> bool:
    return req.status in ("open", "claimed")


def met(req: SlaState, sla: str) -> bool:
    """Whether this SLA no longer runs in the current cycle."""
    if not is_open(req):
        return True
    return sla == FIRST_RESPONSE and req.sla_responded_at is not None


def due_at(req: SlaState, policy: SlaPolicy, sla: str, *, paused: timedelta | None = None,
           share: float = 1.0) -> datetime:
    """When `share` of the SLA has run on the team's clock since the cycle's start, the time spent waiting
    on the requester (`paused`, default the stored total) not counted."""
    if paused is None:
        paused = timedelta(seconds=max(0, req.sla_paused_seconds or 0))
    work = policy.calendar.working_time(policy.targets(req.urgency).of(sla))
    return policy.calendar.add(cycle_start(req), work * share + paused)


def deadlines(req: SlaState, policy: SlaPolicy) -> list[Deadline]:
    """The unmet SLAs of the current cycle with their due times; none while waiting on the requester
    (the clock is paused) or once the request is resolved."""
    if not is_open(req) or req.waiting_since is not None:
        return []
    targets = policy.targets(req.urgency)
    out = []
    for sla in SLAS:
        if met(req, sla):
            continue
        remind = None
        if policy.remind_at is not None:
            remind = due_at(req, policy, sla, share=policy.remind_at)
        out.append(Deadline(sla=sla, due_at=due_at(req, policy, sla), remind_at=remind, target=targets.of(sla)))
    return out


def timers(req: SlaState, policy: SlaPolicy) -> list[Timer]:
    """The reminder and escalation timers the request should have pending now (an escalation timer
    also records the breach, so every team has one, with or without somewhere to escalate to)."""
    assert req.id is not None
    out = []
    for d in deadlines(req, policy):
        if d.remind_at is not None and d.remind_at < d.due_at:
            out.append(Timer(req.id, req.sla_cycle, d.sla, REMIND, d.remind_at))
        out.append(Timer(req.id, req.sla_cycle, d.sla, ESCALATE, d.due_at))
    return out


def next_due(req: SlaState, policy: SlaPolicy) -> datetime | None:
    """The earliest deadline of the request (for ordering queues), None when nothing is due."""
    dues = [d.due_at for d in deadlines(req, policy)]
    return min(dues) if dues else None


def paused_for(req: SlaState, policy: SlaPolicy, now: datetime) -> int:
    """Clock seconds the current wait on the requester has lasted (added when it ends)."""
    if req.waiting_since is None:
        return 0
    return int(policy.calendar.elapsed(req.waiting_since, now).total_seconds())
