"""Queries of needs surveys: rounds, invitations, answers, themes and improvement actions.

Query functions flush; the caller's scope commits. Answers leave this module RAW: every score, theme or
quote built from them must pass `bot/analytics/privacy.py` before it is shown (bot/services/needs_report.py).

Round life cycle (`needs_rounds.status`): open -> closed (past `closes_at`: no more answers) -> reported.
Invitation life cycle: scheduled -> sending -> sent -> answered; scheduled -> skipped | failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage import jobs as job_queries
from storage.models import NeedsAction, NeedsAnswer, NeedsInvitation, NeedsRound, NeedsTheme, Request
from storage.session import dialect_insert

SCORES = ("overall", "communication", "transparency", "support")
TEXTS = ("obstacle", "start_stop")
ACTION_STATUSES = ("planned", "in_progress", "done")
INSERT_CHUNK = 1000


def _locked(session: Session, stmt: Any) -> Any:
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt


# -- rounds ---------------------------------------------------------------------------------------
def create_round(session: Session, *, team: str, key: str, cadence: str, opens_at: datetime,
                 closes_at: datetime, audience_start: datetime, audience_end: datetime,
                 intro: str | None) -> int | None:
    """Insert a round; None when the team already has a round with this key."""
    stmt = (dialect_insert(session)(NeedsRound)
            .values(team=team, key=key, cadence=cadence, status="open", opens_at=opens_at, closes_at=closes_at,
                    audience_start=audience_start, audience_end=audience_end, intro=intro, invited=0,
                    created_at=opens_at)
            .on_conflict_do_nothing(index_elements=["team", "key"]).returning(NeedsRound.id))
    return session.exec(stmt).scalar_one_or_none()  # type: ignore[call-overload]


def get_round(session: Session, round_id: int, *, for_update: bool = False, shared: bool = False) -> NeedsRound | None:
    """A round; `for_update` locks it (closing), `shared` takes a shared lock (an answer being stored: many
    answers at once, but the close waits for them, so no answer lands after it)."""
    stmt = select(NeedsRound).where(col(NeedsRound.id) == round_id)
    if session.get_bind().dialect.name == "postgresql" and (for_update or shared):
        stmt = stmt.with_for_update(read=not for_update)
    return session.exec(stmt).first()


def round_by_key(session: Session, *, team: str, key: str) -> NeedsRound | None:
    return session.exec(select(NeedsRound).where(col(NeedsRound.team) == team,
                                                 col(NeedsRound.key) == key)).first()


def keys_like(session: Session, *, team: str, prefix: str) -> set[str]:
    rows = session.exec(select(NeedsRound.key).where(col(NeedsRound.team) == team,
                                                     col(NeedsRound.key).startswith(prefix))).all()
    return set(rows)


def rounds_of(session: Session, *, team: str, statuses: Sequence[str] | None = None) -> list[NeedsRound]:
    """The team's rounds, oldest first."""
    where = [col(NeedsRound.team) == team]
    if statuses:
        where.append(col(NeedsRound.status).in_(list(statuses)))
    return list(session.exec(select(NeedsRound).where(*where)
                             .order_by(col(NeedsRound.opens_at), col(NeedsRound.id))).all())


def previous_round(session: Session, rnd: NeedsRound) -> NeedsRound | None:
    """The team's round that opened before `rnd` (the one a report compares with)."""
    return session.exec(select(NeedsRound).where(
        col(NeedsRound.team) == rnd.team, col(NeedsRound.id) != rnd.id,
        col(NeedsRound.opens_at) <= rnd.opens_at,
    ).order_by(col(NeedsRound.opens_at).desc(), col(NeedsRound.id).desc())).first()


def mark_planned(session: Session, *, round_id: int, invited: int, at: datetime) -> None:
    session.exec(update(NeedsRound).where(col(NeedsRound.id) == round_id)  # type: ignore[call-overload]
                 .values(invited=invited, planned_at=at))


def close_round(session: Session, *, round_id: int, now: datetime) -> bool:
    """Close an open round whose window has ended (fenced on `open`); False when it was not."""
    stmt = (update(NeedsRound).where(col(NeedsRound.id) == round_id, col(NeedsRound.status) == "open",
                                     col(NeedsRound.closes_at) <= now)
            .values(status="closed", closed_at=now).returning(NeedsRound.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def set_round_status(session: Session, *, round_id: int, status: str, only_from: Sequence[str]) -> bool:
    stmt = (update(NeedsRound).where(col(NeedsRound.id) == round_id, col(NeedsRound.status).in_(list(only_from)))
            .values(status=status).returning(NeedsRound.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def set_report_message(session: Session, *, round_id: int, channel: str, ts: str) -> None:
    session.exec(update(NeedsRound).where(col(NeedsRound.id) == round_id)  # type: ignore[call-overload]
                 .values(report_channel=channel, report_ts=ts))


# -- audience -------------------------------------------------------------------------------------
def requesters(session: Session, *, team: str, start: datetime, end: datetime) -> list[str]:
    """Everyone who made a request to `team` in [start, end), by user id."""
    rows = session.exec(select(Request.requester_id).where(
        col(Request.team) == team, col(Request.created_at) >= start, col(Request.created_at) < end,
    ).distinct()).all()
    return sorted(str(r) for r in rows)


# -- invitations ----------------------------------------------------------------------------------
def add_invitations(session: Session, *, round_id: int,
                    people: Sequence[tuple[str, str, datetime]]) -> dict[str, int]:
    """Insert (user_id, source, due_at) invitations of a round; {user_id: id} of the new ones (a person
    already invited to the round keeps their invitation)."""
    created: dict[str, int] = {}
    for start in range(0, len(people), INSERT_CHUNK):
        rows = [{"round_id": round_id, "user_id": user, "source": source, "status": "scheduled", "due_at": due}
                for user, source, due in people[start:start + INSERT_CHUNK]]
        stmt = (dialect_insert(session)(NeedsInvitation).values(rows)
                .on_conflict_do_nothing(index_elements=["round_id", "user_id"])
                .returning(NeedsInvitation.id, NeedsInvitation.user_id))
        created.update({str(user): int(inv_id) for inv_id, user in session.exec(stmt).all()})  # type: ignore[call-overload]
    return created


def invitations_of(session: Session, *, round_id: int) -> list[NeedsInvitation]:
    return list(session.exec(select(NeedsInvitation).where(col(NeedsInvitation.round_id) == round_id)
                             .order_by(col(NeedsInvitation.id))).all())


def unsent(session: Session, *, round_id: int) -> list[tuple[int, datetime]]:
    """(id, due_at) of the round's invitations still waiting to go out (for re-enqueueing their jobs)."""
    rows = session.exec(select(NeedsInvitation.id, NeedsInvitation.due_at).where(
        col(NeedsInvitation.round_id) == round_id, col(NeedsInvitation.status) == "scheduled")).all()
    return [(int(i), due) for i, due in rows]


def get_invitation(session: Session, invitation_id: int, *, for_update: bool = False) -> NeedsInvitation | None:
    stmt = select(NeedsInvitation).where(col(NeedsInvitation.id) == invitation_id)
    return session.exec(_locked(session, stmt) if for_update else stmt).first()


def set_invitation_status(session: Session, *, invitation_id: int, status: str, reason: str | None = None,
                          only_from: Sequence[str] = ("scheduled",)) -> bool:
    values: dict[str, Any] = {"status": status}
    if reason is not None:
        values["reason"] = reason[:200]
    stmt = (update(NeedsInvitation)
            .where(col(NeedsInvitation.id) == invitation_id, col(NeedsInvitation.status).in_(list(only_from)))
            .values(**values).returning(NeedsInvitation.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def mark_invitation_sent(session: Session, *, invitation_id: int, channel: str, ts: str, sent_at: datetime) -> bool:
    """Record the delivered DM (fenced on `sending`)."""
    stmt = (update(NeedsInvitation)
            .where(col(NeedsInvitation.id) == invitation_id, col(NeedsInvitation.status) == "sending")
            .values(status="sent", channel=channel, ts=ts, sent_at=sent_at, reason=None)
            .returning(NeedsInvitation.id))
    return session.exec(stmt).scalar_one_or_none() is not None  # type: ignore[call-overload]


def mark_reminded(session: Session, *, invitation_id: int, at: datetime) -> None:
    session.exec(update(NeedsInvitation).where(col(NeedsInvitation.id) == invitation_id)  # type: ignore[call-overload]
                 .values(reminded_at=at))


def surveyed(session: Session, *, round_id: int, after_id: int = 0, limit: int = INSERT_CHUNK) -> list[tuple[int, str]]:
    """(invitation id, user id) of everyone the round's survey reached, in id order from `after_id`."""
    rows = session.exec(select(NeedsInvitation.id, NeedsInvitation.user_id).where(
        col(NeedsInvitation.round_id) == round_id, col(NeedsInvitation.sent_at).is_not(None),
        col(NeedsInvitation.id) > after_id).order_by(col(NeedsInvitation.id)).limit(limit)).all()
    return [(int(i), str(u)) for i, u in rows]


def invitation_counts(session: Session, *, round_ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """Per round: (invitations, of them reached by the DM, of those answered)."""
    inv = NeedsInvitation
    rows = session.exec(select(inv.round_id, func.count(), func.count(inv.sent_at),
                               func.count(NeedsAnswer.id))
                        .select_from(inv).outerjoin(NeedsAnswer, col(NeedsAnswer.invitation_id) == col(inv.id))
                        .where(col(inv.round_id).in_(list(round_ids))).group_by(inv.round_id)).all()
    out = {rid: (0, 0, 0) for rid in round_ids}
    out.update({int(r): (int(n), int(sent), int(answered)) for r, n, sent, answered in rows})
    return out


def enqueue_jobs(session: Session, jobs: Sequence[tuple[str, str, dict[str, Any], datetime]]) -> int:
    """Queue many (kind, key, payload, due_at) outbox jobs, a chunk per statement; a key that exists is
    left alone. Returns how many were new."""
    added = 0
    for start in range(0, len(jobs), INSERT_CHUNK):
        rows = [job_queries.job_row(kind, key, payload, due, None) for kind, key, payload, due in
                jobs[start:start + INSERT_CHUNK]]
        added += len(job_queries.enqueue_many(session, rows))
    return added


# -- answers --------------------------------------------------------------------------------------
def save_answer(session: Session, *, invitation_id: int, round_id: int, values: dict[str, Any], now: datetime) -> None:
    """Insert or update the answer of an invitation (the caller holds the invitation's lock)."""
    clean = {k: v for k, v in values.items() if k in (*SCORES, *TEXTS, "shareable")}
    stmt = dialect_insert(session)(NeedsAnswer).values(invitation_id=invitation_id, round_id=round_id, answered_at=now,
                                                 updated_at=now, shareable=clean.pop("shareable", True), **clean)
    changes = {k: getattr(stmt.excluded, k) for k in clean} | {"updated_at": stmt.excluded.updated_at}
    if "shareable" in values:
        changes["shareable"] = stmt.excluded.shareable
    session.exec(stmt.on_conflict_do_update(index_elements=["invitation_id"], set_=changes))  # type: ignore[call-overload]
    session.exec(update(NeedsInvitation)  # type: ignore[call-overload]
                 .where(col(NeedsInvitation.id) == invitation_id, col(NeedsInvitation.status) == "sent")
                 .values(status="answered"))


def answer_of(session: Session, invitation_id: int) -> NeedsAnswer | None:
    return session.exec(select(NeedsAnswer).where(col(NeedsAnswer.invitation_id) == invitation_id)).first()


@dataclass(frozen=True)
class AnswerRow:
    """One answer as reports see it: scores, and the free text only when its author allowed sharing it."""

    id: int
    round_id: int
    scores: dict[str, int | None]
    texts: tuple[str, ...]  # shareable, non-empty free-text answers


def answers(session: Session, *, round_ids: Sequence[int]) -> list[AnswerRow]:
    """The answers of rounds (raw: gate every figure built from them)."""
    a = NeedsAnswer
    rows = session.exec(select(a.id, a.round_id, *[getattr(a, s) for s in SCORES], a.obstacle, a.start_stop,
                               a.shareable).where(col(a.round_id).in_(list(round_ids))).order_by(col(a.id))).all()
    out = []
    for row in rows:
        texts = tuple(str(t).strip() for t in row[6:8] if row[8] and t and str(t).strip())
        out.append(AnswerRow(id=int(row[0]), round_id=int(row[1]),
                             scores={name: row[2 + i] for i, name in enumerate(SCORES)}, texts=texts))
    return out


# -- themes ---------------------------------------------------------------------------------------
ThemeRow = tuple[str, Sequence[str], int, Sequence[str]]  # label, terms, people, quotes


def save_themes(session: Session, *, round_id: int, themes: Sequence[ThemeRow]) -> bool:
    """Store a closed round's themes (label, terms, people, quotes) once; False when already stored."""
    exists = session.exec(select(func.count()).select_from(NeedsTheme)
                          .where(col(NeedsTheme.round_id) == round_id)).one()
    if exists:
        return False
    for rank, (label, terms, people, quotes) in enumerate(themes, start=1):
        session.add(NeedsTheme(round_id=round_id, rank=rank, label=label[:200], people=people,
                               terms=json.dumps(list(terms), ensure_ascii=False),
                               quotes=json.dumps(list(quotes), ensure_ascii=False)))
    session.flush()
    return True


def themes_of(session: Session, *, round_id: int) -> list[NeedsTheme]:
    return list(session.exec(select(NeedsTheme).where(col(NeedsTheme.round_id) == round_id)
                             .order_by(col(NeedsTheme.rank))).all())


def get_theme(session: Session, theme_id: int) -> NeedsTheme | None:
    return session.get(NeedsTheme, theme_id)


# -- actions --------------------------------------------------------------------------------------
def create_action(session: Session, action: NeedsAction) -> NeedsAction:
    session.add(action)
    session.flush()
    return action


def get_action(session: Session, action_id: int, *, for_update: bool = False) -> NeedsAction | None:
    stmt = select(NeedsAction).where(col(NeedsAction.id) == action_id)
    return session.exec(_locked(session, stmt) if for_update else stmt).first()


def actions_of(session: Session, *, team: str | None = None, round_ids: Sequence[int] | None = None,
               statuses: Sequence[str] | None = None) -> list[NeedsAction]:
    where = []
    if team is not None:
        where.append(col(NeedsAction.team) == team)
    if round_ids is not None:
        where.append(col(NeedsAction.round_id).in_(list(round_ids)))
    if statuses:
        where.append(col(NeedsAction.status).in_(list(statuses)))
    return list(session.exec(select(NeedsAction).where(*where)
                             .order_by(col(NeedsAction.created_at), col(NeedsAction.id))).all())


def set_action_card(session: Session, *, action_id: int, channel: str, ts: str) -> None:
    session.exec(update(NeedsAction).where(col(NeedsAction.id) == action_id)  # type: ignore[call-overload]
                 .values(card_channel=channel, card_ts=ts))


@dataclass(frozen=True)
class ActionItem:
    """An improvement action as a digest lists it."""

    id: int
    team: str
    title: str
    status: str
    round_key: str
    theme: str | None
    owner_id: str | None
    due_on: date | None


def digest_actions(session: Session, *, teams: Sequence[str], start: datetime, end: datetime) -> list[ActionItem]:
    """Actions recorded before `end` that were still open at `start` (open ones, and those done in the window)."""
    a = NeedsAction
    rows = session.exec(select(a.id, a.team, a.title, a.status, NeedsRound.key, NeedsTheme.label, a.owner_id,
                               a.due_on, a.done_at)
                        .join(NeedsRound, col(NeedsRound.id) == col(a.round_id))
                        .outerjoin(NeedsTheme, col(NeedsTheme.id) == col(a.theme_id))
                        .where(col(a.team).in_(list(teams)), col(a.created_at) < end,
                               col(a.done_at).is_(None) | (col(a.done_at) >= start))
                        .order_by(col(a.due_on), col(a.id))).all()
    def status(row: Any) -> str:  # as it was at `end` (an action done later was still being worked on)
        if row[8] is not None and row[8] < end:
            return "done"
        return "in_progress" if row[3] == "done" else str(row[3])

    return [ActionItem(id=int(r[0]), team=str(r[1]), title=str(r[2]), status=status(r), round_key=str(r[4]),
                       theme=r[5], owner_id=r[6], due_on=r[7]) for r in rows]


@dataclass(frozen=True)
class ActionCounts:
    done: int  # completed in the window
    open_at_end: int  # recorded before the window ended and not done by then


def action_counts(session: Session, *, teams: Sequence[str], start: datetime,
                  end: datetime) -> dict[str, ActionCounts]:
    a = NeedsAction
    rows = session.exec(select(a.team, a.created_at, a.done_at).where(col(a.team).in_(list(teams)),
                                                                      col(a.created_at) < end)).all()
    done: dict[str, int] = dict.fromkeys(teams, 0)
    open_: dict[str, int] = dict.fromkeys(teams, 0)
    for team, _created, done_at in rows:
        if done_at is not None and start <= done_at < end:
            done[team] += 1
        elif done_at is None or done_at >= end:
            open_[team] += 1
    return {t: ActionCounts(done=done[t], open_at_end=open_[t]) for t in teams}
