"""Which survey answers and ratings belong to a feedback week: raw rows, never shown without the gate.

Membership is defined so that a week's set can no longer change once the week has ended:
- a survey answer belongs to the week in which its survey *closes* (`expires_at`): until then the
  person may still change it, afterwards nobody can;
- a rating belongs to the week it was given in (`reactions.created_at`); per request only the
  requester's latest scored reaction of that week counts, among those not removed before the week
  ended (a removed reaction keeps its row and its `removed_at`).
Every function answers for a list of teams at once; windows are [start, end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, literal, or_, select
from sqlmodel import Session

from storage.models import Reaction, Survey

S, X = Survey.__table__.c, Reaction.__table__.c  # type: ignore[attr-defined]
DIMENSIONS = ("responsiveness", "clarity", "transparency", "support")


def _closing(start: datetime, end: datetime) -> list[Any]:
    """Surveys that closed in [start, end) (`expires_at` is set when a survey is sent)."""
    return [S.expires_at >= start, S.expires_at < end]


@dataclass(frozen=True)
class ClosedSurvey:
    """A survey that closed in the week. `comment` only when its author let it be shared."""

    id: int
    team: str
    department: str
    answered: bool
    score: int | None
    dimensions: tuple[int | None, ...]  # in DIMENSIONS order
    comment: str | None
    closes: datetime


def closed_surveys(session: Session, teams: Sequence[str], start: datetime, end: datetime) -> list[ClosedSurvey]:
    shared = case((S.comment_anonymous.is_(True), S.comment), else_=None)
    stmt = (select(S.id, S.team, S.department, S.answered_at.is_not(None), S.score,
                   *[S[d] for d in DIMENSIONS], shared, S.expires_at)
            .where(S.team.in_(teams), *_closing(start, end)).order_by(S.id))
    return [ClosedSurvey(id=row[0], team=row[1], department=row[2] or "Other", answered=bool(row[3]),
                         score=row[4] if row[3] else None,
                         dimensions=tuple(row[5:9]) if row[3] else (None,) * len(DIMENSIONS),
                         comment=row[9] if row[3] and row[9] and str(row[9]).strip() else None, closes=row[10])
            for row in session.connection().execute(stmt)]


def score_counts(session: Session, teams: Sequence[str],
                 bounds: Sequence[datetime]) -> dict[str, list[tuple[int, int]]]:
    """(answers with a score, of them 4 or 5) per team and week of `bounds` (oldest first): the same
    answers as `closed_surveys` gives for each of those weeks."""
    whens = [(S.expires_at >= bounds[i], i) for i in range(len(bounds) - 2, 0, -1)]
    bucket = (case(*whens, else_=0) if whens else literal(0)).label("b")
    stmt = (select(S.team, bucket, func.count(S.score), func.sum(case((S.score >= 4, 1), else_=0)))
            .where(S.team.in_(teams), S.answered_at.is_not(None), *_closing(bounds[0], bounds[-1]))
            .group_by(S.team, bucket))
    out: dict[str, list[tuple[int, int]]] = {t: [(0, 0)] * (len(bounds) - 1) for t in teams}
    for team, b, n, good in session.connection().execute(stmt):
        out[team][int(b)] = (int(n), int(good or 0))
    return out


@dataclass(frozen=True)
class Rating:
    id: int
    request_id: int
    team: str
    score: int


def ratings(session: Session, teams: Sequence[str], start: datetime, end: datetime) -> list[Rating]:
    """The ratings of the week: per request, the requester's latest scored reaction given in the week
    that had not been removed when it ended. (Ranked over all teams, so a request rated before and
    after a transfer in one week counts once, for the team its latest rating went to.)"""
    given = (select(X.id, X.request_id, X.team, X.score,
                    func.row_number().over(partition_by=X.request_id,
                                           order_by=(X.created_at.desc(), X.id.desc())).label("rn"))
             .where(X.created_at >= start, X.created_at < end, X.is_requester.is_(True), X.score.is_not(None),
                    or_(X.removed_at.is_(None), X.removed_at >= end))
             .subquery())
    stmt = (select(given.c.id, given.c.request_id, given.c.team, given.c.score)
            .where(given.c.rn == 1, given.c.team.in_(teams)).order_by(given.c.id))
    return [Rating(id=r[0], request_id=r[1], team=r[2], score=int(r[3]))
            for r in session.connection().execute(stmt)]
