"""Shared helpers of the feedback tests (ratings, surveys, restart safety)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bot.render.ids import Action
from bot.runtime.scheduler import Clock
from storage import feedback as queries
from storage import jobs as job_queries
from storage.models import Job, Reaction, Request, Survey
from storage.session import session_scope
from tests.conftest import ALICE, Harness
from tests.test_request_loop import ask, button, load

# Tuesday 2026-01-13 18:00 UTC = 10:00 in Los Angeles (Dave), 19:00 in Berlin: working hours for both.
TUESDAY_WORKING = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)

__all__ = ["ask", "button", "load"]


def with_clock(h: Harness) -> Iterator[Harness]:
    """Body of a fixture: the clock on a working Tuesday and one persistent (not started) scheduler
    Clock, so that `tick()` keeps holding the PostgreSQL leader lock between ticks."""
    h.clock.set(TUESDAY_WORKING)
    h.scheduler = Clock(h.deps)
    yield h
    h.scheduler.stop(wait=False)


def tick(h: Harness) -> None:
    """One deterministic scheduler tick, periodic housekeeping included."""
    assert h.scheduler is not None
    h.scheduler._last_run.clear()
    h.tick()


def surveys_of(h: Harness, request_id: int) -> list[Survey]:
    with session_scope(h.deps.engine) as s:
        return queries.surveys_of(s, request_id)


def survey(h: Harness, request_id: int) -> Survey:
    found = surveys_of(h, request_id)
    assert found, f"no survey for request {request_id}"
    return found[-1]


def job(h: Harness, key: str) -> Job | None:
    with session_scope(h.deps.engine) as s:
        return job_queries.get_by_key(s, key=key)


def reactions(h: Harness) -> list[Reaction]:
    """The reactions that are there now (removed ones are kept with `removed_at`)."""
    with session_scope(h.deps.engine) as s:
        return list(s.exec(select(Reaction).where(Reaction.removed_at == None)  # noqa: E711
                           .order_by(Reaction.id)).all())


def resolve(h: Harness, req: Request, actor: str = ALICE) -> Survey:
    """Resolve from the triage message and wait until the survey's send job is planned."""
    resolutions = load(h, req.id).resolution_count
    button(h, load(h, req.id), Action.RESOLVE, actor)

    def planned() -> Survey | None:
        found = [s for s in surveys_of(h, req.id) if s.resolution_no == resolutions + 1]
        if not found or job(h, f"survey:{found[0].id}") is None:
            return None
        # read again: the planning transaction that created the job also moved the survey's due time
        return next(s for s in surveys_of(h, req.id) if s.id == found[0].id)

    return h.wait(planned)


def survey_dms(h: Harness, user: str) -> list[dict[str, Any]]:
    return [m for m in h.sim.messages(user)
            if (m.get("metadata") or {}).get("event_type") == "askdesk_survey"]


def texts(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or [], ensure_ascii=False) + (message.get("text") or "")


def deliver(h: Harness, request_id: int, **advance: float) -> Survey:
    """Advance the clock (default: past the 30-minute delay), tick, and return the sent survey."""
    h.clock.advance(**(advance or {"minutes": 31}))
    tick(h)
    return h.wait(lambda: (s := survey(h, request_id)).status == "sent" and s)


def refusals(h: Harness, text: str) -> list[Any]:
    return [p for p in h.sim.response_posts if text in json.dumps(p.body, ensure_ascii=False)]
