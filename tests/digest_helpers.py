"""Seeding helpers for the digest tests: rows written directly with SQLModel (no Slack involved)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.config import Settings, parse_config
from storage.models import Reaction, Request, RequestEvent, Survey
from storage.session import session_scope
from tests.conftest import TEST_CONFIG

_ts = itertools.count(1)
CHANNELS = {"finance": "C0FINANCE", "it": "C0IT", "hr": "C0HR"}


def settings_for(db_url: str, config: dict[str, Any] | None = None, **workspace: Any) -> Settings:
    cfg = dict(config or TEST_CONFIG)
    cfg["workspace"] = {**cfg["workspace"], **workspace}
    return Settings(database_url=db_url, **parse_config("test.toml", cfg))


class Seeder:
    """Adds requests with their history, surveys and ratings in one transaction per call."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def request(self, *, created: datetime, team: str = "finance", department: str = "Sales",
                category: str | None = None, text: str = "Question about my expense report",
                first_response: timedelta | None = None, resolved: timedelta | None = None,
                status: str | None = None, origin_team: str | None = None, requester: str = "U0DAVE",
                urgency: str = "normal", paused: timedelta = timedelta()) -> Request:
        fr_at = created + first_response if first_response is not None else None
        res_at = created + resolved if resolved is not None else None
        state = status or ("resolved" if res_at else "claimed" if fr_at else "open")
        with session_scope(self.engine) as s:
            req = Request(team=team, origin_team=origin_team or team, requester_id=requester,
                          department=department, summary=text.splitlines()[0][:300], text=text,
                          category=category, status=state, assignee_id="U0ALICE" if fr_at else None,
                          triage_channel=CHANNELS.get(team, "C0X"), triage_ts=f"1700000000.{next(_ts):06d}",
                          post_state="posted", created_at=created, updated_at=created,
                          first_response_at=fr_at, resolved_at=res_at if state == "resolved" else None,
                          urgency=urgency, sla_responded_at=fr_at, sla_paused_seconds=int(paused.total_seconds()))
            s.add(req)
            s.flush()
            self._event(s, req, "created", created)
            if fr_at:
                self._event(s, req, "first_response", fr_at)
            if res_at and state == "resolved":
                self._event(s, req, "resolved", res_at)
        return req

    def _event(self, s: Session, req: Request, kind: str, at: datetime, team: str | None = None,
               detail: dict[str, Any] | None = None) -> None:
        assert req.id is not None
        s.add(RequestEvent(request_id=req.id, kind=kind, team=team or req.team, at=at, actor_id="U0ALICE",
                           detail=json.dumps(detail) if detail else None))

    def event(self, req: Request, kind: str, at: datetime, *, team: str | None = None,
              detail: dict[str, Any] | None = None) -> None:
        with session_scope(self.engine) as s:
            self._event(s, req, kind, at, team, detail)

    def survey(self, req: Request, *, answered: datetime | None, score: int | None = None,
               sent: datetime | None = None, dims: tuple[int | None, ...] = (None, None, None, None),
               comment: str | None = None, anonymous: bool = True, department: str | None = None,
               resolution_no: int | None = None, closes: datetime | None = None) -> None:
        """A sent survey, answered or not. It counts in the feedback week in which it `closes`
        (default: when it was answered, else sent)."""
        sent = sent or (answered - timedelta(minutes=5) if answered else None)
        closes = closes or answered or sent
        with session_scope(self.engine) as s:
            s.add(Survey(request_id=req.id, resolution_no=resolution_no or next(_ts),
                         user_id=req.requester_id, team=req.team, department=department or req.department,
                         status="answered" if answered else "sent", due_at=sent or req.created_at,
                         created_at=req.created_at, sent_at=sent, answered_at=answered, expires_at=closes,
                         score=score if answered else None, responsiveness=dims[0], clarity=dims[1],
                         transparency=dims[2], support=dims[3], comment=comment, comment_anonymous=anonymous))

    def rating(self, req: Request, *, at: datetime, score: int, requester: bool = True,
               user: str | None = None) -> None:
        with session_scope(self.engine) as s:
            s.add(Reaction(request_id=req.id, team=req.team, user_id=user or (req.requester_id if requester
                                                                               else f"UPEER{next(_ts)}"),
                           emoji=f"e{score}-{next(_ts)}", score=score, is_requester=requester, created_at=at))
