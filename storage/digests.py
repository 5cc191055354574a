"""Queries of the `digests` table: one row per team (or '*' for the organisation) and ISO week."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import Digest, Job, utcnow


def create(session: Session, *, team: str, week: str, period_start: datetime, period_end: datetime,
           channel: str, late: bool) -> bool:
    """Insert the row unless (team, week) exists; True when it was created."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (insert(Digest).values(team=team, week=week, period_start=period_start, period_end=period_end,
                                  status="scheduled", late=late, channel=channel)
            .on_conflict_do_nothing(index_elements=["team", "week"]).returning(Digest.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def get(session: Session, *, team: str, week: str) -> Digest | None:
    return session.exec(select(Digest).where(col(Digest.team) == team, col(Digest.week) == week)).first()


def existing(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (team, week) pairs already have a row."""
    if not keys:
        return set()
    weeks = sorted({week for _, week in keys})
    rows = session.exec(select(Digest.team, Digest.week).where(col(Digest.week).in_(weeks))).all()
    return {(team, week) for team, week in rows} & set(keys)


def set_values(session: Session, *, digest_id: int, **values: Any) -> None:
    session.exec(update(Digest).where(col(Digest.id) == digest_id).values(**values))  # type: ignore[call-overload]


def mark_failed(session: Session, *, team: str, week: str, error: str) -> None:
    stmt = update(Digest).where(col(Digest.team) == team, col(Digest.week) == week,
                                col(Digest.status) != "posted")
    session.exec(stmt.values(status="failed", error=error[:200]))  # type: ignore[call-overload]


def retry_failed(session: Session, *, team: str, week: str, job_key: str,
                 now: datetime | None = None) -> None:
    """Make a failed digest (and its failed job) due again, e.g. after its channel was fixed."""
    now = now or utcnow()
    session.exec(update(Digest).where(col(Digest.team) == team, col(Digest.week) == week,  # type: ignore[call-overload]
                                      col(Digest.status) == "failed").values(status="scheduled", error=None))
    session.exec(update(Job).where(col(Job.key) == job_key, col(Job.status) == "failed")  # type: ignore[call-overload]
                 .values(status="pending", attempts=0, due_at=now, last_error=None, lease_owner=None,
                         lease_until=None, updated_at=now))
