"""Needs-survey rounds: opened on the team's cadence (or by `askdesk needs start`), planned, closed after
`needs_window`, and reported to the team's channel and the leadership channel.

Jobs (all keyed: enqueueing twice is a no-op, so a restart or a second instance changes nothing):
  `needs_plan:{round}` works out who is invited — requesters of the round's audience window and members
      of the `needs_audience` channels, less the team's own responders and bots — reads their time zones
      (cached in `people`; in bulk through users.list when many are unknown), stores one invitation per
      person and one `needs_invite:{invitation}` job each, due at the person's next working moment;
  `needs_close:{round}` (queued with the round, due when its window ends) closes it, computes the themes
      once, from the now frozen answers, and queues the report posts;
  `needs_report:{round}:{channel}` posts the report (metadata ref = round and channel, so a retry finds
      an earlier copy instead of posting twice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlmodel import Session, col, select

from bot.config import Team
from bot.i18n import Translator
from bot.render import needs_blocks, needs_report_blocks
from bot.runtime.deps import Deps
from bot.runtime.outbox import KICK_GRACE, PermanentFailure, RetryLater
from bot.services import needs_invites, needs_report, scorecard
from bot.services.delivery import post_once
from bot.services.needs_periods import CalendarPeriod, parse_quarter, period_of, previous, quarter_of
from bot.services.surveys import send_time
from bot.slack.client import is_permanent, slack_error
from storage import jobs as job_queries
from storage import needs as queries
from storage import people
from storage.jobs import ClaimedJob
from storage.models import NeedsRound, Person
from storage.session import session_scope

log = logging.getLogger(__name__)
PLAN, CLOSE, REPORT, SCORECARD = "needs_plan", "needs_close", "needs_report", "needs_scorecard"
REPORT_EVENT, SCORECARD_EVENT = "askdesk_needs_report", "askdesk_scorecard"
SCORECARD_CATCH_UP = timedelta(days=7)  # a scorecard not posted within a week of the quarter's end is not posted
PERSON_TTL = timedelta(days=1)
# More unknown time zones than this are read with users.list (Tier 2: 20 calls a minute, 1,000 people a
# page, one call every USERS_LIST_SPACING seconds) instead of one users.info each (Tier 4: 100 a minute).
BULK_LOOKUP_ABOVE = 50
USERS_LIST_SPACING = 3.0


class StartError(Exception):
    """A round could not be started (unknown team…): the message says why."""


@dataclass(frozen=True)
class Started:
    round_id: int
    key: str
    created: bool
    job: int | None
    closes_at: datetime


# -- opening rounds -------------------------------------------------------------------------------
def _intro(session: Session, team: Team, prev: NeedsRound | None) -> str | None:
    """What "Last time you told us …; we did …" says, from the team's done actions of the previous round
    (stored as data; each invitation renders it in its reader's language)."""
    if prev is None or prev.id is None:
        return None
    done = queries.actions_of(session, round_ids=[prev.id], statuses=("done",))
    if not done:
        return None
    labels = {t.id: t.label for t in queries.themes_of(session, round_id=prev.id)}
    needs = list(dict.fromkeys(labels[a.theme_id] for a in done if a.theme_id in labels))
    return needs_blocks.intro_data(needs, [a.title for a in done])


def start_round(deps: Deps, team: Team, *, scheduled: CalendarPeriod | None = None) -> Started:
    """Open a round now: the scheduled one of `scheduled`'s period (once), or an ad-hoc one (`askdesk needs
    start`), keyed by the current period plus "-2", "-3"… when that key is taken. Also queues its planning.
    While the team has a round open, neither an ad-hoc nor a scheduled start opens another (`created` False,
    that round returned): nobody is asked the same questions twice at once. The cadence tries again every
    tick of its period's first `needs_window`, so a scheduled round still opens if the other closes by then."""
    now = deps.now()
    tz = deps.settings.workspace.timezone
    cadence = team.needs_survey if team.needs_survey != "off" else "quarterly"
    period = scheduled or period_of(cadence, now, tz)
    with session_scope(deps.engine) as session:
        key = period.key
        if scheduled is not None and (existing := queries.round_by_key(session, team=team.slug, key=key)):
            assert existing.id is not None
            return Started(existing.id, key, False, None, existing.closes_at)
        still_open = queries.rounds_of(session, team=team.slug, statuses=("open",))
        if still_open:  # one round at a time, scheduled or ad hoc: the cadence waits for it to close
            current = still_open[-1]
            assert current.id is not None
            return Started(current.id, current.key, False, None, current.closes_at)
        if scheduled is None:
            taken = queries.keys_like(session, team=team.slug, prefix=period.key)
            n = 1
            while key in taken:
                n += 1
                key = f"{period.key}-{n}"
        before = [r for r in queries.rounds_of(session, team=team.slug) if r.opens_at <= now]
        prev = before[-1] if before else None
        audience_start = prev.opens_at if prev else previous(period_of(cadence, now, tz), tz).start
        round_id = queries.create_round(
            session, team=team.slug, key=key, cadence=cadence if scheduled else "adhoc", opens_at=now,
            closes_at=now + team.needs_window, audience_start=min(audience_start, now), audience_end=now,
            intro=_intro(session, team, prev))
        if round_id is None:  # another instance opened it a moment ago
            existing = queries.round_by_key(session, team=team.slug, key=key)
            assert existing is not None and existing.id is not None
            return Started(existing.id, key, False, None, existing.closes_at)
        job = job_queries.enqueue(session, kind=PLAN, key=f"needs_plan:{round_id}", payload={"round_id": round_id},
                                  due_at=now + KICK_GRACE)
        job_queries.enqueue(session, kind=CLOSE, key=f"needs_close:{round_id}", payload={"round_id": round_id},
                            due_at=now + team.needs_window)
    log.info("needs round %s %s opened (closes %s)", team.slug, key, now + team.needs_window)
    return Started(round_id, key, True, job, now + team.needs_window)


def schedule(deps: Deps) -> None:
    """Periodic (the clock's leader): open the rounds the cadences call for and queue the quarterly
    scorecard post. (A round closes by its own `needs_close` job, queued when it opens.)"""
    now, tz = deps.now(), deps.settings.workspace.timezone
    for team in deps.settings.teams:
        if team.needs_survey == "off":
            continue
        period = period_of(team.needs_survey, now, tz)
        if now < period.start + team.needs_window:  # a late start still opens the round, within its window
            start_round(deps, team, scheduled=period)
    schedule_scorecard(deps)


# -- planning -------------------------------------------------------------------------------------
def _members(deps: Deps, channel: str) -> list[str]:
    """Every member of an audience channel (a permanent error skips the channel, logged)."""
    members: list[str] = []
    cursor = None
    try:
        while True:
            resp = deps.client.conversations_members(channel=channel, limit=1000, cursor=cursor)
            members.extend(resp.get("members") or [])
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return members
    except SlackApiError as exc:
        if not is_permanent(exc):
            raise
        log.warning("needs audience channel %s skipped: %s", channel, slack_error(exc))
        return members


def _known_zones(deps: Deps, users: Iterable[str], now: datetime) -> dict[str, str]:
    wanted = list(users)
    found: dict[str, str] = {}
    with session_scope(deps.engine) as session:
        for start in range(0, len(wanted), 1000):
            rows = session.exec(select(Person.user_id, Person.tz, Person.refreshed_at).where(
                col(Person.user_id).in_(wanted[start:start + 1000]))).all()
            found.update({u: tz for u, tz, at in rows if tz and at and now - at < PERSON_TTL})
    return found


def _save_zones(deps: Deps, zones: dict[str, str], locales: dict[str, str], now: datetime) -> None:
    """Cache what Slack said: time zone and locale ("" = none given), so each invitation's language needs no
    users.info call of its own."""
    with session_scope(deps.engine) as session:
        people.save(session, [{"user_id": u, "tz": tz, "locale": locales.get(u, ""), "refreshed_at": now}
                              for u, tz in zones.items()])


def time_zones(deps: Deps, users: list[str]) -> tuple[dict[str, str], set[str]]:
    """Each person's time zone (cached, else from Slack), and who is deactivated or a bot.

    Few unknown people: users.info each (Tier 4); many: users.list pages of 1000 (Tier 2, one call every
    3 s), so a round of 20,000 people needs about 20 calls (a minute) instead of 20,000."""
    now = deps.now()
    zones = _known_zones(deps, users, now)
    unknown = [u for u in users if u not in zones]
    gone: set[str] = set()
    fetched: dict[str, str] = {}
    locales: dict[str, str] = {}
    if len(unknown) > BULK_LOOKUP_ABOVE:
        wanted, cursor, last = set(unknown), None, -USERS_LIST_SPACING
        while True:
            time.sleep(max(0.0, last + USERS_LIST_SPACING - time.monotonic()))  # never past Tier 2's limit
            last = time.monotonic()
            resp = deps.client.users_list(limit=1000, cursor=cursor, include_locale=True)
            for user in resp.get("members") or []:
                if user.get("id") in wanted:
                    if user.get("deleted") or user.get("is_bot"):
                        gone.add(user["id"])
                    fetched[user["id"]] = user.get("tz") or deps.settings.workspace.timezone
                    locales[user["id"]] = str(user.get("locale") or "")[:16]
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
    else:
        for user_id in unknown:
            try:
                user = deps.client.users_info(user=user_id, include_locale=True).get("user") or {}
            except SlackApiError as exc:
                if not is_permanent(exc):
                    raise
                user = {"deleted": True}
            if user.get("deleted") or user.get("is_bot"):
                gone.add(user_id)
            fetched[user_id] = user.get("tz") or deps.settings.workspace.timezone
            locales[user_id] = str(user.get("locale") or "")[:16]
    _save_zones(deps, fetched, locales, now)
    zones.update(fetched)
    return zones, gone


def _bot_user(deps: Deps) -> str | None:
    try:
        return str(deps.client.auth_test().get("user_id") or "") or None
    except SlackApiError as exc:
        log.info("auth.test failed: %s", slack_error(exc))
        return None


def plan(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Invite the round's internal customers (idempotent: a rerun adds only who is missing)."""
    round_id = int(payload["round_id"])
    with session_scope(deps.engine) as session:
        rnd = queries.get_round(session, round_id)
        if rnd is None:
            raise PermanentFailure(f"needs round {round_id} is gone")
        requesters = queries.requesters(session, team=rnd.team, start=rnd.audience_start, end=rnd.audience_end)
    team = deps.settings.team(rnd.team)
    if team is None:
        raise PermanentFailure(f"team {rnd.team} is no longer configured")
    if rnd.status != "open":
        return
    sources = dict.fromkeys(requesters, "requester")
    for channel in team.needs_audience:
        for user in _members(deps, channel):
            sources.setdefault(user, "audience")
    excluded = set(deps.directory.members(team.channel)) | {_bot_user(deps) or ""}
    people = sorted(u for u in sources if u not in excluded and u[:1] in "UW")
    zones, gone = time_zones(deps, people)
    start = max(rnd.opens_at, deps.now())
    rows = [(u, sources[u], send_time(deps, start, zones.get(u))) for u in people if u not in gone]
    with session_scope(deps.engine) as session:
        created = queries.add_invitations(session, round_id=round_id, people=rows)
        due = {u: d for u, _s, d in rows}
        queries.enqueue_jobs(session, [
            (needs_invites.INVITE, needs_invites.invite_key(inv_id),
             {"invitation_id": inv_id, "user": user, "tz": zones.get(user)}, due[user])
            for user, inv_id in created.items()])
        for inv_id, due_at in queries.unsent(session, round_id=round_id):  # a rerun after a crash: all jobs exist
            job_queries.enqueue(session, kind=needs_invites.INVITE, key=needs_invites.invite_key(inv_id),
                                payload={"invitation_id": inv_id}, due_at=due_at)
        queries.mark_planned(session, round_id=round_id, invited=len(rows), at=deps.now())
    log.info("needs round %s %s: %d invitations (%d skipped: deactivated or bots)", rnd.team, rnd.key,
             len(rows), len(gone))


# -- closing and reporting ------------------------------------------------------------------------
def report_translator(deps: Deps, team: Team, channel: str) -> Translator:
    """The language of a report post: the team's channel language; leadership's is the workspace's."""
    return deps.directory.team_translator(team if channel == team.digest_target else None)


def report_targets(deps: Deps, team: Team) -> list[str]:
    """Where a round's report goes: the team's channel, and the leadership channel when set."""
    targets = [team.digest_target]
    leadership = deps.settings.workspace.leadership_channel
    if leadership and leadership not in targets:
        targets.append(leadership)
    return targets


def close(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """Close the round when its window has ended (no answer is taken after that), compute and store its
    themes (once, from the now frozen answers), then queue its report posts."""
    round_id = int(payload["round_id"])
    threshold = deps.settings.surveys.anonymity_threshold
    now = deps.now()
    with session_scope(deps.engine) as session:
        rnd = queries.get_round(session, round_id, for_update=True)
        if rnd is None:
            raise PermanentFailure(f"needs round {round_id} is gone")
        if rnd.status == "open" and rnd.closes_at > now:
            raise RetryLater("the round is still open", after=(rnd.closes_at - now).total_seconds(), failure=False)
        queries.close_round(session, round_id=round_id, now=now)
        team = deps.settings.team(rnd.team)
        if team is None:
            raise PermanentFailure(f"team {rnd.team} is no longer configured")
        if not queries.themes_of(session, round_id=round_id):
            rows = queries.answers(session, round_ids=[round_id])
            queries.save_themes(session, round_id=round_id,
                                themes=needs_report.compute_themes(rows, team, threshold))
        queries.set_round_status(session, round_id=round_id, status="reported", only_from=("closed",))
        for channel in report_targets(deps, team):
            job_queries.enqueue(session, kind=REPORT, key=f"needs_report:{round_id}:{channel}",
                                payload={"round_id": round_id, "channel": channel}, due_at=deps.now())


def post_report(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    round_id, channel = int(payload["round_id"]), str(payload["channel"])
    with session_scope(deps.engine) as session:
        rnd = queries.get_round(session, round_id)
        if rnd is None:
            raise PermanentFailure(f"needs round {round_id} is gone")
        report = needs_report.build(session, deps.settings, rnd)
    team = deps.settings.team(rnd.team)
    assert team is not None
    msg = needs_report_blocks.report_message(report, with_action_button=True,
                                             t=report_translator(deps, team, channel))
    posted = post_once(deps, channel=channel, text=msg.text, blocks=msg.as_dicts(), event_type=REPORT_EVENT,
                       ref=f"{round_id}:{channel}", reconcile=job.attempts > 1, since=job.created_at, paced=True)
    if channel == team.digest_target:
        with session_scope(deps.engine) as session:
            queries.set_report_message(session, round_id=round_id, channel=posted.channel, ts=posted.ts)


# -- the quarterly scorecard ----------------------------------------------------------------------
def schedule_scorecard(deps: Deps) -> None:
    """Queue the scorecard of the quarter that just ended (once: the job's key is the quarter), when
    there is a leadership channel and some team runs needs surveys."""
    settings = deps.settings
    if not settings.workspace.leadership_channel or all(t.needs_survey == "off" for t in settings.teams):
        return
    now, tz = deps.now(), settings.workspace.timezone
    ended = previous(quarter_of(now, tz), tz)
    if now - ended.end > SCORECARD_CATCH_UP:
        return
    with session_scope(deps.engine) as session:
        job_queries.enqueue(session, kind=SCORECARD, key=f"needs_scorecard:{ended.key}",
                            payload={"quarter": ended.key}, due_at=now)


def post_scorecard(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    tz = deps.settings.workspace.timezone
    quarter = parse_quarter(str(payload["quarter"]), tz)
    with session_scope(deps.engine) as session:
        card = scorecard.compute(session, deps.settings, quarter, deps.now())
    msg = needs_report_blocks.scorecard_message(card, deps.directory.team_translator(None))
    post_once(deps, channel=deps.settings.workspace.leadership_channel, text=msg.text, blocks=msg.as_dicts(),
              event_type=SCORECARD_EVENT, ref=quarter.key, reconcile=job.attempts > 1, since=job.created_at,
              paced=True)
