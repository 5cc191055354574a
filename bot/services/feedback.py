"""Feedback (issue 3): hooks called by the request loop, and survey answers.

- `on_resolved` / `on_reopened` run inside the resolve / reopen transactions (no Slack calls).
- Answers are re-checked server-side (payloads can be forged): only the survey's recipient may answer,
  only while it is open; anything else is refused and changes nothing.
- Reports never read answers from here: bot/services/satisfaction.py computes every satisfaction
  figure, for closed feedback weeks only (docs/privacy.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.models.views import View
from sqlmodel import Session

from bot.i18n import N_, Message
from bot.render import feedback_blocks
from bot.render.blocks import slack_date
from bot.runtime.outbox import KICK_GRACE
from bot.services import surveys
from storage import feedback as queries
from storage import requests as request_queries
from storage.models import Request, Survey
from storage.session import session_scope

if TYPE_CHECKING:
    from bot.runtime.deps import Deps

log = logging.getLogger(__name__)


def on_resolved(deps: Deps, session: Session, req: Request) -> list[int | None]:
    """Called in the resolving transaction; returns job ids to kick (the survey's planning job)."""
    if not deps.settings.surveys.enabled:
        return []
    return surveys.schedule(deps, session, req)


def on_reopened(deps: Deps, session: Session, req: Request) -> None:
    """Called in the reopening transaction: a survey that has not gone out yet is cancelled."""
    surveys.cancel(session, req)


# -- answers --------------------------------------------------------------------------------------
@dataclass
class Answer:
    ok: bool
    message: Message | None = None  # for the person who acted, in their language
    jobs: list[int | None] = field(default_factory=list)


def _refusal(survey: Survey | None, user: str, now: datetime) -> Message | None:
    """Why `user` may not answer `survey` now (None: they may)."""
    if survey is None:
        return N_("That survey no longer exists.")
    if survey.user_id != user:
        return N_("This survey was sent to someone else, so your click changed nothing.")
    if feedback_blocks.is_closed(survey, now):
        if survey.expires_at:
            return N_("This survey closed on {date}, so it can't be changed any more — thank you all the same!",
                      date=slack_date(survey.expires_at))
        return N_("This survey closed, so it can't be changed any more — thank you all the same!")
    if survey.status not in queries.ANSWERABLE:
        return N_("This survey is not open for answers.")
    return None


def answer(deps: Deps, *, survey_id: int, user: str, values: dict[str, Any]) -> Answer:
    """Store (part of) an answer — a score click or the modal — and queue the DM's update."""
    score = values.get("score")
    if score is not None and score not in feedback_blocks.SCORE_EMOJI:
        return Answer(False, N_("That is not a score from 1 to 5."))
    now = deps.now()
    with session_scope(deps.engine) as session:
        survey = queries.get_survey(session, survey_id, for_update=True)
        refusal = _refusal(survey, user, now)
        if refusal:
            if survey is not None and survey.user_id != user:  # a forged or passed-on click
                log.warning("survey %s: answer by %s refused (sent to someone else)", survey_id, user)
            return Answer(False, refusal)
        queries.record_answer(session, survey_id=survey_id, values=values, now=now)
        job = surveys.render_job(session, survey_id, due_at=now + KICK_GRACE)
    return Answer(True, None, [job])


def modal_for(deps: Deps, *, survey_id: int, user: str) -> View | Message:
    """The "Tell us more" modal for the survey's recipient (in their language), or a refusal for anyone else."""
    with session_scope(deps.engine) as session:
        survey = queries.get_survey(session, survey_id)
        refusal = _refusal(survey, user, deps.now())
        if refusal or survey is None:
            return refusal or N_("That survey no longer exists.")
        req = request_queries.get(session, survey.request_id)
    team = deps.settings.team(survey.team)
    if req is None or team is None:
        return N_("That request no longer exists.")
    t = deps.directory.translator_for(user, now=deps.now())
    return feedback_blocks.survey_modal(survey, req, team, t=t, threshold=surveys.threshold(deps))
