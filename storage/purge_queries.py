"""Data-retention queries: blank old request text and comments, delete old bookkeeping rows.

A request is "old" when it was created before the cutoff; its survey comments and the free-text
notes in its history go with it. Every writing function handles ONE batch and returns how many rows
it touched (and, for keyset scans, where to continue), so the caller can commit batch by batch and a
million rows never sit in one transaction. Scores, timestamps, departments, categories, event kinds
and the transfer `from`/`to` stay, so the digests' aggregates do not change.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlmodel import Session

from storage.models import Job, NeedsAnswer, NeedsRound, NeedsTheme, ProcessedEvent, Request, RequestEvent, Survey

R, E, S = Request.__table__.c, RequestEvent.__table__.c, Survey.__table__.c  # type: ignore[attr-defined]
P, J = ProcessedEvent.__table__.c, Job.__table__.c  # type: ignore[attr-defined]
FINISHED_JOBS = ("done", "cancelled", "failed")
FREE_TEXT_KEYS = ("note",)  # keys of request_events.detail that carry what a person wrote
_NOTE_LIKE = "%\"note\"%"


def _count(session: Session, stmt: Any) -> int:
    return int(session.connection().execute(stmt).scalar_one())


# -- requests ---------------------------------------------------------------------------------
def count_requests(session: Session, *, cutoff: datetime) -> int:
    return _count(session, select(func.count()).where(R.created_at < cutoff, R.purged_at.is_(None)))


def purge_requests(session: Session, *, cutoff: datetime, now: datetime, after: int,
                   limit: int) -> tuple[int, int]:
    """Blank text/summary (and the stale response_url) of the next batch of old requests with an
    id above `after`; returns (last id seen, rows purged)."""
    conn = session.connection()
    ids = list(conn.execute(select(R.id).where(R.id > after, R.created_at < cutoff, R.purged_at.is_(None))
                            .order_by(R.id).limit(limit)).scalars())
    if ids:
        conn.execute(update(Request.__table__).where(R.id.in_(ids))  # type: ignore[arg-type]
                     .values(text="", summary="", response_url=None, purged_at=now))
    return (ids[-1] if ids else after), len(ids)


# -- survey comments --------------------------------------------------------------------------
def count_comments(session: Session, *, cutoff: datetime) -> int:
    stmt = (select(func.count()).select_from(Survey.__table__.join(Request.__table__, R.id == S.request_id))
            .where(R.created_at < cutoff, S.comment.is_not(None)))
    return _count(session, stmt)


def purge_comments(session: Session, *, cutoff: datetime, after: int, limit: int) -> tuple[int, int]:
    """Null the comments of the next batch of surveys of old requests; returns (last id, rows)."""
    conn = session.connection()
    stmt = (select(S.id).select_from(Survey.__table__.join(Request.__table__, R.id == S.request_id))
            .where(S.id > after, R.created_at < cutoff, S.comment.is_not(None)).order_by(S.id).limit(limit))
    ids = list(conn.execute(stmt).scalars())
    if ids:
        conn.execute(update(Survey.__table__).where(S.id.in_(ids)).values(comment=None))  # type: ignore[arg-type]
    return (ids[-1] if ids else after), len(ids)


# -- needs surveys: written answers and the quotes of the report --------------------------------
A, NR, NT = NeedsAnswer.__table__.c, NeedsRound.__table__.c, NeedsTheme.__table__.c  # type: ignore[attr-defined]


def _old_written(cutoff: datetime) -> Any:
    """Answers with written text, of needs rounds that closed before the cutoff."""
    return (A.round_id.in_(select(NR.id).where(NR.closes_at < cutoff))
            & (A.obstacle.is_not(None) | A.start_stop.is_not(None)))


def count_needs_texts(session: Session, *, cutoff: datetime) -> int:
    return _count(session, select(func.count()).select_from(NeedsAnswer.__table__).where(_old_written(cutoff)))


def purge_needs_texts(session: Session, *, cutoff: datetime, after: int, limit: int) -> tuple[int, int]:
    """Null the written answers of the next batch (scores stay) and, with the first batch, the quotes of
    those rounds' themes (labels and counts stay); returns (last id, rows)."""
    conn = session.connection()
    ids = list(conn.execute(select(A.id).where(A.id > after, _old_written(cutoff)).order_by(A.id).limit(limit))
               .scalars())
    if ids:
        conn.execute(update(NeedsAnswer.__table__).where(A.id.in_(ids))  # type: ignore[arg-type]
                     .values(obstacle=None, start_stop=None))
    if after == 0:
        conn.execute(update(NeedsTheme.__table__)  # type: ignore[arg-type]
                     .where(NT.round_id.in_(select(NR.id).where(NR.closes_at < cutoff)), NT.quotes != "[]")
                     .values(quotes="[]"))
    return (ids[-1] if ids else after), len(ids)


# -- free-text notes in the request history ----------------------------------------------------
def without_notes(detail: str | None) -> str | None:
    """`detail` with its free-text keys removed (None when nothing else is left or it is not JSON)."""
    try:
        data = json.loads(detail or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kept = {k: v for k, v in data.items() if k not in FREE_TEXT_KEYS}
    return json.dumps(kept, ensure_ascii=False) if kept else None


def scrub_notes(session: Session, *, cutoff: datetime, after: int, limit: int,
                write: bool = True) -> tuple[int, int, int]:
    """Scan the next batch of history rows of old requests that may hold a note (keyset on id);
    remove the notes when `write`. Returns (last id scanned, rows scanned, rows changed)."""
    conn = session.connection()
    history = RequestEvent.__table__.join(Request.__table__, R.id == E.request_id)
    stmt = (select(E.id, E.detail).select_from(history)
            .where(E.id > after, R.created_at < cutoff, E.detail.like(_NOTE_LIKE))
            .order_by(E.id).limit(limit))
    rows = list(conn.execute(stmt))
    changes = [{"b_id": row.id, "b_detail": without_notes(row.detail)} for row in rows]
    changes = [c for c, row in zip(changes, rows, strict=True) if c["b_detail"] != row.detail]
    if write and changes:
        conn.execute(update(RequestEvent.__table__).where(E.id == bindparam("b_id"))  # type: ignore[arg-type]
                     .values(detail=bindparam("b_detail")), changes)
    return (rows[-1].id if rows else after), len(rows), len(changes)


# -- bookkeeping rows ---------------------------------------------------------------------------
def count_processed_events(session: Session, *, cutoff: datetime) -> int:
    return _count(session, select(func.count()).where(P.received_at < cutoff))


def delete_processed_events(session: Session, *, cutoff: datetime, limit: int) -> int:
    conn = session.connection()
    ids = list(conn.execute(select(P.event_id).where(P.received_at < cutoff).limit(limit)).scalars())
    if ids:
        conn.execute(delete(ProcessedEvent.__table__).where(P.event_id.in_(ids)))  # type: ignore[arg-type]
    return len(ids)


def count_finished_jobs(session: Session, *, cutoff: datetime) -> int:
    return _count(session, select(func.count()).where(J.status.in_(FINISHED_JOBS), J.updated_at < cutoff))


def delete_finished_jobs(session: Session, *, cutoff: datetime, limit: int) -> int:
    conn = session.connection()
    ids = list(conn.execute(select(J.id).where(J.status.in_(FINISHED_JOBS), J.updated_at < cutoff)
                            .order_by(J.id).limit(limit)).scalars())
    if ids:
        conn.execute(delete(Job.__table__).where(J.id.in_(ids)))  # type: ignore[arg-type]
    return len(ids)
