"""Scheduling and posting of the weekly digests: exactly one per team (and the organisation) per week.

- The leader's clock runs `schedule_digests` every 30 s: for each team whose latest digest time has
  passed (and is no older than `[digest] catch_up`), it inserts the `digests` row (unique per team and
  week) and the job `digest:<team>:<week>` (unique key) in one transaction. Both inserts are no-ops when
  they exist, so restarts and several instances create nothing twice. A digest found more than 10 min
  after its time is marked late; one older than the catch-up window is skipped.
- The job posts the message with `post_once` (metadata ref `<team>:<week>`, reconciled on retries),
  stores its ts, uploads the chart (files v2; on retries first looked for in the channel history) and
  marks the row posted. Claims are leased, so only one worker runs it at a time.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.config import Settings, Team
from bot.i18n import Translator, translator
from bot.render import digest_blocks
from bot.render.digest_text import week_labels
from bot.runtime.deps import Deps
from bot.runtime.outbox import PermanentFailure
from bot.services import digests
from bot.services.delivery import post_once
from bot.services.digest_periods import Period, period_ending, schedule_for
from bot.slack.client import is_permanent, slack_error
from storage import digests as digest_rows
from storage import jobs as job_queries
from storage.jobs import ClaimedJob
from storage.session import read_scope, session_scope

log = logging.getLogger(__name__)
ORG = "*"
KIND = "digest"
EVENT_TYPE = "askdesk_digest"
LATE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Target:
    slug: str  # team slug, or "*" for the organisation digest
    team: Team | None
    channel: str


def targets(settings: Settings) -> list[Target]:
    out = [Target(t.slug, t, t.digest_target) for t in settings.teams]
    if settings.workspace.leadership_channel:
        out.append(Target(ORG, None, settings.workspace.leadership_channel))
    return out


def target_for(settings: Settings, slug: str) -> Target | None:
    return next((t for t in targets(settings) if t.slug == slug), None)


def job_key(slug: str, week: str) -> str:
    return f"digest:{slug}:{week}"


def ensure(session: Session, target: Target, period: Period, *, late: bool = False) -> int | None:
    """The digest row and its job, created unless they exist; returns the job id (new or pending)."""
    digest_rows.create(session, team=target.slug, week=period.week, period_start=period.start,
                       period_end=period.end, channel=target.channel, late=late)
    job_queries.enqueue(session, kind=KIND, key=job_key(target.slug, period.week),
                        payload={"team": target.slug, "week": period.week}, due_at=period.end)
    job = job_queries.get_by_key(session, key=job_key(target.slug, period.week))
    return job.id if job is not None and job.status == "pending" else None


def schedule_digests(deps: Deps) -> None:
    """Create the digests that are due (or missed by less than the catch-up window)."""
    settings, now = deps.settings, deps.now()
    due_now = []
    for target in targets(settings):
        due = schedule_for(settings, target.team).latest_due(now)
        if now - due <= settings.digest.catch_up:  # older: missed for good, skipped
            due_now.append((target, period_ending(due, settings.workspace.timezone), now - due > LATE_AFTER))
    if not due_now:
        return  # most of the week: no database work at all
    with session_scope(deps.engine) as session:
        known = digest_rows.existing(session, [(t.slug, p.week) for t, p, _ in due_now])
        for target, period, late in due_now:
            if (target.slug, period.week) not in known:
                ensure(session, target, period, late=late)


def _save(deps: Deps, digest_id: int, **values: Any) -> None:
    with session_scope(deps.engine) as session:
        digest_rows.set_values(session, digest_id=digest_id, **values)


def figures(deps: Deps, target: Target, period: Period, *, late: bool = False) -> Any:
    """TeamDigest or OrgDigest of `target` for `period`."""
    url = deps.workspace_url
    with read_scope(deps.engine) as session:
        if target.team is None:
            result: Any = digests.compute_org(session, deps.settings, period, workspace_url=url, now=deps.now())
        else:
            result = digests.compute(session, deps.settings, [target.team], period, workspace_url=url,
                                     now=deps.now())[0]
    result.late = late
    return result


def chart_name(slug: str, week: str) -> str:
    return f"askdesk-{'organisation' if slug == ORG else slug}-{week}.png"


def locale_of(settings: Settings, target: Target) -> str:
    """A digest's language: the team's channel locale; the organisation digest's is the workspace's."""
    return settings.team_locale(target.team)


def write_chart(result: Any, path: Path, t: Translator | None = None) -> Path:
    """The digest's chart: 8 weeks of volume and CSAT for a team; the department x team matrix for the org."""
    t = t or translator("en")
    if isinstance(result, digests.OrgDigest):
        teams = [d.team for d in result.teams]
        counts = [[result.matrix.get((dept, team), 0) for team in teams] for dept in result.departments]
        names = [d.name for d in result.teams]
        from bot.analytics.charts import render_matrix_chart  # matplotlib only when a chart is drawn

        return render_matrix_chart(result.departments, names, counts, path=path, t=t,
                                   title=t._("Requests by department and team · {week}", week=result.period.week))
    from bot.analytics.charts import render_weekly_chart

    weeks = [replace(w, label=label) for label, w in zip(week_labels(result, t), result.weeks, strict=True)]
    return render_weekly_chart(weeks, path=path, t=t, title=t._("{team} · last 8 weeks", team=result.name))


def _chart_posted(client: WebClient, channel: str, filename: str) -> bool:
    try:
        history = client.conversations_history(channel=channel, limit=100)
    except SlackApiError as exc:
        log.info("history of %s unavailable for chart reconciliation: %s", channel, slack_error(exc))
        return False
    return any(f.get("name") == filename for m in history.get("messages") or [] for f in m.get("files") or [])


def _upload_chart(deps: Deps, result: Any, channel: str, filename: str, reconcile: bool, t: Translator) -> None:
    if reconcile and _chart_posted(deps.client, channel, filename):
        log.info("chart %s already uploaded", filename)
        return
    title = t._("Requests by department and team") if isinstance(result, digests.OrgDigest) else \
        t._("{team}: requests and CSAT, last 8 weeks", team=result.name)
    with tempfile.TemporaryDirectory(prefix="askdesk-chart-") as tmp:
        path = write_chart(result, Path(tmp) / filename, t)
        deps.pacer.wait(channel)
        deps.send_client.files_upload_v2(channel=channel, file=str(path), filename=filename, title=title)


def render(result: Any, t: Translator) -> digest_blocks.Rendered:
    if isinstance(result, digests.OrgDigest):
        return digest_blocks.org_digest(result, t=t)
    return digest_blocks.team_digest(result, t=t)


def _has_chart(result: Any) -> bool:
    return isinstance(result, digests.OrgDigest) or not result.quiet


def post_digest(deps: Deps, payload: dict[str, Any], job: ClaimedJob) -> None:
    slug, week = payload["team"], payload["week"]
    with session_scope(deps.engine) as session:
        row = digest_rows.get(session, team=slug, week=week)
    if row is None or row.id is None:
        raise PermanentFailure(f"digest {slug} {week} is gone")
    if row.status == "posted":
        return
    target = target_for(deps.settings, slug)
    if target is None:
        raise PermanentFailure(f"team {slug} is no longer configured")
    tz = deps.settings.workspace.timezone
    period = Period(start=row.period_start, end=row.period_end, tz=tz, week=week)
    result = figures(deps, target, period, late=row.late)
    channel, retry = row.channel or target.channel, job.attempts > 1
    t = translator(locale_of(deps.settings, target))
    if not row.ts:
        msg = render(result, t)
        posted = post_once(deps, channel=channel, text=msg.text, blocks=msg.as_dicts(), event_type=EVENT_TYPE,
                           ref=f"{slug}:{week}", reconcile=retry, since=job.created_at, paced=True)
        _save(deps, row.id, channel=posted.channel, ts=posted.ts)
        channel = posted.channel
    error = None
    if _has_chart(result):
        try:
            _upload_chart(deps, result, channel, chart_name(slug, week), reconcile=retry or bool(row.ts), t=t)
        except SlackApiError as exc:
            if not is_permanent(exc):
                raise
            error = f"chart not uploaded: {slack_error(exc)}"  # the digest itself is posted: keep it so
            log.warning("digest %s %s: %s", slug, week, error)
    _save(deps, row.id, status="posted", posted_at=deps.now(), error=error)
    log.info("digest %s %s posted to %s%s", slug, week, channel, " (late)" if row.late else "")


def digest_failed(deps: Deps, payload: dict[str, Any], reason: str) -> None:
    with session_scope(deps.engine) as session:
        digest_rows.mark_failed(session, team=payload["team"], week=payload["week"], error=reason)


@dataclass(frozen=True)
class PostResult:
    slug: str
    week: str
    status: str  # posted | already_posted | busy | failed
    channel: str | None = None
    ts: str | None = None
    error: str | None = None


def post_now(deps: Deps, target: Target, period: Period) -> PostResult:
    """Post a digest now through the same row + job path as the scheduler (so still exactly once)."""
    key = job_key(target.slug, period.week)
    with session_scope(deps.engine) as session:
        existing = digest_rows.get(session, team=target.slug, week=period.week)
        if existing is not None and existing.status == "posted":
            return PostResult(target.slug, period.week, "already_posted", existing.channel, existing.ts)
        digest_rows.retry_failed(session, team=target.slug, week=period.week, job_key=key, now=deps.now())
        job_id = ensure(session, target, period)
    deps.outbox.kick([job_id])
    with session_scope(deps.engine) as session:
        row = digest_rows.get(session, team=target.slug, week=period.week)
        job = job_queries.get_by_key(session, key=key)
    assert row is not None
    if row.status == "posted":
        return PostResult(target.slug, period.week, "posted", row.channel, row.ts)
    if job is not None and job.status == "running":
        return PostResult(target.slug, period.week, "busy")
    error = row.error or (job.last_error if job else None)
    return PostResult(target.slug, period.week, "failed", error=error)


def latest_period(settings: Settings, target: Target, now: datetime) -> Period:
    """The period of the most recent scheduled digest of `target` (what `askdesk digest` posts)."""
    return schedule_for(settings, target.team).latest_period(now)
