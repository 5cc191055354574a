"""Raw figures of a quarter for the scorecard (bot/services/scorecard.py gates and combines them).

Windows are [start, end). Nothing here is shown as it is: answers go through the anonymity gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from storage.models import NeedsRound


def closed_rounds(session: Session, *, teams: Sequence[str], start: datetime, end: datetime) -> list[NeedsRound]:
    """Rounds that opened in the window and have closed (their answers can no longer change)."""
    return list(session.exec(select(NeedsRound).where(
        col(NeedsRound.team).in_(list(teams)), col(NeedsRound.opens_at) >= start, col(NeedsRound.opens_at) < end,
        col(NeedsRound.status) != "open").order_by(col(NeedsRound.opens_at), col(NeedsRound.id))).all())
