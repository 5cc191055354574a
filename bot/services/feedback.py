"""Feedback: emoji ratings and pulse surveys (issue 3). Hooks called by the request loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from storage.models import Request

if TYPE_CHECKING:
    from bot.runtime import Deps


def on_resolved(deps: Deps, session: Session, req: Request) -> list[int | None]:
    """Called in the resolving transaction; returns job ids to kick (e.g. a survey)."""
    return []


def on_reopened(deps: Deps, session: Session, req: Request) -> None:
    """Called in the reopening transaction (e.g. cancel a pending survey)."""
