"""Improvement actions ("you said, we did"): recorded against a closed round (and one of its themes)
by the team's responders or an admin, moved through planned -> in progress -> done, shown on a card in
the team's channel and in the weekly digest until done. When one is done, everyone the round's survey
reached gets one DM saying what changed and why — never who asked for it.

Jobs: `needs_action_card:{action}:…` posts or updates the card; `needs_action_announce:{action}` fans
out one `needs_done_dm:{action}:{invitation}` job per person surveyed (keyed: each person once, also
across restarts), each sent within the person's working hours.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.config import Team
from bot.i18n import N_, Message
from bot.render import needs_report_blocks
from bot.render.needs_report_blocks import ActionForm
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure
from bot.services.delivery import post_once, update
from bot.services.needs_invites import wait_for_working_hours
from bot.slack.client import is_permanent
from storage import jobs as job_queries
from storage import needs as queries
from storage import requests as request_queries
from storage.jobs import ClaimedJob
from storage.models import NeedsAction, NeedsRound
from storage.session import session_scope

CARD, ANNOUNCE, DONE_DM = "needs_action_card", "needs_action_announce", "needs_done_dm"
CARD_EVENT, DONE_EVENT = "askdesk_needs_action", "askdesk_needs_done"
GONE = N_("That action no longer exists.")


def not_allowed(team: Team) -> Message:
    return N_("Only {team}'s responders (members of its channel) and admins can record or change its improvement "
              "actions.", team=team.name)


@dataclass
class Outcome:
    ok: bool
    message: Message | None = None
    jobs: list[int | None] = field(default_factory=list)
    about: str | None = None  # the form field a refusal is about: "title", "theme", "owner" or "due"


def may_manage(deps: Deps, team: Team, user: str) -> bool:
    return deps.settings.is_admin(user) or deps.directory.is_responder(team, user)


def _card_job(session: Any, action_id: int, now: Any) -> int | None:
    return job_queries.enqueue(session, kind=CARD, key=f"needs_action_card:{action_id}:{uuid.uuid4().hex[:12]}",
                               payload={"action_id": action_id}, due_at=now + KICK_GRACE)


def _round_for(deps: Deps, *, user: str, round_id: int | None,
               team_slug: str | None) -> tuple[NeedsRound, Team] | Message:
    """The round an action is recorded against: `round_id`, else the latest closed round of the team
    (`team_slug`, else the first team the user answers for)."""
    with session_scope(deps.engine) as session:
        if round_id is not None:
            rnd = queries.get_round(session, round_id)
            team = deps.settings.team(rnd.team) if rnd else None
            if rnd is None or team is None:
                return N_("That survey round no longer exists.")
        else:
            if team_slug:
                team = deps.settings.team(team_slug)
                if team is None:
                    known = ", ".join(t.slug for t in deps.settings.teams)
                    return N_("I don't know the team `{team}`. Teams: {known}.", team=team_slug[:30], known=known)
            else:
                mine = deps.directory.responder_teams(user)
                if not mine:
                    return N_("Which team? Use `/askdesk action <team>`.")
                team = mine[0]
            closed = queries.rounds_of(session, team=team.slug, statuses=("closed", "reported"))
            if not closed:
                return N_("{team} has no closed needs-survey round yet, so there is nothing to act on.",
                          team=team.name)
            rnd = closed[-1]
    if rnd.status == "open":
        return N_("That round is still open; record actions once its report is out.")
    if not may_manage(deps, team, user):
        return not_allowed(team)
    return rnd, team


def form_for(deps: Deps, *, user: str, round_id: int | None = None,
             team_slug: str | None = None) -> View | Message:
    """The "Record an action" modal, or a sentence saying why not."""
    found = _round_for(deps, user=user, round_id=round_id, team_slug=team_slug)
    if isinstance(found, Message):
        return found
    rnd, team = found
    assert rnd.id is not None
    with session_scope(deps.engine) as session:
        themes = queries.themes_of(session, round_id=rnd.id)
    return needs_report_blocks.action_modal(rnd, team, themes, user=user,
                                            t=deps.directory.translator_for(user, now=deps.now()))


def _today(deps: Deps, user: str) -> date:
    """Today where `user` is (the date picker shows their calendar)."""
    return deps.now().astimezone(ZoneInfo(deps.directory.timezone_of(user, now=deps.now()))).date()


def _form_error(deps: Deps, user: str, form: ActionForm) -> Outcome | None:
    if not form.title:
        return Outcome(False, N_("Give the action a title."), about="title")
    if form.due_on is not None and form.due_on < _today(deps, user):
        return Outcome(False, N_("The due date {date} is in the past.", date=form.due_on.isoformat()), about="due")
    if form.owner_id and form.owner_id != user and not deps.directory.is_person(form.owner_id):
        return Outcome(False, N_("The owner must be a person in this workspace (not an app or a deactivated "
                                 "account)."), about="owner")
    return None


def record(deps: Deps, *, user: str, round_id: int, form: ActionForm, submission: str | None = None) -> Outcome:
    """Record an action from the form. `submission` (the modal's view id) makes a second delivery of the
    same submission (a double submit, a retry after a slow answer) record nothing more."""
    found = _round_for(deps, user=user, round_id=round_id, team_slug=None)
    if isinstance(found, Message):
        return Outcome(False, found)
    refused = _form_error(deps, user, form)
    if refused:
        return refused
    rnd, team = found
    now = deps.now()
    with session_scope(deps.engine) as session:
        theme = queries.get_theme(session, form.theme_id) if form.theme_id else None
        if form.theme_id and (theme is None or theme.round_id != rnd.id):
            return Outcome(False, N_("That theme is not part of this round."), about="theme")
        if submission and not request_queries.first_seen(session, f"needs_action:{submission}", now=now):
            return Outcome(True)  # recorded when it was first submitted
        action = queries.create_action(session, NeedsAction(
            team=team.slug, round_id=rnd.id or 0, theme_id=form.theme_id, title=form.title[:200],
            detail=form.detail, owner_id=form.owner_id or user, due_on=form.due_on, status="planned",
            created_by=user, created_at=now, updated_at=now))
        assert action.id is not None
        job = _card_job(session, action.id, now)
    return Outcome(True, None, [job])


TRANSITIONS = {"in_progress": ("planned",), "done": ("planned", "in_progress")}


def set_status(deps: Deps, *, user: str, action_id: int, status: str, detail: str | None = None) -> Outcome:
    """Move an action on (fenced: planned -> in_progress -> done); done queues the "we did" DMs."""
    if status not in TRANSITIONS:
        return Outcome(False, N_("That is not an action status."))
    now = deps.now()
    with session_scope(deps.engine) as session:
        action = queries.get_action(session, action_id, for_update=True)
        team = deps.settings.team(action.team) if action else None
        if action is None or team is None:
            return Outcome(False, GONE)
        if not may_manage(deps, team, user):
            return Outcome(False, not_allowed(team))
        if action.status not in TRANSITIONS[status]:
            already = {"done": N_("This action is already done."),
                       "in_progress": N_("This action is already in progress.")}
            return Outcome(False, already.get(action.status, N_("That is not an action status.")))
        action.status, action.updated_at = status, now
        if detail:
            action.detail = detail
        jobs = [_card_job(session, action_id, now)]
        if status == "done":
            action.done_at = now
            jobs.append(job_queries.enqueue(session, kind=ANNOUNCE, key=f"needs_action_announce:{action_id}",
                                            payload={"action_id": action_id}, due_at=now + KICK_GRACE))
        session.add(action)
    return Outcome(True, None, jobs)


def done_form_for(deps: Deps, *, user: str, action_id: int) -> View | Message:
    with session_scope(deps.engine) as session:
        action = queries.get_action(session, action_id)
    team = deps.settings.team(action.team) if action else None
    if action is None or team is None:
        return GONE
    if not may_manage(deps, team, user):
        return not_allowed(team)
    if action.status == "done":
        return N_("This action is already done.")
    return needs_report_blocks.done_modal(action, deps.directory.translator_for(user, now=deps.now()))


# -- jobs -----------------------------------------------------------------------------------------
def _context(deps: Deps, action_id: int) -> tuple[NeedsAction, NeedsRound, Team, str | None]:
    with session_scope(deps.engine) as session:
        action = queries.get_action(session, action_id)
        rnd = queries.get_round(session, action.round_id) if action else None
        theme = queries.get_theme(session, action.theme_id) if action and action.theme_id else None
    team = deps.settings.team(rnd.team) if rnd else None
    if action is None or rnd is None or team is None:
        raise PermanentFailure(f"needs action {action_id} is gone")
    return action, rnd, team, theme.label if theme else None


def post_card(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    action, rnd, team, theme = _context(deps, int(payload["action_id"]))
    msg = needs_report_blocks.action_card(action, rnd, team, theme, deps.directory.team_translator(team))
    if action.card_ts and action.card_channel:
        try:
            update(deps, channel=action.card_channel, ts=action.card_ts, text=msg.text, blocks=msg.as_dicts())
        except SlackApiError as exc:
            if not is_permanent(exc):
                raise
        return
    posted = post_once(deps, channel=team.digest_target, text=msg.text, blocks=msg.as_dicts(), event_type=CARD_EVENT,
                       ref=str(action.id), reconcile=job.attempts > 1, since=job.created_at, paced=True)
    with session_scope(deps.engine) as session:
        queries.set_action_card(session, action_id=action.id or 0, channel=posted.channel, ts=posted.ts)
        fresh = queries.get_action(session, action.id or 0)
        stale = fresh is not None and fresh.status != action.status  # changed while this post was on its way
        again = _card_job(session, action.id or 0, deps.now()) if stale else None
    if again:
        deps.outbox.kick([again])


def announce(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """One "we did" DM job per person the round's survey reached (idempotent by key)."""
    action, rnd, _team, _theme = _context(deps, int(payload["action_id"]))
    after, now = 0, deps.now()
    while True:
        with session_scope(deps.engine) as session:
            people = queries.surveyed(session, round_id=rnd.id or 0, after_id=after)
            queries.enqueue_jobs(session, [
                (DONE_DM, f"needs_done_dm:{action.id}:{inv_id}",
                 {"action_id": action.id, "invitation_id": inv_id, "user": user}, now) for inv_id, user in people])
        if len(people) < queries.INSERT_CHUNK:
            return
        after = people[-1][0]


def done_dm(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    user = str(payload["user"])
    wait_for_working_hours(deps, user, None)
    action, rnd, team, theme = _context(deps, int(payload["action_id"]))
    msg = needs_report_blocks.done_message(action, rnd, team, theme,
                                           deps.directory.translator_for(user, now=deps.now()))
    post_once(deps, channel=user, text=msg.text, blocks=msg.as_dicts(), event_type=DONE_EVENT,
              ref=f"{action.id}:{payload['invitation_id']}", reconcile=job.attempts > 1, since=job.created_at,
              paced=True)
