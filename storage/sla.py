"""Queries for SLA timers, responders' availability and SLA counts. No Slack here.

Timers are rows of the job outbox (`jobs`, kinds `sla_remind` / `sla_escalate`, key
`sla:<request>:<cycle>:<fr|res>:<remind|escalate>`): unique keys make planning idempotent, a sent
timer stays `done` for good, and one that is no longer wanted is `cancelled` (a later plan may
revive it). Requests to (re)plan have `sla_plan IS NULL` (partial index `ix_requests_sla_unplanned`).
Query functions flush; the caller's scope commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, any_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from storage import jobs as job_queries
from storage.jobs import payload_json
from storage.models import Job, Request, RequestEvent, Responder, SlaPolicyPlan
from storage.session import dialect_insert

R, J, E = Request.__table__.c, Job.__table__.c, RequestEvent.__table__.c  # type: ignore[attr-defined]
P, S = Responder.__table__.c, SlaPolicyPlan.__table__.c  # type: ignore[attr-defined]
OPEN = ("open", "claimed")
NOTICE_KINDS = ("sla_reminder", "sla_escalated", "sla_breached")
# what the plan reads of a request (bot.services.sla_plan.SlaState)
PLAN_COLUMNS = (R.id, R.team, R.status, R.urgency, R.created_at, R.sla_cycle, R.sla_start_at, R.sla_responded_at,
                R.sla_paused_seconds, R.waiting_since)
# what SLA attainment reads (bot.services.sla_attainment.SlaRecord)
RECORD_COLUMNS = (*PLAN_COLUMNS, R.first_response_at, R.resolved_at)


def records(session: Session, *, teams: Sequence[str], start: datetime, end: datetime,
            by: str = "created_at") -> dict[str, list[Row[Any]]]:
    """Per team, the SLA columns of its requests whose `by` (created_at or resolved_at) is in [start, end)."""
    column = R.resolved_at if by == "resolved_at" else R.created_at
    out: dict[str, list[Row[Any]]] = {team: [] for team in teams}
    stmt = select(*RECORD_COLUMNS).where(R.team.in_(list(teams)), column >= start, column < end)
    for row in session.connection().execute(stmt):
        out[row.team].append(row)
    return out


def unclaimed(session: Session, *, started_before: Mapping[str, datetime]) -> dict[str, list[Row[Any]]]:
    """Per team, its requests nobody has claimed or answered in their current SLA cycle, whose cycle
    started before the team's time in `started_before`: the SLA columns and what names a request."""
    out: dict[str, list[Row[Any]]] = {team: [] for team in started_before}
    if not started_before:
        return out
    cutoff = case(*[(R.team == team, when) for team, when in started_before.items()])
    stmt = (select(*RECORD_COLUMNS, R.summary, R.triage_channel, R.triage_ts)
            .where(R.team.in_(list(started_before)), R.status == "open", R.sla_responded_at.is_(None),
                   func.coalesce(R.sla_start_at, R.created_at) < cutoff))
    for row in session.connection().execute(stmt):
        out[row.team].append(row)
    return out

# -- planning ---------------------------------------------------------------------------------------
def unplanned(session: Session, *, limit: int) -> Sequence[Row[Any]]:
    """Requests whose timers must be (re)planned, oldest first; on PostgreSQL locked, skipping rows
    another transaction is changing right now (they are planned at the next tick)."""
    stmt = select(*PLAN_COLUMNS).where(R.sla_plan.is_(None)).order_by(R.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.connection().execute(stmt).all()


@dataclass(frozen=True)
class TimerJob:
    id: int
    key: str
    status: str
    due_at: datetime


def timer_jobs(session: Session, keys: Sequence[str]) -> dict[str, TimerJob]:
    if not keys:
        return {}
    if session.get_bind().dialect.name == "postgresql":  # one array parameter: a short statement psycopg caches
        wanted = J.key == any_(bindparam("keys", list(keys), type_=ARRAY(J.key.type)))
    else:
        wanted = J.key.in_(list(keys))
    rows = session.connection().execute(select(J.id, J.key, J.status, J.due_at).where(wanted))
    return {row.key: TimerJob(row.id, row.key, row.status, row.due_at) for row in rows}


_NEW_TIMER = {name: dialect.insert(Job.__table__).on_conflict_do_nothing(index_elements=["key"])  # type: ignore[attr-defined]
              for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
_MOVE = (update(Job.__table__)  # type: ignore[attr-defined]
         .where(J.id == bindparam("b_id"), or_(J.status == "pending", J.status == "cancelled"))
         .values(status="pending", due_at=bindparam("b_due"), attempts=0, lease_owner=None, lease_until=None,
                 last_error=None, updated_at=bindparam("b_now")))
_PLANNED = (update(Request.__table__)  # type: ignore[attr-defined]
            .where(R.id == bindparam("b_id"))
            .values(sla_plan=bindparam("b_plan"), sla_due_at=bindparam("b_due")))


def save_plan(session: Session, *, now: datetime, new: Sequence[tuple[str, str, dict[str, Any], datetime]],
              moved: Sequence[tuple[int, datetime]], cancelled: Sequence[int],
              planned: Sequence[tuple[int, str, datetime | None]]) -> None:
    """Apply a plan: insert `new` timers (kind, key, payload, due), move or revive pending/cancelled
    ones (id, due), cancel pending ones no longer wanted, and mark the requests planned (id, plan, due)."""
    conn = session.connection()
    if new:  # executemany of one short statement (no RETURNING needed)
        conn.execute(_NEW_TIMER[conn.dialect.name], [job_queries.job_row(kind, key, payload, due, None)
                                                     for kind, key, payload, due in new])
    if moved:
        conn.execute(_MOVE, [{"b_id": job_id, "b_due": due, "b_now": now} for job_id, due in moved])
    if cancelled:
        conn.execute(update(Job).where(J.id.in_(list(cancelled)), J.status == "pending")
                     .values(status="cancelled", updated_at=now))
    if planned:
        conn.execute(_PLANNED, [{"b_id": rid, "b_plan": plan, "b_due": due} for rid, plan, due in planned])


@dataclass(frozen=True)
class StoredPolicy:
    """A team's SLA policy in force: its fingerprint, when an instance first noticed it, and the next
    request id whose open requests still have to be marked for re-planning (None: all were)."""

    plan: str
    noticed_at: datetime
    replan_from: int | None


def stored_policies(session: Session) -> dict[str, StoredPolicy]:
    rows = session.connection().execute(select(S.team, S.plan, S.updated_at, S.replan_from))
    return {team: StoredPolicy(plan, noticed_at, replan_from) for team, plan, noticed_at, replan_from in rows}


def stored_policy(session: Session, team: str) -> StoredPolicy | None:
    row = session.connection().execute(
        select(S.plan, S.updated_at, S.replan_from).where(S.team == team)).first()
    return StoredPolicy(*row) if row is not None else None


def switch_policy(session: Session, *, team: str, plan: str, previous: str | None, now: datetime) -> bool:
    """The team's policy is now `plan`: its open requests are to be marked from the first id on.
    Compare-and-set on the `previous` plan (None: no row yet); False when another instance got there."""
    if previous is None:
        stmt = dialect_insert(session)(SlaPolicyPlan).values(team=team, plan=plan, updated_at=now, replan_from=0)
        result = session.connection().execute(stmt.on_conflict_do_nothing(index_elements=["team"]))
    else:
        result = session.connection().execute(update(SlaPolicyPlan).where(S.team == team, S.plan == previous)
                                              .values(plan=plan, updated_at=now, replan_from=0))
    return bool(result.rowcount)


def mark_for_replan(session: Session, *, plans: Mapping[str, str], start: int, end: int) -> int:
    """Mark for re-planning the open requests with `start <= id < end` of each team in `plans`
    ({team: plan}) planned with another plan (unplanned ones are left alone). How many were marked."""
    # the team's plan as an expression (other teams: their own plan), so that the only condition an
    # index can serve is the id range (PostgreSQL without statistics would otherwise OR team indexes)
    wanted = case(plans, value=R.team, else_=R.sla_plan)
    result = session.connection().execute(update(Request).where(R.id >= start, R.id < end, R.status.in_(OPEN),
                                                                R.sla_plan != wanted).values(sla_plan=None))
    return int(result.rowcount or 0)


def advance_replan(session: Session, *, plans: Mapping[str, str], start: int, end: int | None) -> None:
    """Move each team's marking cursor from `start` to `end` (None: done), unless its plan changed
    or another instance moved it meanwhile."""
    session.connection().execute(update(SlaPolicyPlan).where(
        S.team.in_(list(plans)), S.plan == case(plans, value=S.team), S.replan_from == start).values(replan_from=end))


def last_request_id(session: Session) -> int:
    return int(session.connection().execute(select(func.max(R.id))).scalar() or 0)


def reschedule(session: Session, *, job_id: int, owner: str, due_at: datetime,
               payload: dict[str, Any] | None = None) -> bool:
    """Put a leased job back to wait until `due_at` (not a failure: its attempts start again)."""
    values: dict[str, Any] = {"status": "pending", "due_at": due_at, "attempts": 0, "lease_owner": None,
                              "lease_until": None, "updated_at": due_at}
    if payload is not None:
        values["payload"] = payload_json(payload)
    result = session.connection().execute(
        update(Job).where(J.id == job_id, J.lease_owner == owner, J.status == "running").values(**values))
    return bool(result.rowcount)


def notice_recorded(session: Session, *, request_id: int, kind: str, detail: str) -> bool:
    """Whether this notice was already counted (its job row may be gone: `askdesk purge` deletes
    finished jobs, and with them the unique key that would stop a second one)."""
    stmt = select(E.id).where(E.request_id == request_id, E.kind == kind, E.detail == detail).limit(1)
    return session.connection().execute(stmt).first() is not None


# -- counts for digests -------------------------------------------------------------------------------
def notice_counts(session: Session, teams: Sequence[str], start: datetime,
                  end: datetime) -> dict[str, dict[tuple[str, str], int]]:
    """{team: {(event kind, urgency): count}} of SLA reminders, escalations and breaches in [start, end)."""
    stmt = (select(E.team, E.kind, R.urgency, func.count())
            .select_from(RequestEvent.__table__.join(Request.__table__, R.id == E.request_id))  # type: ignore[attr-defined]
            .where(E.team.in_(list(teams)), E.kind.in_(NOTICE_KINDS), E.at >= start, E.at < end)
            .group_by(E.team, E.kind, R.urgency))
    out: dict[str, dict[tuple[str, str], int]] = {t: {} for t in teams}
    for team, kind, urgency, n in session.connection().execute(stmt):
        out[team][(kind, urgency)] = int(n)
    return out


def due_soonest(session: Session, teams: Sequence[str], limit: int) -> dict[str, list[dict[str, Any]]]:
    """Each team's open requests with a deadline, earliest (most overdue) first: at most `limit` each,
    with `total` (how many have a deadline) on every row. One query for all teams."""
    rank = func.row_number().over(partition_by=R.team, order_by=(R.sla_due_at, R.id)).label("rank")
    total = func.count().over(partition_by=R.team).label("total")
    inner = (select(R.id, R.team, R.summary, R.triage_channel, R.triage_ts, R.sla_due_at, rank, total)
             .where(R.team.in_(list(teams)), R.status.in_(OPEN), R.sla_due_at.is_not(None)).subquery())
    stmt = select(inner).where(inner.c.rank <= limit).order_by(inner.c.team, inner.c.rank)
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in teams}
    for row in session.connection().execute(stmt).mappings():
        out[row["team"]].append(dict(row))
    return out


# -- responders ------------------------------------------------------------------------------------------
def set_available(session: Session, *, team: str, user_id: str, available: bool, now: datetime) -> None:
    stmt = dialect_insert(session)(Responder).values(team=team, user_id=user_id, available=available, updated_at=now)
    session.connection().execute(stmt.on_conflict_do_update(
        index_elements=["team", "user_id"], set_={"available": available, "updated_at": now}))


def availability(session: Session, *, user_id: str) -> dict[str, bool]:
    rows = session.connection().execute(select(P.team, P.available).where(P.user_id == user_id))
    return {team: bool(available) for team, available in rows}


def next_in_rotation(session: Session, *, team: str, among: Sequence[str]) -> str | None:
    """The available responder of `team` (one of `among`) assigned longest ago (never first), locked."""
    if not among:
        return None
    stmt = (select(P.user_id).where(P.team == team, P.available.is_(True), P.user_id.in_(list(among)))
            .order_by(P.last_assigned_at.is_not(None), P.last_assigned_at, P.user_id).limit(1))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.connection().execute(stmt).scalar_one_or_none()


def mark_assigned(session: Session, *, team: str, user_id: str, now: datetime) -> None:
    session.connection().execute(update(Responder).where(P.team == team, P.user_id == user_id)
                                 .values(last_assigned_at=now))
