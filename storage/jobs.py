"""Queries of the durable job outbox: idempotent enqueue, leased claims, fenced completion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.models import Job, utcnow


@dataclass
class ClaimedJob:
    """A leased job as its runner sees it (a plain object: cheap, and safe to pass across threads)."""

    id: int
    kind: str
    key: str
    payload: str
    status: str
    attempts: int
    due_at: datetime
    lease_owner: str | None
    lease_until: datetime | None
    created_at: datetime | None = None
    failing_since: datetime | None = None  # first transient failure of the current run of them
    # What the code that created the job already holds in memory (e.g. the request it just saved),
    # so running the job at once needs no read back; never stored.
    preloaded: Any = None


_CLAIMED_COLUMNS = ("id", "kind", "key", "payload", "status", "attempts", "due_at", "lease_owner", "lease_until",
                    "created_at", "failing_since")
_JOBS = Job.__table__  # type: ignore[attr-defined]


def payload_json(payload: dict[str, Any] | None) -> str:
    """A job's payload as stored (compact JSON)."""
    return json.dumps(payload or {}, separators=(",", ":"))


# Statements built once and run with parameters (SQLAlchemy caches their compiled form).
_ENQUEUE = {name: dialect.insert(_JOBS).on_conflict_do_nothing(index_elements=["key"])
            .returning(_JOBS.c.id, _JOBS.c.key) for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
_FINISH = (update(_JOBS)
           .where(_JOBS.c.id.in_(bindparam("b_ids", expanding=True)), _JOBS.c.lease_owner == bindparam("b_owner"),
                  _JOBS.c.status == "running")
           .values(status=bindparam("b_status"), last_error=bindparam("b_error"), lease_until=None,
                   updated_at=bindparam("b_now"))
           .returning(_JOBS.c.id))
_CLAIM_ONE = (update(_JOBS)
              .where(_JOBS.c.id == bindparam("b_id"),
                     or_(_JOBS.c.status == "pending",
                         and_(_JOBS.c.status == "running", _JOBS.c.lease_until < bindparam("b_now"))))
              .values(status="running", lease_owner=bindparam("b_owner"), lease_until=bindparam("b_until"),
                      attempts=_JOBS.c.attempts + 1, updated_at=bindparam("b_now"))
              .returning(*_JOBS.columns))


def job_row(kind: str, key: str, payload: dict[str, Any] | None, due_at: datetime,
             lease: tuple[str, datetime] | None) -> dict[str, Any]:
    """A new job's row: pending, or with `lease` (owner, until) already running."""
    now = utcnow()
    row = {"kind": kind, "key": key, "payload": payload_json(payload), "due_at": due_at, "created_at": now,
           "updated_at": now, "status": "pending", "attempts": 0, "lease_owner": None, "lease_until": None}
    if lease is not None:
        row.update(status="running", attempts=1, lease_owner=lease[0], lease_until=lease[1])
    return row


def enqueue(
    session: Session,
    *,
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    due_at: datetime | None = None,
    replace_finished: bool = False,
    lease: tuple[str, datetime] | None = None,
) -> int | None:
    """Insert a job unless one with the same key exists; return the new id (None when it existed).

    With `replace_finished`, a cancelled job with that key is revived with the new due time. With
    `lease` (owner, until), the job is inserted already claimed by that owner, who runs it at once
    with `leased()` (no separate claim); should the owner die, the clock claims it when the lease ends.
    """
    row = job_row(kind, key, payload, due_at or utcnow(), lease)
    new_id = enqueue_many(session, [row]).get(key)
    if new_id is None and replace_finished:
        new_id = session.exec(
            update(_JOBS)
            .where(_JOBS.c.key == key, _JOBS.c.status == "cancelled")
            .values(status="pending", due_at=row["due_at"], payload=row["payload"], attempts=0,
                    lease_owner=None, lease_until=None, last_error=None, updated_at=row["updated_at"])
            .returning(_JOBS.c.id)
        ).scalar_one_or_none()
    return new_id


def pending_not_before(session: Session, *, kind: str, key: str, payload: dict[str, Any], due_at: datetime) -> None:
    """Make the job `key` pending and due no earlier than `due_at`: inserted, revived when it has
    finished (with `payload`), or moved later when it is pending sooner. A running one is left alone."""
    if enqueue(session, kind=kind, key=key, payload=payload, due_at=due_at) is not None:
        return
    row = job_row(kind, key, payload, due_at, None)
    session.exec(
        update(_JOBS).where(_JOBS.c.key == key, _JOBS.c.status != "running")
        .values(status="pending", due_at=row["due_at"], payload=row["payload"], attempts=0, lease_owner=None,
                lease_until=None, last_error=None, failing_since=None, updated_at=row["updated_at"])
    )


def enqueue_many(session: Session, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert jobs (rows from `job_row`) in one statement, each unless its key exists; {key: new id}."""
    if not rows:
        return {}
    result = session.exec(_ENQUEUE[session.get_bind().dialect.name], params=rows)
    return {str(key): int(job_id) for job_id, key in result}


def leased(job_id: int, *, kind: str, key: str, payload: dict[str, Any] | None, owner: str, until: datetime,
           preloaded: Any = None) -> ClaimedJob:
    """The runner's view of a job just enqueued with `lease=(owner, until)`."""
    now = utcnow()
    return ClaimedJob(id=job_id, kind=kind, key=key, payload=payload_json(payload),
                      status="running", attempts=1, due_at=now, lease_owner=owner, lease_until=until,
                      created_at=now, preloaded=preloaded)


def cancel(session: Session, *, key: str) -> bool:
    """Cancel a pending job (one already running or done is left alone)."""
    result = session.exec(  # type: ignore[call-overload]
        update(Job).where(col(Job.key) == key, col(Job.status) == "pending")
        .values(status="cancelled", updated_at=utcnow()).returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


def claim_due(session: Session, *, owner: str, lease: timedelta, limit: int,
              now: datetime | None = None, job_id: int | None = None,
              kinds: Sequence[str] | None = None) -> list[ClaimedJob]:
    """Atomically lease up to `limit` due jobs (pending, or running with an expired lease)."""
    now = now or utcnow()
    if job_id is not None:  # a listener running the job it just created: no scan, no subquery
        rows = session.exec(_CLAIM_ONE, params={
            "b_id": job_id, "b_owner": owner, "b_until": now + lease, "b_now": now}).mappings().all()
        return [ClaimedJob(**{k: row[k] for k in _CLAIMED_COLUMNS}) for row in rows]
    where = [or_(and_(_JOBS.c.status == "pending", _JOBS.c.due_at <= now),
                 and_(_JOBS.c.status == "running", _JOBS.c.lease_until < now))]
    if kinds:
        where.append(_JOBS.c.kind.in_(list(kinds)))
    pick = select(_JOBS.c.id).where(*where).order_by(_JOBS.c.due_at, _JOBS.c.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # A CTE, materialized: as `id IN (subquery)` PostgreSQL may plan a nested loop that runs the
        # locking subquery again for every row, and then claimed every due job whatever the limit.
        picked = pick.with_for_update(skip_locked=True).cte("picked").prefix_with("MATERIALIZED")
        chosen = _JOBS.c.id == picked.c.id
    else:
        chosen = _JOBS.c.id.in_(pick.scalar_subquery())
    stmt = (update(_JOBS).where(chosen, *where)
            .values(status="running", lease_owner=owner, lease_until=now + lease, attempts=_JOBS.c.attempts + 1,
                    updated_at=now).returning(*_JOBS.columns))
    rows = session.exec(stmt).mappings().all()
    return [ClaimedJob(**{k: row[k] for k in _CLAIMED_COLUMNS}) for row in rows]


def finish(session: Session, *, job_id: int, owner: str, status: str = "done",
           error: str | None = None) -> bool:
    """Mark a leased job finished; fenced so a job re-claimed by another worker is not touched."""
    return bool(finish_many(session, job_ids=[job_id], owner=owner, status=status, error=error))


def finish_many(session: Session, *, job_ids: Sequence[int], owner: str, status: str = "done",
                error: str | None = None) -> set[int]:
    """`finish` for many jobs of one owner, in one statement; the ids it finished."""
    result = session.exec(_FINISH, params={"b_ids": list(job_ids), "b_owner": owner, "b_status": status,
                                           "b_error": (error or None) and error[:300], "b_now": utcnow()})
    return {int(job_id) for job_id in result.scalars()}


def renew(session: Session, *, job_ids: Sequence[int], owner: str, until: datetime) -> int:
    """Extend the lease of jobs this owner is still running (a heartbeat); returns how many it kept.

    Fenced like `finish`: a job another worker has meanwhile claimed is left alone. On PostgreSQL a
    row another transaction holds (a job being finished right now) is skipped, not waited for: one
    UPDATE locking many rows while another transaction finishing several jobs locks them in another
    order is a deadlock (PostgreSQL breaks it after `deadlock_timeout`, 1 s). The next beat renews a
    skipped row if it is still running."""
    if not job_ids:
        return 0
    mine = and_(_JOBS.c.id.in_(list(job_ids)), _JOBS.c.lease_owner == owner, _JOBS.c.status == "running")
    if session.get_bind().dialect.name == "postgresql":
        free = select(_JOBS.c.id).where(mine).with_for_update(skip_locked=True)
        mine = _JOBS.c.id.in_(free.scalar_subquery())
    result = session.exec(update(_JOBS).where(mine).values(lease_until=until))
    return int(result.rowcount or 0)


def retry_later(session: Session, *, job_id: int, owner: str, due_at: datetime, error: str,
                failing_at: datetime | None = None) -> bool:
    """Put a leased job back to pending, due at `due_at` (fenced like `finish`). `failing_at`: this
    was a failure, which starts the job's `failing_since` unless a run of failures already has."""
    values: dict[str, Any] = {"status": "pending", "due_at": due_at, "last_error": error[:300], "lease_owner": None,
                              "lease_until": None, "updated_at": utcnow()}
    if failing_at is not None:
        since = bindparam("b_failing_at", failing_at, type_=_JOBS.c.failing_since.type)
        values["failing_since"] = func.coalesce(_JOBS.c.failing_since, since)
    result = session.exec(  # type: ignore[call-overload]
        update(Job).where(col(Job.id) == job_id, col(Job.lease_owner) == owner, col(Job.status) == "running")
        .values(**values).returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


def get_by_key(session: Session, *, key: str) -> Job | None:
    return session.exec(select(Job).where(col(Job.key) == key)).first()


def counts_by_status(session: Session) -> dict[tuple[str, str], int]:
    rows = session.exec(select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)).all()
    return {(kind, status): n for kind, status, n in rows}


def failed(session: Session, *, limit: int = 50) -> list[Job]:
    return list(session.exec(select(Job).where(col(Job.status) == "failed")
                             .order_by(col(Job.updated_at).desc()).limit(limit)).all())


def failing(session: Session) -> tuple[int, datetime | None]:
    """How many pending jobs are being retried after errors, and since when the oldest has failed."""
    count, since = session.exec(select(func.count(), func.min(Job.failing_since))  # type: ignore[call-overload]
                                .where(col(Job.status) == "pending", col(Job.failing_since).is_not(None))).one()
    return int(count), since


def next_due(session: Session) -> datetime | None:
    return session.exec(select(func.min(Job.due_at)).where(col(Job.status) == "pending")).one()
