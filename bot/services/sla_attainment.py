"""SLA attainment: which requests met their SLAs, measured against the deadlines the SLA timers use.

One definition for every figure that says "within SLA" (the weekly digest's shares, the scorecard's
`sla` part): the deadline of each SLA is `sla_plan.due_at` — the team's clock (calendar or business
hours, days, holidays, time zone), the request's urgency's targets, and the time spent waiting on the
requester added back (it does not count). Only stored columns are read, the same ones the timers are
planned from; the current SLA cycle is measured (a transfer or reopen starts a new one, for the team
that has the request then).

- first response: met when the cycle's first response (a claim, a thread reply, a question to the
  requester) or, failing that, the resolution came by its deadline;
- resolution: met when the request was resolved by its deadline.
A target that is neither met nor past due yet is left out (`None`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.services import sla_plan
from bot.services.sla_plan import FIRST_RESPONSE, RESOLUTION, SlaPolicy


class SlaRecord(sla_plan.SlaState, Protocol):
    """The stored columns attainment reads (a `storage.models.Request` or a query row has them)."""

    first_response_at: datetime | None
    resolved_at: datetime | None


def responded_at(rec: SlaRecord) -> datetime | None:
    """The current cycle's first response (the first one ever for a request still in its first cycle)."""
    if rec.sla_responded_at is not None:
        return rec.sla_responded_at
    return rec.first_response_at if not rec.sla_cycle else None


def due_at(rec: SlaRecord, policy: SlaPolicy, sla: str, now: datetime) -> datetime:
    """When `sla` of the current cycle is (or was) due: a wait on the requester still running at `now`
    counts as paused too."""
    paused = max(0, rec.sla_paused_seconds or 0) + (sla_plan.paused_for(rec, policy, now)
                                                    if sla_plan.is_open(rec) else 0)
    return sla_plan.due_at(rec, policy, sla, paused=timedelta(seconds=paused))


def done_at(rec: SlaRecord, sla: str) -> datetime | None:
    """When `sla` of the current cycle was met (None: not yet)."""
    resolved = rec.resolved_at if rec.status == "resolved" else None
    return (responded_at(rec) or resolved) if sla == FIRST_RESPONSE else resolved


def outcome(rec: SlaRecord, policy: SlaPolicy, sla: str, now: datetime) -> bool | None:
    """True: met by its deadline; False: breached (late, or past due and still not done); None: not due yet."""
    done = done_at(rec, sla)
    due = due_at(rec, policy, sla, now)
    if done is not None:
        return done <= due
    return False if now > due else None


def past_due(records: Iterable[SlaRecord], policy: SlaPolicy, sla: str, now: datetime,
             ) -> list[tuple[datetime, SlaRecord]]:
    """(deadline, record) of the records whose `sla` is past its deadline at `now` and still not met,
    the most overdue first (the digest's "unclaimed past SLA")."""
    late = [(due, rec) for rec in records
            if done_at(rec, sla) is None and (due := due_at(rec, policy, sla, now)) < now]
    return sorted(late, key=lambda pair: (pair[0], pair[1].id or 0))


def earliest_due(policy: SlaPolicy, sla: str) -> timedelta:
    """The shortest time from a cycle's start to a deadline of `sla` under `policy` (whatever the urgency,
    clock or pauses: a request whose cycle started later cannot be past due)."""
    targets = [policy.default, *policy.by_urgency.values()]
    return min(policy.calendar.working_time(t.of(sla)) for t in targets)


@dataclass(frozen=True)
class Share:
    met: int = 0
    measured: int = 0

    @property
    def percent(self) -> float | None:
        return 100.0 * self.met / self.measured if self.measured else None

    def __add__(self, other: Share) -> Share:
        return Share(self.met + other.met, self.measured + other.measured)


def attainment(records: Iterable[SlaRecord], policy: SlaPolicy, now: datetime, *,
               slas: tuple[str, ...] = (FIRST_RESPONSE, RESOLUTION)) -> dict[str, Share]:
    """Per SLA, how many of the records' targets were met out of those measured."""
    met = dict.fromkeys(slas, 0)
    measured = dict.fromkeys(slas, 0)
    for rec in records:
        for sla in slas:
            result = outcome(rec, policy, sla, now)
            if result is not None:
                measured[sla] += 1
                met[sla] += result
    return {sla: Share(met[sla], measured[sla]) for sla in slas}


def combined(records: Iterable[SlaRecord], policy: SlaPolicy, now: datetime) -> Share:
    """First-response and resolution targets together (the scorecard's `sla` part)."""
    return sum(attainment(records, policy, now).values(), Share())
