"""Queries about requests and their history. Query functions flush; the caller's scope commits."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, bindparam, func, insert, or_, update
from sqlmodel import Session, col, select

from storage import jobs as job_queries
from storage.models import ProcessedEvent, Request, RequestEvent, utcnow
from storage.session import dialect_insert

OPEN_STATUSES = ("open", "claimed")


def get(session: Session, request_id: int, *, for_update: bool = False) -> Request | None:
    stmt = select(Request).where(col(Request.id) == request_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


# Statements on every request's path, built once and run with parameters (SQLAlchemy caches their
# compiled form): Core statements on the tables, without the ORM's bookkeeping. Given a list of
# parameter sets, each runs as one statement (SQLAlchemy's insertmanyvalues) or one executemany.
_REQUESTS = Request.__table__  # type: ignore[attr-defined]
_INSERT_REQUESTS = insert(Request).returning(Request, sort_by_parameter_order=True)
_INSERT_EVENT = insert(RequestEvent.__table__)  # type: ignore[attr-defined]
_MARK_POSTED = (update(_REQUESTS).where(_REQUESTS.c.id == bindparam("b_id"))
                .values(department=bindparam("b_department"), triage_channel=bindparam("b_channel"),
                        triage_ts=bindparam("b_ts"), post_state="posted", post_error=None, response_url=None,
                        dm_channel=func.coalesce(bindparam("b_dm_channel"), _REQUESTS.c.dm_channel),
                        dm_ts=func.coalesce(bindparam("b_dm_ts"), _REQUESTS.c.dm_ts)))


@dataclass
class NewRequest:
    """A request to store (`values`: its columns but id; the model's defaults for the rest), with the
    detail of its `created` event and its first job, leased to the instance that stores it (which
    runs the job at once)."""

    values: dict[str, Any]
    detail: dict[str, Any] | None
    job_kind: str
    job_key: Callable[[int], str]  # from the new request's id
    lease: tuple[str, datetime]


def insert_new(session: Session, items: list[NewRequest]) -> list[tuple[Request, int | None]]:
    """Store new requests with their `created` events and leased jobs, one statement per table for
    all of them (a group-commit op). For each item the new request and its job's id (None if a job
    with its key existed)."""
    reqs: list[Request] = list(session.exec(_INSERT_REQUESTS, params=[item.values for item in items]).scalars())
    session.exec(_INSERT_EVENT, params=[
        _event_row(req.id, "created", req.requester_id, req.team, req.created_at, item.detail)  # type: ignore[arg-type]
        for item, req in zip(items, reqs, strict=True)])
    keys = [item.job_key(req.id) for item, req in zip(items, reqs, strict=True)]  # type: ignore[arg-type]
    job_ids = job_queries.enqueue_many(session, [
        job_queries.job_row(item.job_kind, key, {"request_id": req.id}, req.created_at, item.lease)
        for item, req, key in zip(items, reqs, keys, strict=True)])
    return [(req, job_ids.get(key)) for req, key in zip(reqs, keys, strict=True)]


@dataclass
class PostRecord:
    """Where a request was posted, to store once the Slack calls are done: its triage message
    (`channel`, `ts`), its requester DM (`dm`, when new), and whether the triage post is new (then a
    `posted` event at `at`); `job_id` is the post job to finish, fenced by `owner`."""

    request_id: int
    department: str
    channel: str | None
    ts: str | None
    dm: tuple[str, str] | None
    new_post: bool
    at: datetime
    job_id: int
    owner: str


def record_posts(session: Session, items: list[PostRecord]) -> list[RowMapping | None]:
    """Store post records (a group-commit op): the requests' triage messages and DMs, their `posted`
    events, and their post jobs finished, one statement each for all of them. Each item's request row
    as stored now (its poster compares it with what it showed, without reading it again), or None
    when the request is gone (then nothing is written for it)."""
    items_by_id = sorted(items, key=lambda item: item.request_id)  # rows locked in one order: no deadlock
    session.exec(_MARK_POSTED, params=[
        {"b_id": item.request_id, "b_department": item.department, "b_channel": item.channel, "b_ts": item.ts,
         "b_dm_channel": item.dm[0] if item.dm else None, "b_dm_ts": item.dm[1] if item.dm else None}
        for item in items_by_id])
    stored = {row["id"]: row for row in session.connection().execute(
        select(_REQUESTS).where(_REQUESTS.c.id.in_([item.request_id for item in items]))).mappings()}
    found = [item for item in items if item.request_id in stored]
    events = [_event_row(item.request_id, "posted", None, stored[item.request_id]["team"], item.at,
                         {"channel": item.channel}) for item in found if item.new_post]
    if events:
        session.exec(_INSERT_EVENT, params=events)
    for owner in dict.fromkeys(item.owner for item in found):
        job_queries.finish_many(session, job_ids=[item.job_id for item in found if item.owner == owner], owner=owner)
    return [stored.get(item.request_id) for item in items]


def _event_row(request_id: int, kind: str, actor: str | None, team: str, at: datetime,
               detail: dict[str, Any] | None) -> dict[str, Any]:
    """A history row, its detail stored as JSON."""
    return {"request_id": request_id, "kind": kind, "actor_id": actor, "team": team, "at": at,
            "detail": json.dumps(detail, ensure_ascii=False) if detail else None}


def add_event(session: Session, req: Request, kind: str, *, actor: str | None, at: datetime,
              detail: dict[str, Any] | None = None) -> None:
    """Append to the request's history."""
    assert req.id is not None
    session.exec(_INSERT_EVENT, params=_event_row(req.id, kind, actor, req.team, at, detail))


def last_event_at(session: Session, request_id: int, kind: str) -> datetime | None:
    """When the request's latest event of `kind` happened (None: never)."""
    stmt = select(func.max(RequestEvent.at)).where(col(RequestEvent.request_id) == request_id,
                                                   col(RequestEvent.kind) == kind)
    return session.exec(stmt).one()


def by_message(session: Session, channel: str, ts: str) -> Request | None:
    """The request whose triage message or requester DM is (channel, ts)."""
    stmt = select(Request).where(or_(
        (col(Request.triage_ts) == ts) & (col(Request.triage_channel) == channel),
        (col(Request.dm_ts) == ts) & (col(Request.dm_channel) == channel),
    ))
    return session.exec(stmt).first()


def mine(session: Session, user_id: str, *, resolved_since: datetime, limit: int = 20) -> list[Request]:
    recent = or_(col(Request.status).in_(OPEN_STATUSES), col(Request.resolved_at) >= resolved_since)
    stmt = (select(Request).where(col(Request.requester_id) == user_id, recent)
            .order_by(col(Request.created_at).desc()).limit(limit))
    return list(session.exec(stmt).all())


def open_queue(session: Session, team: str, *, limit: int = 20) -> tuple[list[Request], int]:
    """The team's open requests, earliest SLA deadline first (so overdue ones lead), then those with
    none (waiting on the requester), oldest first; and how many there are."""
    where = (col(Request.team) == team, col(Request.status).in_(OPEN_STATUSES))
    due = col(Request.sla_due_at)
    rows = session.exec(select(Request).where(*where)
                        .order_by(due.is_(None), due, col(Request.created_at), col(Request.id)).limit(limit)).all()
    total = session.exec(select(func.count()).select_from(Request).where(*where)).one()
    return list(rows), int(total)


def seen(session: Session, event_id: str) -> bool:
    """Whether this Events API event id was recorded already (its effect is stored)."""
    return session.get(ProcessedEvent, event_id[:64]) is not None


def first_seen(session: Session, event_id: str, *, now: datetime | None = None) -> bool:
    """Record an Events API event id; False when it was seen before (a retry or duplicate).

    Called in the transaction that stores the event's effect, so the two commit together: an event
    whose work failed is not marked seen, and Slack's redelivery of it is processed."""
    stmt = (dialect_insert(session)(ProcessedEvent).values(event_id=event_id[:64], received_at=now or utcnow())
            .on_conflict_do_nothing(index_elements=["event_id"]).returning(ProcessedEvent.event_id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def failed_posts(session: Session, *, limit: int = 50) -> Sequence[Request]:
    return session.exec(select(Request).where(col(Request.post_state) == "failed")
                        .order_by(col(Request.created_at).desc()).limit(limit)).all()
