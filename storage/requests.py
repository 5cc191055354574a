"""Queries about requests and their history. Query functions flush; the caller's scope commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.db import Prepared, Writer, connection_of
from storage.models import ProcessedEvent, Request, RequestEvent, utcnow

OPEN_STATUSES = ("open", "claimed")


def get(session: Session, request_id: int, *, for_update: bool = False) -> Request | None:
    stmt = select(Request).where(col(Request.id) == request_id)
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.exec(stmt).first()


_REQUESTS = Request.__table__  # type: ignore[attr-defined]
_REQUEST_COLUMNS = tuple(c.name for c in _REQUESTS.columns if c.name != "id")
_EVENT_COLUMNS = ("request_id", "kind", "actor_id", "team", "at", "detail")
# The statements every slash command runs, prepared once (storage.db.Prepared): values travel as parameters.
_INSERT_REQUEST = Prepared(insert(_REQUESTS).values({name: bindparam(name) for name in _REQUEST_COLUMNS})
                           .returning(_REQUESTS.c.id))
_INSERT_EVENT = Prepared(insert(RequestEvent.__table__)  # type: ignore[attr-defined]
                         .values({name: bindparam(name) for name in _EVENT_COLUMNS}))


_MARK_POSTED = Prepared(update(_REQUESTS).where(_REQUESTS.c.id == bindparam("b_id"))
                .values(department=bindparam("b_department"), triage_channel=bindparam("b_channel"),
                        triage_ts=bindparam("b_ts"), post_state="posted", post_error=None, response_url=None,
                        dm_channel=func.coalesce(bindparam("b_dm_channel"), _REQUESTS.c.dm_channel),
                        dm_ts=func.coalesce(bindparam("b_dm_ts"), _REQUESTS.c.dm_ts))
                .returning(_REQUESTS.c.id, _REQUESTS.c.team))


def mark_posted(session: Writer, request_id: int, *, department: str, channel: str | None, ts: str | None,
                dm: tuple[str, str] | None) -> str | None:
    """Store where a request was posted (and its requester DM); returns its team, None if it is gone."""
    rows = _MARK_POSTED.execute(connection_of(session), {
        "b_id": request_id, "b_department": department, "b_channel": channel, "b_ts": ts,
        "b_dm_channel": dm[0] if dm else None, "b_dm_ts": dm[1] if dm else None})
    return str(rows[0][1]) if rows else None


def insert_request(session: Writer, req: Request) -> int:
    """Insert a new request with one prepared statement; returns its id."""
    values = {name: getattr(req, name) for name in _REQUEST_COLUMNS}
    return int(_INSERT_REQUEST.execute(connection_of(session), values)[0][0])


def add_event(session: Writer, req: Request, kind: str, *, actor: str | None, at: datetime,
              detail: dict[str, Any] | None = None) -> None:
    """Append to the request's history (a Core insert: no ORM bookkeeping on hot paths)."""
    assert req.id is not None
    _INSERT_EVENT.execute(connection_of(session), {
        "request_id": req.id, "kind": kind, "actor_id": actor, "team": req.team, "at": at,
        "detail": json.dumps(detail, ensure_ascii=False) if detail else None})


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
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (insert(ProcessedEvent).values(event_id=event_id[:64], received_at=now or utcnow())
            .on_conflict_do_nothing(index_elements=["event_id"]).returning(ProcessedEvent.event_id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def failed_posts(session: Session, *, limit: int = 50) -> Sequence[Request]:
    return session.exec(select(Request).where(col(Request.post_state) == "failed")
                        .order_by(col(Request.created_at).desc()).limit(limit)).all()
