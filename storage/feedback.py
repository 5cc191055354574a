"""Queries for feedback: emoji reactions and pulse surveys. Query functions flush; callers commit.

Survey life cycle (`surveys.status`):
    scheduled -> sending -> sent -> answered -> expired
    scheduled -> cancelled (request reopened) | skipped (per-person budget, surveys disabled)
    scheduled | sending -> failed (a permanent Slack error, or retries exhausted)
`sending` reserves the person's survey budget while the DM goes out. Whether a survey was answered is
`answered_at IS NOT NULL` (an answered survey ends as `expired` once it closes).

Which answers and ratings a report may use, and how: storage/feedback_weeks.py and
bot/services/satisfaction.py (never anything else, see docs/privacy.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import NeedsInvitation, Person, Reaction, Survey

ANSWERABLE = ("sent", "answered")
DIMENSIONS = ("responsiveness", "clarity", "transparency", "support")


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _locked(session: Session, stmt: Any) -> Any:
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt


# -- reactions ------------------------------------------------------------------------------------
ACTIVE = col(Reaction.removed_at).is_(None)


def add_reaction(session: Session, *, request_id: int, team: str, user_id: str, emoji: str, score: int | None,
                 is_requester: bool, at: datetime) -> bool:
    """Store one reaction; False when the same (request, user, emoji) is there already."""
    stmt = (_insert(session)(Reaction)
            .values(request_id=request_id, team=team, user_id=user_id, emoji=emoji[:100], score=score,
                    is_requester=is_requester, created_at=at)
            .on_conflict_do_nothing(index_elements=["request_id", "user_id", "emoji"], index_where=ACTIVE)
            .returning(Reaction.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def remove_reaction(session: Session, *, request_id: int, user_id: str, emoji: str, at: datetime) -> bool:
    """Mark the reaction removed at `at`. The row stays: the week it was given keeps counting it."""
    stmt = (update(Reaction).where(col(Reaction.request_id) == request_id, col(Reaction.user_id) == user_id,
                                   col(Reaction.emoji) == emoji[:100], ACTIVE)
            .values(removed_at=at).returning(Reaction.id))
    return bool(session.exec(stmt).all())  # type: ignore[call-overload]


def requester_rating(session: Session, request_id: int) -> Reaction | None:
    """The requester's rating of a request now: their latest scored reaction that is still there."""
    return session.exec(select(Reaction).where(
        col(Reaction.request_id) == request_id, col(Reaction.is_requester).is_(True), ACTIVE,
        col(Reaction.score).is_not(None)).order_by(col(Reaction.created_at).desc(), col(Reaction.id).desc())
    ).first()


# -- surveys --------------------------------------------------------------------------------------
def create_survey(session: Session, *, request_id: int, resolution_no: int, user_id: str, team: str,
                  department: str, due_at: datetime, created_at: datetime) -> int | None:
    """Insert the survey of one resolution; None when it exists already (a duplicate resolve)."""
    stmt = (_insert(session)(Survey)
            .values(request_id=request_id, resolution_no=resolution_no, user_id=user_id, team=team,
                    department=department or "Other", status="scheduled", due_at=due_at,
                    created_at=created_at, comment_anonymous=True)
            .on_conflict_do_nothing(index_elements=["request_id", "resolution_no"])
            .returning(Survey.id))
    return session.exec(stmt).scalar_one_or_none()  # type: ignore[call-overload]


def get_survey(session: Session, survey_id: int, *, for_update: bool = False) -> Survey | None:
    stmt = select(Survey).where(col(Survey.id) == survey_id)
    return session.exec(_locked(session, stmt) if for_update else stmt).first()


def surveys_of(session: Session, request_id: int) -> list[Survey]:
    return list(session.exec(select(Survey).where(col(Survey.request_id) == request_id)
                             .order_by(col(Survey.resolution_no))).all())


def set_status(session: Session, *, survey_id: int, status: str, reason: str | None = None,
               only_from: Sequence[str] = ("scheduled",)) -> bool:
    """Move a survey to `status` if it is still in one of `only_from` (a fenced transition)."""
    values: dict[str, Any] = {"status": status}
    if reason is not None:
        values["reason"] = reason[:200]
    stmt = (update(Survey).where(col(Survey.id) == survey_id, col(Survey.status).in_(list(only_from)))
            .values(**values).returning(Survey.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def cancel_scheduled(session: Session, *, request_id: int, reason: str) -> list[int]:
    """Cancel the request's surveys that have not started going out; returns their ids."""
    stmt = (update(Survey).where(col(Survey.request_id) == request_id, col(Survey.status) == "scheduled")
            .values(status="cancelled", reason=reason[:200]).returning(Survey.id))
    return [row[0] for row in session.exec(stmt).all()]  # type: ignore[call-overload]


def set_due(session: Session, *, survey_id: int, due_at: datetime) -> bool:
    stmt = (update(Survey).where(col(Survey.id) == survey_id, col(Survey.status) == "scheduled")
            .values(due_at=due_at).returning(Survey.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def budget_blocker(session: Session, *, user_id: str, since: datetime, survey_id: int | None = None,
                   invitation_id: int | None = None) -> str | None:
    """Why `user_id` may not get another survey now (None: they may). Call under `lock_person`'s lock.

    The budget is shared by pulse surveys and needs-survey invitations (storage/needs.py): the last
    one sent (`people.last_survey_at`, or a sent row), or one being sent right now, blocks the next.
    `survey_id` / `invitation_id` is the one being decided, left out of the check."""
    person = session.get(Person, user_id)
    if person is not None and person.last_survey_at is not None and person.last_survey_at >= since:
        return f"survey budget: last survey sent {person.last_survey_at:%Y-%m-%d %H:%M} UTC"
    recent = (col(Survey.sent_at) >= since) | (col(Survey.status) == "sending")
    other = session.exec(select(Survey.status, Survey.sent_at).where(
        col(Survey.user_id) == user_id, col(Survey.id) != (survey_id or 0), recent).limit(1)).first()
    if other is None:
        inv = NeedsInvitation
        other = session.exec(select(inv.status, inv.sent_at).where(
            col(inv.user_id) == user_id, col(inv.id) != (invitation_id or 0),
            (col(inv.sent_at) >= since) | (col(inv.status) == "sending")).limit(1)).first()
    if other is None:
        return None
    if other[1] is None:
        return "survey budget: another survey to this person is being sent"
    return f"survey budget: last survey sent {other[1]:%Y-%m-%d %H:%M} UTC"


def lock_person(session: Session, user_id: str) -> Person:
    """Create (if needed) and lock the person's row: surveys to one person are decided one at a time."""
    session.exec(_insert(session)(Person).values(user_id=user_id)  # type: ignore[call-overload]
                 .on_conflict_do_nothing(index_elements=["user_id"]))
    person = session.exec(_locked(session, select(Person).where(col(Person.user_id) == user_id))).first()
    assert person is not None
    return person


def mark_sent(session: Session, *, survey_id: int, user_id: str, channel: str, ts: str, sent_at: datetime,
              expires_at: datetime) -> bool:
    """Record the delivered DM (fenced on `sending`) and spend the person's survey budget."""
    stmt = (update(Survey).where(col(Survey.id) == survey_id, col(Survey.status) == "sending")
            .values(status="sent", channel=channel, ts=ts, sent_at=sent_at, expires_at=expires_at,
                    reason=None)
            .returning(Survey.id))
    if session.exec(stmt).scalar_one_or_none() is None:  # type: ignore[call-overload]
        return False
    spend_budget(session, user_id=user_id, sent_at=sent_at)
    return True


def spend_budget(session: Session, *, user_id: str, sent_at: datetime) -> None:
    """Record that a survey (pulse or needs) went to `user_id` at `sent_at` (the latest time wins)."""
    upsert = _insert(session)(Person).values(user_id=user_id, last_survey_at=sent_at)
    last = Person.__table__.c.last_survey_at  # type: ignore[attr-defined]
    session.exec(upsert.on_conflict_do_update(  # type: ignore[call-overload]
        index_elements=["user_id"], set_={"last_survey_at": upsert.excluded.last_survey_at},
        where=last.is_(None) | (last < upsert.excluded.last_survey_at)))


def record_answer(session: Session, *, survey_id: int, values: dict[str, Any], now: datetime) -> Survey:
    """Store (part of) an answer on a locked, answerable survey; the first answer time is kept."""
    survey = get_survey(session, survey_id, for_update=True)
    assert survey is not None
    for key, value in values.items():
        setattr(survey, key, value)
    survey.status = "answered"
    survey.answered_at = survey.answered_at or now
    session.add(survey)
    session.flush()
    return survey


def expire_due(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Close sent/answered surveys whose `expires_at` has passed; returns their ids."""
    due = (select(Survey.id).where(col(Survey.status).in_(ANSWERABLE), col(Survey.expires_at) <= now)
           .order_by(col(Survey.expires_at)).limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (update(Survey)
            .where(col(Survey.id).in_(due.scalar_subquery()), col(Survey.status).in_(ANSWERABLE))
            .values(status="expired").returning(Survey.id))
    return [row[0] for row in session.exec(stmt).all()]  # type: ignore[call-overload]


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.exec(select(Survey.status, func.count()).group_by(Survey.status)).all()
    return {status: int(n) for status, n in rows}
