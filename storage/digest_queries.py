"""SQL aggregates for the weekly digests' volume and speed figures. No Slack here, and no per-row Python
over the history. (Satisfaction: storage/feedback_weeks.py.)

Every function takes the list of team slugs and answers for all of them at once with a GROUP BY in
the database, reading only the rows of the periods involved through the (team, time) indexes
(`team IN (...)` lets both SQLite and PostgreSQL seek each team's index range). Durations are
computed in SQL as seconds. Results are plain tuples/dicts; the caller turns them into figures.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from storage.models import Request, RequestEvent

OPEN = ("open", "claimed")
R, E = Request.__table__.c, RequestEvent.__table__.c  # type: ignore[attr-defined]


def _conn(session: Session) -> Connection:
    return session.connection()


def _seconds(conn: Connection, later: Any, earlier: Any) -> ColumnElement[float]:
    """`later - earlier` in seconds, computed by the database."""
    if conn.dialect.name == "postgresql":
        return cast(func.extract("epoch", later - earlier), Float)
    return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)


def _bucket(column: Any, bounds: Sequence[datetime]) -> ColumnElement[int]:
    """Index of the [bounds[i], bounds[i+1]) interval holding `column` (rows are pre-filtered)."""
    whens = [(column >= bounds[i], i) for i in range(len(bounds) - 2, 0, -1)]
    return case(*whens, else_=0) if whens else literal(0)


def weekly_new(session: Session, teams: Sequence[str], bounds: Sequence[datetime]) -> dict[str, list[int]]:
    """Requests created per team in each interval of `bounds` (oldest first)."""
    bucket = _bucket(R.created_at, bounds).label("b")
    stmt = (select(R.team, bucket, func.count()).where(R.team.in_(teams), R.created_at >= bounds[0],
                                                       R.created_at < bounds[-1]).group_by(R.team, bucket))
    out: dict[str, list[int]] = {t: [0] * (len(bounds) - 1) for t in teams}
    for team, b, n in _conn(session).execute(stmt):
        out[team][int(b)] = int(n)
    return out


def department_counts(session: Session, teams: Sequence[str], prev_start: datetime, start: datetime,
                      end: datetime) -> dict[str, dict[bool, dict[str, int]]]:
    """{team: {current period?: {department: requests created}}} for the period and the one before."""
    current = (R.created_at >= start).label("cur")
    stmt = (select(R.team, R.department, current, func.count())
            .where(R.team.in_(teams), R.created_at >= prev_start, R.created_at < end)
            .group_by(R.team, R.department, current))
    out: dict[str, dict[bool, dict[str, int]]] = {t: {True: {}, False: {}} for t in teams}
    for team, dept, cur, n in _conn(session).execute(stmt):
        bucket = out[team][bool(cur)]
        name = dept or "Other"
        bucket[name] = bucket.get(name, 0) + int(n)
    return out


def category_counts(session: Session, teams: Sequence[str], start: datetime,
                    end: datetime) -> dict[str, list[tuple[str | None, int]]]:
    """{team: [(category or None, requests created)]} for the period, most frequent first."""
    stmt = (select(R.team, R.category, func.count())
            .where(R.team.in_(teams), R.created_at >= start, R.created_at < end)
            .group_by(R.team, R.category))
    out: dict[str, list[tuple[str | None, int]]] = defaultdict(list)
    for team, category, n in _conn(session).execute(stmt):
        out[team].append((category, int(n)))
    for rows in out.values():
        rows.sort(key=lambda row: (-row[1], row[0] is None, row[0] or ""))
    return out


def request_texts(session: Session, teams: Sequence[str], start: datetime,
                  end: datetime) -> dict[str, list[str]]:
    """Texts of the requests created in the period, per team (input of topic extraction)."""
    out: dict[str, list[str]] = defaultdict(list)
    stmt = select(R.team, R.text).where(R.team.in_(teams), R.created_at >= start, R.created_at < end,
                                        R.purged_at.is_(None))
    for team, text in _conn(session).execute(stmt):
        out[team].append(text)
    return out


def event_counts(session: Session, teams: Sequence[str], prev_start: datetime, start: datetime, end: datetime,
                 kinds: Sequence[str] = ("resolved", "reopened")) -> dict[tuple[str, str, bool], int]:
    """{(team, kind, in current period?): events} from the request history."""
    current = (E.at >= start).label("cur")
    stmt = (select(E.team, E.kind, current, func.count())
            .where(E.team.in_(teams), E.at >= prev_start, E.at < end, E.kind.in_(kinds))
            .group_by(E.team, E.kind, current))
    return {(t, k, bool(c)): int(n) for t, k, c, n in _conn(session).execute(stmt)}


def transfers(session: Session, all_teams: Sequence[str], start: datetime,
              end: datetime) -> list[tuple[str | None, str | None]]:
    """(from, to) of every transfer in the period between configured teams (few rows)."""
    stmt = select(E.team, E.detail).where(E.team.in_(all_teams), E.at >= start, E.at < end,
                                          E.kind == "transferred")
    out: list[tuple[str | None, str | None]] = []
    for team, detail in _conn(session).execute(stmt):
        try:
            info = json.loads(detail or "{}")
        except ValueError:
            info = {}
        out.append((info.get("from"), info.get("to") or team))
    return out


Durations = dict[bool, tuple[list[float], list[float]]]


def durations(session: Session, teams: Sequence[str], prev_start: datetime, start: datetime,
              end: datetime) -> dict[str, Durations]:
    """{team: {current period?: (seconds to first response, seconds to resolution)}} of the requests
    resolved in the period or the one before (requests never answered have no first-response time)."""
    conn = _conn(session)
    stmt = select(R.team, (R.resolved_at >= start).label("cur"),
                  _seconds(conn, R.first_response_at, R.created_at),
                  _seconds(conn, R.resolved_at, R.created_at)).where(
        R.team.in_(teams), R.resolved_at >= prev_start, R.resolved_at < end)
    out: dict[str, Durations] = {t: {True: ([], []), False: ([], [])} for t in teams}
    for team, cur, first, resolution in conn.execute(stmt):
        firsts, resolutions = out[team][bool(cur)]
        if first is not None:
            firsts.append(float(first))
        resolutions.append(float(resolution))
    return out


def open_at(session: Session, teams: Sequence[str], end: datetime) -> dict[str, int]:
    """Requests open at `end`: still open now, or resolved only after `end` (created before it)."""
    conn = _conn(session)
    out: dict[str, int] = dict.fromkeys(teams, 0)
    still_open = select(R.team, func.count()).where(R.team.in_(teams), R.status.in_(OPEN), R.created_at < end)
    resolved_later = select(R.team, func.count()).where(R.team.in_(teams), R.resolved_at >= end,
                                                        R.created_at < end)
    for stmt in (still_open, resolved_later):
        for team, n in conn.execute(stmt.group_by(R.team)):
            out[team] += int(n)
    return out


def oldest_open(session: Session, teams: Sequence[str], end: datetime) -> dict[str, dict[str, Any]]:
    """Per team, the open request created first (before `end`)."""
    first = (select(R.team.label("team"), func.min(R.created_at).label("at"))
             .where(R.team.in_(teams), R.status.in_(OPEN), R.created_at < end).group_by(R.team).subquery())
    stmt = (select(R.team, R.id, R.summary, R.created_at, R.triage_channel, R.triage_ts)
            .join(first, and_(R.team == first.c.team, R.created_at == first.c.at))
            .where(R.status.in_(OPEN)).order_by(R.id.desc()))
    return {row.team: dict(row._mapping) for row in _conn(session).execute(stmt)}  # lowest id wins ties


def reopened(session: Session, teams: Sequence[str], start: datetime, end: datetime,
             limit: int) -> dict[str, list[dict[str, Any]]]:
    """Requests reopened in the period (latest reopening first), per team, with the team's total."""
    last = (select(E.request_id, func.max(E.at).label("at"))
            .where(E.team.in_(teams), E.kind == "reopened", E.at >= start, E.at < end)
            .group_by(E.request_id).subquery())
    rn = func.row_number().over(partition_by=R.team, order_by=(last.c.at.desc(), R.id)).label("rn")
    total = func.count().over(partition_by=R.team).label("total")
    inner = (select(R.team, R.id, R.summary, R.created_at, R.triage_channel, R.triage_ts,
                    last.c.at.label("reopened_at"), rn, total)
             .join(last, last.c.request_id == R.id).where(R.team.in_(teams)).subquery())
    stmt = select(inner).where(inner.c.rn <= limit).order_by(inner.c.team, inner.c.rn)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _conn(session).execute(stmt):
        out[row.team].append(dict(row._mapping))
    return out
