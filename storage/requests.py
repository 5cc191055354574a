"""Queries about requests and their history. Query functions flush; the caller's scope commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
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
# compiled form): Core statements on the tables, without the ORM's bookkeeping.
_REQUESTS = Request.__table__  # type: ignore[attr-defined]
_INSERT_REQUEST = insert(_REQUESTS).returning(_REQUESTS.c.id)
_INSERT_EVENT = insert(RequestEvent.__table__)  # type: ignore[attr-defined]
_MARK_POSTED = (update(_REQUESTS).where(_REQUESTS.c.id == bindparam("b_id"))
                .values(department=bindparam("b_department"), triage_channel=bindparam("b_channel"),
                        triage_ts=bindparam("b_ts"), post_state="posted", post_error=None, response_url=None,
                        dm_channel=func.coalesce(bindparam("b_dm_channel"), _REQUESTS.c.dm_channel),
                        dm_ts=func.coalesce(bindparam("b_dm_ts"), _REQUESTS.c.dm_ts))
                .returning(_REQUESTS.c.team))


def create(session: Session, values: dict[str, Any], *, detail: dict[str, Any] | None) -> Request:
    """Insert a request (`values`: its columns but id; the model's defaults for the rest) with its
    `created` event; the new request."""
    req = Request(**values)
    req.id = session.exec(_INSERT_REQUEST, params=req.model_dump(exclude={"id"})).scalar_one()
    add_event(session, req, "created", actor=req.requester_id, at=req.created_at, detail=detail)
    return req


def record_post(session: Session, *, request_id: int, department: str, channel: str | None, ts: str | None,
                dm: tuple[str, str] | None, new_post: bool, at: datetime, job_id: int, owner: str) -> str | None:
    """Store where a request was posted, once the Slack calls are done: its triage message (`channel`,
    `ts`), its requester DM (`dm`, when new), a `posted` event at `at` when the triage post is new;
    and finish its post job `job_id`, fenced by `owner`. The request's team, or None when the
    request is gone (then nothing is written)."""
    dm_channel, dm_ts = dm if dm else (None, None)
    team = session.exec(_MARK_POSTED, params={
        "b_id": request_id, "b_department": department, "b_channel": channel, "b_ts": ts,
        "b_dm_channel": dm_channel, "b_dm_ts": dm_ts}).scalar_one_or_none()
    if team is None:
        return None
    if new_post:
        session.exec(_INSERT_EVENT, params=_event_row(request_id, "posted", None, team, at, {"channel": channel}))
    job_queries.finish(session, job_id=job_id, owner=owner)
    return str(team)


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
    where = (col(Request.team) == team, col(Request.status).in_(OPEN_STATUSES))
    rows = session.exec(select(Request).where(*where).order_by(col(Request.created_at), col(Request.id))
                        .limit(limit)).all()
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
