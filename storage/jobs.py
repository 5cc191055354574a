"""Queries of the durable job outbox: idempotent enqueue, leased claims, fenced completion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.db import MultiRow, Prepared, Writer, connection_of, param_marker, run_raw
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
    # What the code that created the job already holds in memory (e.g. the request it just saved),
    # so running the job at once needs no read back; never stored.
    preloaded: Any = None


_CLAIMED_COLUMNS = ("id", "kind", "key", "payload", "status", "attempts", "due_at", "lease_owner", "lease_until")
_JOBS = Job.__table__  # type: ignore[attr-defined]
_STATEMENTS: dict[str, Prepared] = {}


_INSERT_COLUMNS = ("kind", "key", "payload", "status", "due_at", "attempts", "created_at", "updated_at",
                   "lease_owner", "lease_until")


def _payload_json(payload: dict[str, Any] | None) -> str:
    """A job's payload as stored (compact JSON)."""
    return json.dumps(payload or {}, separators=(",", ":"))


def _job_row(kind: str, key: str, payload: dict[str, Any] | None, due_at: datetime, now: datetime,
             lease: tuple[str, datetime] | None) -> dict[str, Any]:
    """A new job's row (`_INSERT_COLUMNS`): pending, or with `lease` (owner, until) already running."""
    if lease is None:
        return {"kind": kind, "key": key, "payload": _payload_json(payload), "status": "pending", "due_at": due_at,
                "attempts": 0, "created_at": now, "updated_at": now, "lease_owner": None, "lease_until": None}
    return {"kind": kind, "key": key, "payload": _payload_json(payload), "status": "running", "due_at": due_at,
            "attempts": 1, "created_at": now, "updated_at": now, "lease_owner": lease[0], "lease_until": lease[1]}


def _insert_job(dialect: str) -> Prepared:
    """INSERT .. ON CONFLICT (key) DO NOTHING RETURNING id, prepared once per dialect (it runs on
    the slash-command ack path)."""
    if dialect not in _STATEMENTS:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        _STATEMENTS[dialect] = Prepared(
            insert(_JOBS).values({name: bindparam(name) for name in _INSERT_COLUMNS})
            .on_conflict_do_nothing(index_elements=["key"]).returning(_JOBS.c.id))
    return _STATEMENTS[dialect]


_FINISH = Prepared(update(_JOBS)
           .where(_JOBS.c.id == bindparam("b_id"), _JOBS.c.lease_owner == bindparam("b_owner"),
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


def enqueue(
    session: Writer,
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
    now = utcnow()
    values = _job_row(kind, key, payload, due_at or now, now, lease)
    conn = connection_of(session)
    rows = _insert_job(conn.dialect.name).execute(conn, values)
    new_id = int(rows[0][0]) if rows else None
    if new_id is None and replace_finished:
        assert isinstance(session, Session)
        result = session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(col(Job.key) == key, col(Job.status) == "cancelled")
            .values(status="pending", due_at=values["due_at"], payload=values["payload"], attempts=0,
                    lease_owner=None, lease_until=None, last_error=None, updated_at=now)
            .returning(Job.id)
        )
        new_id = result.scalar_one_or_none()
    return new_id


_JOB_ROWS = MultiRow(_JOBS, _INSERT_COLUMNS, returning=("id", "key"), on_conflict="key")


def enqueue_leased_many(conn: Writer, jobs: list[tuple[str, str, dict[str, Any] | None, datetime,
                                                     tuple[str, datetime]]]) -> dict[str, int]:
    """Insert (kind, key, payload, due_at, lease) jobs, each already leased (`lease`: owner, until),
    in one statement; {key: new id} (a key that existed is left alone and absent)."""
    if not jobs:
        return {}
    now = utcnow()
    rows = [_job_row(kind, key, payload, due_at, now, lease) for kind, key, payload, due_at, lease in jobs]
    return {str(key): int(job_id) for job_id, key in _JOB_ROWS.execute(connection_of(conn), rows)}


def finish_many(conn: Writer, *, job_ids: Sequence[int], owner: str) -> set[int]:
    """`finish` (status done) for many jobs of one owner in one statement; the ids it finished."""
    if not job_ids:
        return set()
    target = connection_of(conn)
    dialect = target.dialect
    marker = param_marker(dialect)
    stamp = _JOBS.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    now = utcnow()
    sql = (f"UPDATE jobs SET status = 'done', last_error = NULL, lease_until = NULL, updated_at = {marker} "
           f"WHERE id IN ({', '.join([marker] * len(job_ids))}) AND lease_owner = {marker} AND status = 'running' "
           "RETURNING id")
    rows = run_raw(target, sql, (stamp(now) if stamp else now, *job_ids, owner))
    return {int(row[0]) for row in rows}


def leased(job_id: int, *, kind: str, key: str, payload: dict[str, Any] | None, owner: str, until: datetime,
           preloaded: Any = None) -> ClaimedJob:
    """The runner's view of a job just enqueued with `lease=(owner, until)`."""
    now = utcnow()
    return ClaimedJob(id=job_id, kind=kind, key=key, payload=_payload_json(payload),
                      status="running", attempts=1, due_at=now, lease_owner=owner, lease_until=until,
                      preloaded=preloaded)


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
    claimable = or_(
        and_(col(Job.status) == "pending", col(Job.due_at) <= now),
        and_(col(Job.status) == "running", col(Job.lease_until) < now),
    )
    values = {"status": "running", "lease_owner": owner, "lease_until": now + lease,
              "attempts": Job.attempts + 1, "updated_at": now}
    columns = Job.__table__.columns  # type: ignore[attr-defined]
    if job_id is not None:  # a listener running the job it just created: prepared, no scan, no subquery
        rows = session.connection().execute(_CLAIM_ONE, {
            "b_id": job_id, "b_owner": owner, "b_until": now + lease, "b_now": now}).mappings().all()
        return [ClaimedJob(**{k: row[k] for k in _CLAIMED_COLUMNS}) for row in rows]
    else:
        where = [claimable]
        if kinds:
            where.append(col(Job.kind).in_(list(kinds)))
        pick = select(Job.id).where(*where).order_by(col(Job.due_at), col(Job.id)).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        stmt = (update(Job).where(col(Job.id).in_(pick.scalar_subquery()), *where)
                .values(**values).returning(*columns))
    rows = session.connection().execute(stmt).mappings().all()
    return [ClaimedJob(**{k: row[k] for k in _CLAIMED_COLUMNS}) for row in rows]


def finish(session: Writer, *, job_id: int, owner: str, status: str = "done",
           error: str | None = None) -> bool:
    """Mark a leased job finished; fenced so a job re-claimed by another worker is not touched."""
    rows = _FINISH.execute(connection_of(session), {
        "b_id": job_id, "b_owner": owner, "b_status": status, "b_error": (error or None) and error[:300],
        "b_now": utcnow()})
    return bool(rows)


def renew(session: Writer, *, job_ids: Sequence[int], owner: str, until: datetime) -> int:
    """Extend the lease of jobs this owner is still running (a heartbeat); returns how many it kept.

    Fenced like `finish`: a job another worker has meanwhile claimed is left alone. On PostgreSQL a
    row another transaction holds (a job being finished right now) is skipped, not waited for: one
    UPDATE locking many rows while a batch that finishes several jobs locks them in another order is
    a deadlock (PostgreSQL breaks it after `deadlock_timeout`, 1 s, which every ack in the batch
    would wait). The next beat renews a skipped row if it is still running."""
    if not job_ids:
        return 0
    conn = connection_of(session)
    mine = and_(_JOBS.c.id.in_(list(job_ids)), _JOBS.c.lease_owner == owner, _JOBS.c.status == "running")
    if conn.dialect.name == "postgresql":
        free = select(_JOBS.c.id).where(mine).with_for_update(skip_locked=True)
        mine = _JOBS.c.id.in_(free.scalar_subquery())
    result = conn.execute(update(_JOBS).where(mine).values(lease_until=until))
    return int(result.rowcount or 0)


def retry_later(session: Session, *, job_id: int, owner: str, due_at: datetime, error: str) -> bool:
    result = session.exec(  # type: ignore[call-overload]
        update(Job).where(col(Job.id) == job_id, col(Job.lease_owner) == owner, col(Job.status) == "running")
        .values(status="pending", due_at=due_at, last_error=error[:300], lease_owner=None, lease_until=None,
                updated_at=utcnow()).returning(Job.id)
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


def next_due(session: Session) -> datetime | None:
    return session.exec(select(func.min(Job.due_at)).where(col(Job.status) == "pending")).one()
