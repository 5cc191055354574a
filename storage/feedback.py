"""Queries for feedback: emoji reactions and pulse surveys. Query functions flush; callers commit.

Survey life cycle (`surveys.status`):
    scheduled -> sending -> sent -> answered -> expired
    scheduled -> cancelled (request reopened) | skipped (per-person budget, surveys disabled)
    scheduled | sending -> failed (a permanent Slack error, or retries exhausted)
`sending` reserves the person's survey budget while the DM goes out. Whether a survey was answered is
`answered_at IS NOT NULL` (an answered survey ends as `expired` once it closes).

The aggregate queries at the end return RAW counts: every score, rating or comment figure built from
them must pass `bot/analytics/privacy.py` before it is shown (`bot.services.feedback.report` does that).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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
def add_reaction(session: Session, *, request_id: int, team: str, user_id: str, emoji: str, score: int | None,
                 is_requester: bool, at: datetime) -> bool:
    """Store one reaction; False when the same (request, user, emoji) is already stored."""
    stmt = (_insert(session)(Reaction)
            .values(request_id=request_id, team=team, user_id=user_id, emoji=emoji[:100], score=score,
                    is_requester=is_requester, created_at=at)
            .on_conflict_do_nothing(index_elements=["request_id", "user_id", "emoji"])
            .returning(Reaction.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def remove_reaction(session: Session, *, request_id: int, user_id: str, emoji: str) -> bool:
    rows = session.exec(select(Reaction).where(  # type: ignore[call-overload]
        col(Reaction.request_id) == request_id, col(Reaction.user_id) == user_id,
        col(Reaction.emoji) == emoji[:100])).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return bool(rows)


def requester_rating(session: Session, request_id: int) -> Reaction | None:
    """The requester's rating of a request: their latest remaining scored reaction."""
    return session.exec(select(Reaction).where(
        col(Reaction.request_id) == request_id, col(Reaction.is_requester).is_(True),
        col(Reaction.score).is_not(None)).order_by(col(Reaction.created_at).desc(), col(Reaction.id).desc())
    ).first()


def reactions_of(session: Session, request_id: int) -> list[Reaction]:
    return list(session.exec(select(Reaction).where(col(Reaction.request_id) == request_id)
                             .order_by(col(Reaction.created_at), col(Reaction.id))).all())


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


# -- aggregates for reports (raw: gate them) ------------------------------------------------------
def _team_filter(column: Any, team: str | None) -> list[Any]:
    return [] if team in (None, "*") else [column == team]


@dataclass(frozen=True)
class SurveyAggregates:
    """Counts over [start, end). `sent` by sent_at; everything about answers by answered_at."""

    sent: int = 0
    answered: int = 0
    skipped: int = 0
    failed: int = 0
    scores: dict[int, int] = field(default_factory=dict)  # overall score -> answers
    dimensions: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (sum, count)
    shareable_comments: int = 0

    @property
    def score_count(self) -> int:
        return sum(self.scores.values())

    def score_list(self) -> list[int]:
        """The overall scores as a list (for `privacy.gated_csat` / `gated_mean`)."""
        return [score for score, n in sorted(self.scores.items()) for _ in range(n)]


def survey_aggregates(session: Session, *, team: str | None, start: datetime,
                      end: datetime) -> SurveyAggregates:
    """Survey counts, score histogram and dimension sums of one team (None or "*": all teams)."""
    where_team = _team_filter(col(Survey.team), team)
    answered = [*where_team, col(Survey.answered_at) >= start, col(Survey.answered_at) < end]

    def count(*where: Any) -> int:
        return int(session.exec(select(func.count()).select_from(Survey).where(*where)).one())

    scores = session.exec(select(Survey.score, func.count()).where(*answered, col(Survey.score).is_not(None))
                          .group_by(Survey.score)).all()
    dims = session.exec(select(*[f(getattr(Survey, d)) for d in DIMENSIONS for f in (func.sum, func.count)])
                        .where(*answered)).one()
    due = [*where_team, col(Survey.due_at) >= start, col(Survey.due_at) < end]
    return SurveyAggregates(
        sent=count(*where_team, col(Survey.sent_at) >= start, col(Survey.sent_at) < end),
        answered=count(*answered),
        skipped=count(*due, col(Survey.status) == "skipped"),
        failed=count(*due, col(Survey.status) == "failed"),
        scores={int(s): int(n) for s, n in scores},
        dimensions={d: (int(dims[2 * i] or 0), int(dims[2 * i + 1] or 0)) for i, d in enumerate(DIMENSIONS)},
        shareable_comments=count(*answered, col(Survey.comment_anonymous).is_(True),
                                 col(Survey.comment) != ""),
    )


def comments(session: Session, *, team: str | None, start: datetime, end: datetime) -> list[str]:
    """Comments of surveys answered in [start, end) whose authors allowed sharing them anonymously."""
    rows = session.exec(select(Survey.comment).where(
        *_team_filter(col(Survey.team), team),
        col(Survey.answered_at) >= start, col(Survey.answered_at) < end,
        col(Survey.comment_anonymous).is_(True), col(Survey.comment).is_not(None), col(Survey.comment) != "",
    ).order_by(col(Survey.id))).all()
    return [str(c) for c in rows if c and str(c).strip()]


@dataclass(frozen=True)
class RatingBreakdown:
    """Requester ratings given in [start, end): the latest scored reaction per request."""

    by_emoji: dict[str, int] = field(default_factory=dict)  # base emoji (no skin tone) -> requests
    by_score: dict[int, int] = field(default_factory=dict)  # 1..5 -> requests
    peer_reactions: int = 0  # scored reactions by people other than the requester (never a rating)

    @property
    def rated_requests(self) -> int:
        return sum(self.by_score.values())


def rating_breakdown(session: Session, *, team: str | None, start: datetime,
                     end: datetime) -> RatingBreakdown:
    window = [*_team_filter(col(Reaction.team), team), col(Reaction.created_at) >= start,
              col(Reaction.created_at) < end, col(Reaction.score).is_not(None)]
    rows = session.exec(select(Reaction.request_id, Reaction.emoji, Reaction.score)
                        .where(*window, col(Reaction.is_requester).is_(True))
                        .order_by(col(Reaction.request_id), col(Reaction.created_at), col(Reaction.id))).all()
    latest = {request_id: (emoji, score) for request_id, emoji, score in rows}
    by_emoji: dict[str, int] = {}
    by_score: dict[int, int] = {}
    for emoji, score in latest.values():
        base = emoji.split("::", 1)[0]
        by_emoji[base] = by_emoji.get(base, 0) + 1
        by_score[int(score)] = by_score.get(int(score), 0) + 1
    peers = session.exec(select(func.count()).select_from(Reaction)
                         .where(*window, col(Reaction.is_requester).is_(False))).one()
    return RatingBreakdown(by_emoji=by_emoji, by_score=by_score, peer_reactions=int(peers))
