"""The table of background work, in one place: every kind of outbox job (the function that runs it
and the one told when it fails for good) and every periodic task. `build_deps` hands it to the Outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.runtime.deps import Deps, utc_now
from bot.runtime.outbox import JobKind, Outbox, Periodic
from bot.services import (
    assignment,
    delivery,
    digest_jobs,
    messages,
    needs,
    needs_actions,
    needs_invites,
    questions,
    sla,
    surveys,
)
from bot.services.directory import Directory
from bot.slack.client import build_client

JOBS: dict[str, JobKind[Deps]] = {
    "post_request": JobKind(messages.post_request, messages.post_request_failed),
    "render": JobKind(messages.render),
    "transfer_notice": JobKind(messages.transfer_notice),
    surveys.PLAN: JobKind(surveys.plan, surveys.failed),
    surveys.SEND: JobKind(surveys.send, surveys.failed),
    surveys.RENDER: JobKind(surveys.render),
    digest_jobs.KIND: JobKind(digest_jobs.post_digest, digest_jobs.digest_failed),
    delivery.SWEEP: JobKind(delivery.sweep),
    needs.PLAN: JobKind(needs.plan),
    needs.CLOSE: JobKind(needs.close),
    needs.REPORT: JobKind(needs.post_report),
    needs.SCORECARD: JobKind(needs.post_scorecard),
    needs_invites.INVITE: JobKind(needs_invites.invite, needs_invites.invite_failed),
    needs_invites.REMIND: JobKind(needs_invites.remind),
    needs_invites.RENDER: JobKind(needs_invites.render),
    needs_actions.CARD: JobKind(needs_actions.post_card),
    needs_actions.ANNOUNCE: JobKind(needs_actions.announce),
    needs_actions.DONE_DM: JobKind(needs_actions.done_dm),
    sla.KINDS[sla.REMIND]: JobKind(sla.run_timer),
    sla.KINDS[sla.ESCALATE]: JobKind(sla.run_timer),
    assignment.ASSIGNED_DM: JobKind(assignment.notify_assignee),
    questions.QUESTION_POST: JobKind(questions.post_question),
    questions.ANSWER_RELAY: JobKind(questions.relay_answer),
}

PERIODIC: list[Periodic[Deps]] = [
    Periodic("digests", 30, digest_jobs.schedule_digests),
    Periodic("survey_expiry", 30, surveys.expire),
    Periodic("needs_rounds", 30, needs.schedule),
    Periodic("sla_plan", 0, sla.plan_pending, timeboxed=True),  # every tick: follows the SLA config, plans timers
]


def build_deps(settings: Settings, engine: Engine, *, now: Callable[[], datetime] = utc_now,
               workers: int | None = None) -> Deps:
    client = build_client(settings.bot_token, settings.slack_api_url)
    send_client = build_client(settings.bot_token, settings.slack_api_url, safe_retries_only=True)
    deps = Deps(settings=settings, engine=engine, client=client, send_client=send_client,
                directory=Directory(settings, client, engine), now=now)
    deps.outbox = Outbox(deps, JOBS, periodic=PERIODIC, workers=workers or settings.scheduler.workers,
                         live_threads=settings.listener_threads)
    return deps
