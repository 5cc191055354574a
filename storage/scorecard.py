"""Raw figures of a quarter for the scorecard (bot/services/scorecard.py gates and combines them).

Windows are [start, end). Nothing here is shown as it is: answers go through the anonymity gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from storage.models import NeedsRound, Request, Survey


def closed_rounds(session: Session, *, teams: Sequence[str], start: datetime, end: datetime) -> list[NeedsRound]:
    """Rounds that opened in the window and have closed (their answers can no longer change)."""
    return list(session.exec(select(NeedsRound).where(
        col(NeedsRound.team).in_(list(teams)), col(NeedsRound.opens_at) >= start, col(NeedsRound.opens_at) < end,
        col(NeedsRound.status) != "open").order_by(col(NeedsRound.opens_at), col(NeedsRound.id))).all())


@dataclass(frozen=True)
class PulseFigures:
    sent: int  # surveys that closed in the window
    scores: list[int]  # their overall scores, answered ones only


def pulse(session: Session, *, teams: Sequence[str], start: datetime, end: datetime) -> dict[str, PulseFigures]:
    """Pulse surveys that closed (`expires_at`) in the window: an answer belongs to the period in which
    its survey closed, when it can no longer change (the same rule as the weekly feedback figures)."""
    rows = session.exec(select(Survey.team, Survey.answered_at, Survey.score).where(
        col(Survey.team).in_(list(teams)), col(Survey.sent_at).is_not(None),
        col(Survey.expires_at) >= start, col(Survey.expires_at) < end)).all()
    sent: dict[str, int] = dict.fromkeys(teams, 0)
    scores: dict[str, list[int]] = {t: [] for t in teams}
    for team, answered_at, score in rows:
        sent[team] += 1
        if answered_at is not None and score is not None:
            scores[team].append(int(score))
    return {t: PulseFigures(sent=sent[t], scores=scores[t]) for t in teams}


def request_times(session: Session, *, team: str, start: datetime,
                  end: datetime) -> list[tuple[datetime, datetime | None, datetime | None]]:
    """(created_at, first_response_at, resolved_at) of the team's requests created in the window."""
    rows = session.exec(select(Request.created_at, Request.first_response_at, Request.resolved_at).where(
        col(Request.team) == team, col(Request.created_at) >= start, col(Request.created_at) < end)).all()
    return [(c, f, r) for c, f, r in rows]
