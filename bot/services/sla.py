"""SLA reminders and escalations: planned from stored state into the job outbox, sent exactly once.

Planning. Any change that moves a request's SLAs (creation, claim, first response, resolve, reopen,
transfer, a question to the requester and its answer) sets `requests.sla_plan` to NULL in the same
transaction. The leader's clock runs `plan_pending` every tick: it reads those requests (an index that
holds only them), computes their timers with `sla_plan.timers` and the team's policy, and upserts the
timer jobs (`sla_remind` / `sla_escalate`, one unique key per request, cycle, SLA and stage). Each
batch is one transaction and the work per tick is time-boxed. A changed config (SLAs, clock, hours,
holidays, reminder share) changes the policy's fingerprint: the next tick makes it the one in force
(`sla_policies`) and marks the team's open requests planned with another one for re-planning, a range
of ids per statement, time-boxed, with the cursor stored (ticks and restarts go on from it). The
config loaded last wins: an instance with an older one neither plans nor sends. No APScheduler job
per request.

Sending. A timer job re-reads the request when it runs and sends only if its SLA is still unmet in the
same cycle and actually due now by the current policy (and this instance's policy is not older than
the one in force); otherwise it is cancelled or moved. On a
business clock a timer due outside working hours waits for the next working minute. Posts are paced
per channel (a far slot moves the job to it instead of holding a worker) and carry message metadata,
so a retry after a crash finds the earlier post; the event that counts the notice and the job's end
commit together, fenced on the lease.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.config import Settings, Team
from bot.render import sla_blocks
from bot.render.blocks import message_link
from bot.render.sla_text import SlaView
from bot.runtime.deps import Deps
from bot.services import sla_plan
from bot.services.delivery import post_once
from bot.services.sla_clock import CALENDAR_CLOCK, WorkCalendar
from bot.services.sla_plan import ESCALATE, REMIND, Deadline, SlaPolicy, Targets
from bot.slack.client import is_permanent, slack_error
from storage import jobs as job_queries
from storage import requests as request_queries
from storage import sla as queries
from storage.jobs import ClaimedJob
from storage.models import Request
from storage.session import session_scope

log = logging.getLogger(__name__)
KINDS = {REMIND: "sla_remind", ESCALATE: "sla_escalate"}
NOTICE = {REMIND: "sla_reminder", ESCALATE: "sla_breached"}  # the history event that counts a timer as sent
EVENT_TYPE = "askdesk_sla"
NO_POLICY = "-"  # sla_plan of a request with nothing to plan (resolved, or its team is gone)
PLAN_BATCH = 32  # requests per planning transaction at most (~5-30 ms)
MIN_BATCH = 8  # a tick plans at least this many (as long as some are waiting)
PLAN_BUDGET = 0.02  # seconds of planning per tick; the rest waits for the next tick
PLAN_COST = 0.001  # seconds per request planned, until batches have been measured
MARK_SPAN = 1000  # request ids per statement marking open requests for re-planning (a config change)
STALE_RETRY = timedelta(minutes=1)
NOT_POSTED_RETRY = timedelta(minutes=1)
PACE_INLINE = 1.0  # a channel slot within this many seconds is waited for; a later one moves the job


# -- policies -------------------------------------------------------------------------------------
_POLICIES: dict[int, tuple[Team, str, SlaPolicy]] = {}


def policy_for(settings: Settings, team: Team) -> SlaPolicy:
    """The team's SLA policy (cached per team object: config is read once)."""
    cached = _POLICIES.get(id(team))
    tz = team.timezone or settings.workspace.timezone
    if cached is not None and cached[0] is team and cached[1] == tz:
        return cached[2]
    calendar = CALENDAR_CLOCK
    if team.sla_clock == "business":
        calendar = WorkCalendar(tz=ZoneInfo(tz), hours=team.hours, days=frozenset(team.days),
                                holidays=frozenset(team.holidays), business=True)
    default = Targets(team.first_response_sla, team.resolution_sla)
    by_urgency = {level: Targets(u.first_response_sla or default.first_response,
                                 u.resolution_sla or default.resolution) for level, u in team.urgency.levels().items()}
    policy = SlaPolicy(calendar=calendar, default=default, by_urgency=by_urgency, remind_at=team.remind_at)
    _POLICIES[id(team)] = (team, tz, policy)
    return policy


def view(settings: Settings, req: Request, now: datetime) -> SlaView | None:
    """What messages show of the request's SLAs right now (None when its team is gone)."""
    team = settings.team(req.team)
    if team is None or req.status == "resolved":
        return None
    if req.waiting_since is not None:
        return SlaView(now=now, waiting_since=req.waiting_since)
    dues = tuple((d.sla, d.due_at) for d in sla_plan.deadlines(req, policy_for(settings, team)))
    return SlaView(now=now, deadlines=dues)


def replan(req: Request) -> None:
    """Ask the planner to (re)plan this request's timers (call inside the changing transaction)."""
    req.sla_plan = None


def new_cycle(req: Request, now: datetime, *, responded: bool) -> None:
    """A transfer or reopen: the SLAs start again now (the pause and any response belong to the old cycle)."""
    req.sla_cycle += 1
    req.sla_start_at, req.sla_paused_seconds, req.waiting_since = now, 0, None
    req.sla_responded_at = now if responded else None
    replan(req)


def responded(req: Request, now: datetime) -> bool:
    """Record a first response in the current cycle; True if this was it."""
    if req.sla_responded_at is not None:
        return False
    req.sla_responded_at = now
    replan(req)
    return True


# -- planning (the leader's clock) ---------------------------------------------------------------------
@dataclass
class PlanResult:
    requests: int = 0
    created: int = 0
    moved: int = 0
    cancelled: int = 0
    marked: int = 0  # open requests marked for re-planning after a config change
    marked_ranges: int = 0  # marking statements run (ranges of `span` request ids)
    stale: bool = False  # this instance's SLA config is older than the one in force: it did nothing


def plan_pending(deps: Deps, *, budget: float = PLAN_BUDGET, batch: int = PLAN_BATCH,
                 span: int = MARK_SPAN, until: float | None = None) -> PlanResult:
    """Every tick: follow the SLA config (`check_policies`, at most half the time), then plan the
    timers of requests marked for it, batch by batch, until `budget` seconds have passed (or the
    monotonic deadline `until`, the tick's own, comes first); the next tick goes on.

    Each batch is sized to fit half of the time left at the cost per request learnt from earlier
    batches (`_COST`), so one slower batch does not take the tick past its budget; at most `batch`
    requests, and at least one batch of `MIN_BATCH` a tick, so planning always moves on."""
    started = time.monotonic()
    until = started + budget if until is None else min(until, started + budget)
    total = PlanResult()
    check_policies(deps, until=started + max(0.0, until - started) / 2, span=span, total=total)
    if total.stale:
        return total
    cost = _COST.setdefault(deps.instance_id, PLAN_COST)
    size = min(batch, max(MIN_BATCH, int((until - time.monotonic()) / 2 / cost)))
    while size:
        begun = time.monotonic()
        with session_scope(deps.engine) as session:
            rows = queries.unplanned(session, limit=size)
            if rows:
                _plan_rows(deps.settings, session, rows, deps.now(), total)
        total.requests += len(rows)
        now = time.monotonic()
        if rows:  # learn fast when batches get slower, forget slowly when they get faster again
            per_request = (now - begun) / len(rows)
            cost = _COST[deps.instance_id] = max(per_request, 0.8 * cost + 0.2 * per_request)
        if len(rows) < size:
            return total
        fits = int((until - now) / 2 / cost)
        size = min(batch, fits) if fits >= min(batch, MIN_BATCH) else 0
    return total


def _plan_rows(settings: Settings, session: Session, rows: Sequence[Any], now: datetime, total: PlanResult) -> None:
    wanted: dict[str, sla_plan.Timer] = {}
    keys: list[str] = []
    planned: list[tuple[int, str, datetime | None]] = []
    for row in rows:
        team = settings.team(row.team)
        # this cycle's four timers, and the previous cycle's (a transfer or reopen leaves them behind)
        for cycle in {row.sla_cycle, max(0, row.sla_cycle - 1)}:
            keys += [sla_plan.timer_key(row.id, cycle, sla, stage) for sla in sla_plan.SLAS
                     for stage in sla_plan.STAGES]
        if team is None:
            planned.append((row.id, NO_POLICY, None))
            continue
        policy = policy_for(settings, team)
        timers = sla_plan.timers(row, policy)
        wanted.update((t.key, t) for t in timers)
        is_open = sla_plan.is_open(row)
        planned.append((row.id, policy.fingerprint if is_open else NO_POLICY,
                        min((t.due_at for t in timers if t.stage == ESCALATE), default=None)))
    existing = queries.timer_jobs(session, keys)
    new, moved, cancelled = [], [], []
    for key, timer in wanted.items():
        job = existing.get(key)
        if job is None:
            new.append((KINDS[timer.stage], key, {"request_id": timer.request_id, "cycle": timer.cycle,
                                                  "sla": timer.sla}, timer.due_at))
        elif job.status == "cancelled" or (job.status == "pending" and job.due_at != timer.due_at):
            moved.append((job.id, timer.due_at))
    cancelled = [job.id for key, job in existing.items() if key not in wanted and job.status == "pending"]
    queries.save_plan(session, now=now, new=new, moved=moved, cancelled=cancelled, planned=planned)
    total.created += len(new)
    total.moved += len(moved)
    total.cancelled += len(cancelled)


def is_stale(stored: queries.StoredPolicy | None, plan: str, loaded_at: datetime) -> bool:
    """Whether an instance whose config (loaded at `loaded_at`) gives the team `plan` is behind the
    policy in force: another instance, with a config loaded later, noticed a different one."""
    return stored is not None and stored.plan != plan and stored.noticed_at > loaded_at


def check_policies(deps: Deps, *, until: float = 0.0, span: int = MARK_SPAN,
                   total: PlanResult | None = None) -> PlanResult:
    """Compare each team's SLA policy with the one in force (a row per team). A changed one (or a team
    that is gone) becomes the one in force, and the team's open requests planned with anything else
    are marked for re-planning in ranges of `span` ids, one statement after another while another
    still fits before `until` (monotonic seconds; at least one), resumed at the next tick (the cursor
    is stored: a restart or another instance goes on where this one stopped). The config loaded
    last wins: an instance with an older one changes nothing, warns, and neither plans nor sends."""
    total = total or PlanResult()
    mine = {team.slug: policy_for(deps.settings, team).fingerprint for team in deps.settings.teams}
    with session_scope(deps.engine) as session:
        stored = queries.stored_policies(session)
        stale = sorted(team for team in {*mine, *stored}
                       if is_stale(stored.get(team), mine.get(team, NO_POLICY), deps.loaded_at))
        if stale:
            total.stale = True
            if _WARNED.get(deps.instance_id) != stale:
                _WARNED[deps.instance_id] = stale
                log.warning("another instance runs a newer SLA config (teams %s): this one plans and sends no "
                            "SLA timers until it is restarted or reloaded (SIGHUP) with it", ", ".join(stale))
            return total
        cursors = {team: (row.replan_from, row.plan) for team, row in stored.items()
                   if row.replan_from is not None and row.plan == mine.get(team, NO_POLICY)}
        for team in sorted({*mine, *stored}):
            plan, row = mine.get(team, NO_POLICY), stored.get(team)
            if (row is None or row.plan != plan) and queries.switch_policy(
                    session, team=team, plan=plan, previous=row.plan if row else None, now=deps.now()):
                log.info("the SLA config of team %s changed: re-planning its open requests", team)
                cursors[team] = (0, plan)
    _WARNED.pop(deps.instance_id, None)
    while cursors:
        begun = time.monotonic()
        start = min(cursor for cursor, _ in cursors.values())
        plans = {team: plan for team, (cursor, plan) in cursors.items() if cursor == start}
        with session_scope(deps.engine) as session:
            total.marked += queries.mark_for_replan(session, plans=plans, start=start, end=start + span)
            total.marked_ranges += 1
            done = start + span > queries.last_request_id(session)
            queries.advance_replan(session, plans=plans, start=start, end=None if done else start + span)
        for team, plan in plans.items():
            if done:
                del cursors[team]
            else:
                cursors[team] = (start + span, plan)
        now = time.monotonic()
        if now + (now - begun) > until:
            break
    return total


_WARNED: dict[str, list[str]] = {}  # instance -> the stale teams it last warned about
_COST: dict[str, float] = {}  # instance -> seconds per request its planning batches took lately


# -- sending (the timer jobs) ---------------------------------------------------------------------------
class _Moved(Exception):  # noqa: N818 - a signal: the job waits until `due_at`
    def __init__(self, due_at: datetime, paced: bool = False) -> None:
        super().__init__(str(due_at))
        self.due_at, self.paced = due_at, paced


def run_timer(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    """A reminder (`sla_remind`) or an escalation (`sla_escalate`) that fell due."""
    stage = REMIND if job.kind == KINDS[REMIND] else ESCALATE
    now = deps.now()
    with session_scope(deps.engine) as session:
        req = request_queries.get(session, int(payload["request_id"]))
        sent = req is not None and queries.notice_recorded(
            session, request_id=req.id, kind=NOTICE[stage],  # type: ignore[arg-type]
            detail=notice_detail(str(payload["sla"]), int(payload["cycle"])))
        in_force = queries.stored_policy(session, req.team) if req is not None else None
    if sent:  # counted already (its job row was purged and planned again): never twice
        _finish(deps, job, status="done")
        return
    try:
        verdict = _verdict(deps, req, payload, stage, now, in_force)
        if verdict is None:
            _finish(deps, job, status="cancelled")
            return
        team, deadline = verdict
        assert req is not None
        if not payload.get("paced"):
            _pace(deps, _targets(req, team, stage), now)
        escalated = _send(deps, req, team, deadline, stage, now, reconcile=job.attempts > 1, since=job.created_at)
    except _Moved as moved:
        with session_scope(deps.engine) as session:
            queries.reschedule(session, job_id=job.id, owner=deps.instance_id, due_at=moved.due_at,
                               payload={**payload, "paced": True} if moved.paced else
                               {k: v for k, v in payload.items() if k != "paced"})
        job.status = "done"  # nothing more for the outbox to record
        return
    _finish(deps, job, status="done", record=(req, stage, deadline, escalated))  # type: ignore[arg-type]


def _verdict(deps: Deps, req: Request | None, payload: dict[str, Any], stage: str, now: datetime,
             in_force: queries.StoredPolicy | None) -> tuple[Team, Deadline] | None:
    """(team, deadline) when this timer should go out now; None when it is no longer wanted.
    Raises _Moved when it is wanted later (the plan moved, working hours, not posted yet, or this
    instance's SLA config is older than the one in force: an instance with the newer one decides)."""
    if req is None:
        return None
    team = deps.settings.team(req.team)
    if team is None or req.sla_cycle != int(payload["cycle"]):
        return None
    policy = policy_for(deps.settings, team)
    if is_stale(in_force, policy.fingerprint, deps.loaded_at):
        raise _Moved(now + STALE_RETRY)
    deadline = next((d for d in sla_plan.deadlines(req, policy) if d.sla == payload["sla"]), None)
    if deadline is None:
        return None  # met, resolved, or paused (the plan revives it when the clock runs again)
    due = deadline.due_at if stage == ESCALATE else deadline.remind_at
    if due is None:
        return None  # reminders were switched off
    if stage == REMIND and deadline.due_at <= now:
        return None  # already breached: the escalation says it
    if due > now:
        raise _Moved(due)
    if not req.triage_ts or not req.triage_channel:
        raise _Moved(now + NOT_POSTED_RETRY)
    if not policy.calendar.is_working(now):
        raise _Moved(policy.calendar.next_working(now))
    return team, deadline


def notice_detail(sla_name: str, cycle: int) -> str:
    """The stored detail of a timer's history event (as `storage.requests.add_event` writes it)."""
    return json.dumps({"sla": sla_name, "cycle": cycle}, ensure_ascii=False)


def _targets(req: Request, team: Team, stage: str) -> list[str]:
    if stage == REMIND:
        return [req.triage_channel or team.channel]
    return ([team.escalation_channel] if team.escalation_channel else []) + list(team.leads)


def _pace(deps: Deps, channels: list[str], now: datetime) -> None:
    """Reserve each channel's next slot: if one is far off, move the job to it (the post itself then
    still passes the pacer's gate, which spaces the actual sends in a channel)."""
    delay = max((deps.pacer.reserve(channel) for channel in channels), default=0.0)
    if delay > PACE_INLINE:
        raise _Moved(now + timedelta(seconds=delay), paced=True)


def _send(deps: Deps, req: Request, team: Team, deadline: Deadline, stage: str, now: datetime, *,
          reconcile: bool, since: datetime | None) -> bool:
    """Post the reminder, or the escalation to each target; True when an escalation reached anyone.

    An escalation target that refuses for good (channel archived, lead deactivated) is logged and
    skipped: the others are still told and the breach is still counted."""
    ref = sla_plan.timer_key(req.id, req.sla_cycle, deadline.sla, stage)  # type: ignore[arg-type]
    team_t = deps.directory.team_translator(team)
    if stage == REMIND:
        msg = sla_blocks.reminder_message(req, sla=deadline.sla, due_at=deadline.due_at, now=now, t=team_t)
        post_once(deps, channel=req.triage_channel, text=msg.text,  # type: ignore[arg-type]
                  blocks=msg.as_dicts(), event_type=EVENT_TYPE, ref=ref, reconcile=reconcile,
                  thread_ts=req.triage_ts, paced=True, since=since)
        return False
    link = message_link(deps.workspace_url, req.triage_channel, req.triage_ts)
    reached = False
    for channel in _targets(req, team, stage):
        # the escalation channel reads the team's language; each lead their own
        t = team_t if channel == team.escalation_channel else deps.directory.translator_for(channel, now=now)
        msg = sla_blocks.escalation_message(req, team, sla=deadline.sla, due_at=deadline.due_at, now=now,
                                            target=str(deadline.target), link=link, t=t)
        try:
            post_once(deps, channel=channel, text=msg.text, blocks=msg.as_dicts(),
                      event_type=EVENT_TYPE, ref=ref, reconcile=reconcile, paced=True, since=since)
            reached = True
        except SlackApiError as exc:
            if not is_permanent(exc):
                raise
            log.warning("escalation of #%s to %s failed for good (%s): check team %s's escalation_channel and "
                        "leads; the other targets are still told, the breach is counted", req.id, channel,
                        slack_error(exc), team.slug)
    return reached


def _finish(deps: Deps, job: ClaimedJob, *, status: str,
            record: tuple[Request, str, Deadline, bool] | None = None) -> None:
    """End the job and, if it sent something, count it (one transaction, fenced on the lease: a job
    another worker has taken over counts nothing here)."""
    now = deps.now()
    with session_scope(deps.engine) as session:
        if not job_queries.finish(session, job_id=job.id, owner=deps.instance_id, status=status):
            return
        if record is not None:
            req, stage, deadline, escalated = record
            detail = {"sla": deadline.sla, "cycle": req.sla_cycle}
            request_queries.add_event(session, req, NOTICE[stage], actor=None, at=now, detail=detail)
            if stage == ESCALATE and escalated:
                request_queries.add_event(session, req, "sla_escalated", actor=None, at=now, detail=detail)
    job.status = "done"
