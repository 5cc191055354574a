"""Queries about requests and their history. Query functions flush; the caller's scope commits."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import configure_mappers
from sqlmodel import Session, col, select

from storage import jobs as job_queries
from storage.db import MultiRow, Prepared, Writer, allocate_ids, connection_of, run_raw
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
_INSERT_EVENT = Prepared(insert(RequestEvent.__table__)  # type: ignore[attr-defined]
                         .values({name: bindparam(name) for name in _EVENT_COLUMNS}))
# The rows every slash command writes, a whole group-commit batch at a time (storage.db.MultiRow).
_REQUEST_ROWS = MultiRow(_REQUESTS, ("id", *_REQUEST_COLUMNS))
_EVENT_ROWS = MultiRow(RequestEvent.__table__, _EVENT_COLUMNS)  # type: ignore[attr-defined]
# A request's column defaults, as the model declares them (created_at/updated_at are always given).
_DEFAULTS = {name: field.default for name, field in Request.model_fields.items()
             if name in _REQUEST_COLUMNS and field.default_factory is None and not field.is_required()}


def request_values(**given: Any) -> dict[str, Any]:
    """Every column of a new request (but its id): `given`, and the model's defaults for the rest."""
    values = {**_DEFAULTS, **given}
    missing = [name for name in _REQUEST_COLUMNS if name not in values]
    if missing:
        raise TypeError(f"a new request needs {', '.join(missing)}")
    return values


def as_request(values: dict[str, Any]) -> Request:
    """A `Request` holding `values` (every column), built the way the ORM builds one it loads.

    `Request(**values)` validates and sets some thirty instrumented attributes one by one (about
    100 µs); the slash command path only needs an object to render from, for values it has just
    stored. Like an instance the ORM loads, it is built without `__init__`, its values set as loaded."""
    if Request.__mapper__.configured is False:  # type: ignore[attr-defined]
        configure_mappers()  # what the first query or constructor call would do
    req: Request = Request._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    req.__dict__.update(values)
    return req


@dataclass
class NewRequest:
    """A request to insert (`values`: every column but id), with its `created` event and its first
    job, leased to the instance that inserts it (it runs the job at once)."""

    values: dict[str, Any]
    detail: dict[str, Any] | None
    job_kind: str
    job_key: Callable[[int], str]  # from the new request's id
    lease: tuple[str, datetime]


def insert_new(conn: Writer, items: list[NewRequest]) -> list[tuple[int, int | None]]:
    """Insert requests with their `created` events and jobs: one statement per table for all of them
    (a group-commit batch op, see storage.db.group_batched). (request id, job id) for each item; the
    job id is None if a job with its key existed."""
    target = connection_of(conn)
    ids = allocate_ids(target, _REQUESTS, len(items))
    _REQUEST_ROWS.execute(target, [{**item.values, "id": rid} for item, rid in zip(items, ids, strict=True)])
    _EVENT_ROWS.execute(target, [
        _event_row(rid, "created", item.values["requester_id"], item.values["team"], item.values["created_at"],
                   item.detail) for item, rid in zip(items, ids, strict=True)])
    keys = [item.job_key(rid) for item, rid in zip(items, ids, strict=True)]
    job_ids = job_queries.enqueue_leased_many(target, [
        (item.job_kind, key, {"request_id": rid}, item.values["created_at"], item.lease)
        for item, rid, key in zip(items, ids, keys, strict=True)])
    return [(rid, job_ids.get(key)) for rid, key in zip(ids, keys, strict=True)]


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


_POSTED_SQL: dict[tuple[str, int], str] = {}
_POSTED_COLUMNS = ("id", "department", "channel", "ts", "dm_channel", "dm_ts")  # the order of record_posts' values


def _mark_posted_sql(dialect: Any, rows: int) -> str:
    """UPDATE .. FROM (VALUES ..): many requests' post records in one statement."""
    sql = _POSTED_SQL.get((dialect.name, rows))
    if sql is None:
        if dialect.name == "postgresql":
            row = "(" + ", ".join(["CAST(%s AS INTEGER)"] + ["CAST(%s AS TEXT)"] * (len(_POSTED_COLUMNS) - 1)) + ")"
            source = f"(VALUES {', '.join([row] * rows)}) AS v ({', '.join(_POSTED_COLUMNS)})"
            c = {name: f"v.{name}" for name in _POSTED_COLUMNS}
        else:  # SQLite names the columns of VALUES column1, column2, ...
            row = "(" + ", ".join(["?"] * len(_POSTED_COLUMNS)) + ")"
            source = f"(VALUES {', '.join([row] * rows)}) AS v"
            c = {name: f"v.column{i}" for i, name in enumerate(_POSTED_COLUMNS, start=1)}
        sql = _POSTED_SQL[(dialect.name, rows)] = (
            f"UPDATE requests SET department = {c['department']}, triage_channel = {c['channel']}, "
            f"triage_ts = {c['ts']}, post_state = 'posted', post_error = NULL, response_url = NULL, "
            f"dm_channel = COALESCE({c['dm_channel']}, requests.dm_channel), "
            f"dm_ts = COALESCE({c['dm_ts']}, requests.dm_ts) "
            f"FROM {source} WHERE requests.id = {c['id']} RETURNING requests.id, requests.team")
    return sql


def record_posts(conn: Writer, items: list[PostRecord]) -> list[str | None]:
    """Store post records (a group-commit batch op): the requests' triage message and DM, their
    `posted` events, and their post jobs finished; three statements for all of them. Each item's
    request team, or None when the request is gone (then nothing is written for it)."""
    target = connection_of(conn)
    args: list[Any] = []
    for item in items:
        dm_channel, dm_ts = item.dm if item.dm else (None, None)
        args += [item.request_id, item.department, item.channel, item.ts, dm_channel, dm_ts]
    teams = {int(rid): str(team) for rid, team in run_raw(target, _mark_posted_sql(target.dialect, len(items)),
                                                           tuple(args))}
    found = [item for item in items if item.request_id in teams]
    _EVENT_ROWS.execute(target, [
        _event_row(item.request_id, "posted", None, teams[item.request_id], item.at, {"channel": item.channel})
        for item in found if item.new_post])
    for owner in dict.fromkeys(item.owner for item in found):
        job_queries.finish_many(target, job_ids=[item.job_id for item in found if item.owner == owner], owner=owner)
    return [teams.get(item.request_id) for item in items]


def _event_row(request_id: int, kind: str, actor: str | None, team: str, at: datetime,
               detail: dict[str, Any] | None) -> dict[str, Any]:
    """A history row (`_EVENT_COLUMNS`), its detail stored as JSON."""
    return {"request_id": request_id, "kind": kind, "actor_id": actor, "team": team, "at": at,
            "detail": json.dumps(detail, ensure_ascii=False) if detail else None}


def add_event(session: Writer, req: Request, kind: str, *, actor: str | None, at: datetime,
              detail: dict[str, Any] | None = None) -> None:
    """Append to the request's history (a Core insert: no ORM bookkeeping on hot paths)."""
    assert req.id is not None
    _INSERT_EVENT.execute(connection_of(session), _event_row(req.id, kind, actor, req.team, at, detail))


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
