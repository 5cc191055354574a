"""Digest figures: everything a team's weekly digest (and the organisation digest) says, for a period.

The database does the aggregation (storage/digest_queries.py, one GROUP BY per figure for all teams);
this module turns the aggregates into figures and compares with the previous 7 days. Satisfaction is
not about the digest's own 7 days: it is always the latest closed feedback week's, computed in one place
(bot/services/satisfaction.py, through the anonymity gate). Definitions: docs/digests.md, docs/privacy.md.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.analytics import GatedValue, RankedItem, WeekPoint, extract_topics, ranked_change
from bot.analytics.stats import median, percentile
from bot.config import Settings, Team
from bot.render.blocks import message_link
from bot.services import satisfaction
from bot.services.digest_periods import Period
from bot.services.satisfaction import Satisfaction, WeekFeedback
from bot.services.sla import policy_for
from bot.services.sla_attainment import Share, attainment, earliest_due, past_due
from bot.services.sla_plan import FIRST_RESPONSE, RESOLUTION
from storage import digest_queries as q
from storage import needs as needs_queries
from storage import sla as sla_queries
from storage.needs import ActionItem
from storage.session import read_scope

ATTENTION_LIMIT = 10
TOP_TOPICS = 8
DIMENSIONS = satisfaction.DIMENSIONS


@dataclass(frozen=True)
class RequestRef:
    """A request named in a digest: `age` is seconds from its creation (or reopening) to the period end."""

    id: int
    title: str
    link: str | None
    age: float


NOTICES = {"sla_reminder": "reminders", "sla_escalated": "escalations", "sla_breached": "breaches"}


@dataclass(frozen=True)
class SlaNotices:
    """SLA reminders sent, escalations and breaches in the period, per urgency of the request."""

    by_urgency: dict[str, dict[str, int]] = field(default_factory=dict)  # urgency -> {reminders, ...}

    def total(self, what: str) -> int:
        return sum(counts.get(what, 0) for counts in self.by_urgency.values())


@dataclass(frozen=True)
class DueRef:
    """An open request and its earliest SLA deadline (shown as "overdue 2 h" / "due in 25 min")."""

    id: int
    title: str
    link: str | None
    due_at: datetime


@dataclass(frozen=True)
class Speed:
    count: int
    median: float | None
    p90: float | None
    within_sla: float | None  # percent of `count` within `target`
    target: float  # seconds
    median_prev: float | None


@dataclass
class TeamDigest:
    team: str
    name: str
    period: Period
    new: int
    new_prev: int
    resolved: int
    resolved_prev: int
    transferred_in: int
    transferred_out: int
    open_end: int
    oldest_open: RequestRef | None
    first_response: Speed
    resolution: Speed
    satisfaction: Satisfaction
    internal_customers: list[RankedItem]
    top_categories: list[tuple[str, int]]
    topics: list[tuple[str, int]]
    unclaimed: list[DueRef]  # open, nobody claimed or answered, past the first-response SLA: most overdue first
    unclaimed_count: int
    reopened: list[RequestRef]
    reopened_count: int
    weeks: list[WeekPoint]
    late: bool = False
    actions: list[ActionItem] = field(default_factory=list)  # improvement actions, shown until done
    feedback: WeekFeedback | None = field(default=None, repr=False)  # all teams' week it was computed with
    sla: SlaNotices = field(default_factory=SlaNotices)
    due: list[DueRef] = field(default_factory=list)  # open requests by deadline, overdue first
    due_count: int = 0

    @property
    def quiet(self) -> bool:
        """Nothing happened: no new or resolved requests, no answers, no ratings."""
        activity = (self.new, self.resolved, self.satisfaction.responses, self.satisfaction.ratings.count,
                    self.reopened_count)
        return not any(activity)


@dataclass
class OrgDigest:
    period: Period
    teams: list[TeamDigest]
    departments: list[str]  # ranked by requests
    matrix: dict[tuple[str, str], int]  # (department, team) -> requests in the period
    matrix_csat: dict[tuple[str, str], GatedValue[float]] = field(default_factory=dict)
    csat: GatedValue[float] = field(default_factory=lambda: GatedValue(None, 0, True))
    feedback_week: Period | None = None  # the closed week the satisfaction figures are about
    late: bool = False

    @property
    def total(self) -> int:
        return sum(self.matrix.values())


def _ref(row: dict[str, Any], end: datetime, workspace_url: str | None, since: str = "created_at",
         ) -> RequestRef:
    summary = (row.get("summary") or "").strip().splitlines()
    title = f"#{row['id']} · {summary[0][:80]}" if summary and summary[0] else f"#{row['id']}"
    channel, ts = row.get("triage_channel"), row.get("triage_ts")
    link = message_link(workspace_url, channel, ts) if workspace_url else None
    return RequestRef(id=int(row["id"]), title=title, link=link, age=(end - row[since]).total_seconds())


def _speed(values: list[float], prev: list[float], target: float, within: Share) -> Speed:
    """Times of the period's resolved requests; `within` measured against each request's real deadline
    (bot/services/sla_attainment.py), the same as the scorecard's."""
    return Speed(count=len(values), median=median(values), p90=percentile(values, 90),
                 within_sla=within.percent, target=target, median_prev=median(prev))


@dataclass
class _Raw:
    """The aggregates of one set of teams for one period, as the database returned them."""

    feedback: WeekFeedback
    weekly: dict[str, list[int]]
    departments: dict[str, dict[bool, dict[str, int]]]
    categories: dict[str, list[tuple[str | None, int]]]
    texts: dict[str, list[str]]
    events: dict[tuple[str, str, bool], int]
    transfers: list[tuple[str | None, str | None]]
    durations: dict[str, q.Durations]
    sla_records: dict[str, list[Any]]
    open: dict[str, int]
    oldest: dict[str, dict[str, Any]]
    unclaimed: dict[str, list[Any]]
    reopened: dict[str, list[dict[str, Any]]]
    notices: dict[str, dict[tuple[str, str], int]]
    due: dict[str, list[dict[str, Any]]]


def _fetch(session: Session, settings: Settings, teams: Sequence[Team], period: Period, topics: bool,
           now: datetime | None) -> _Raw:
    slugs = [t.slug for t in teams]
    prev, s, e = period.previous.start, period.start, period.end
    bounds = period.chart_bounds()
    week = satisfaction.closed_week(settings, min(e, now) if now else e)
    return _Raw(
        feedback=satisfaction.compute(session, settings, week, slugs),
        weekly=q.weekly_new(session, slugs, bounds),
        departments=q.department_counts(session, slugs, prev, s, e),
        categories=q.category_counts(session, slugs, s, e),
        texts=q.request_texts(session, slugs, s, e) if topics else {},
        events=q.event_counts(session, slugs, prev, s, e),
        transfers=q.transfers(session, [t.slug for t in settings.teams], s, e),
        durations=q.durations(session, slugs, prev, s, e),
        sla_records=sla_queries.records(session, teams=slugs, start=s, end=e, by="resolved_at"),
        open=q.open_at(session, slugs, e), oldest=q.oldest_open(session, slugs, e),
        unclaimed=sla_queries.unclaimed(session, started_before={
            t.slug: e - earliest_due(policy_for(settings, t), FIRST_RESPONSE) for t in teams}),
        reopened=q.reopened(session, slugs, s, e, ATTENTION_LIMIT),
        notices=sla_queries.notice_counts(session, slugs, s, e),
        due=sla_queries.due_soonest(session, slugs, ATTENTION_LIMIT))


def _weeks(raw: _Raw, team: str, period: Period) -> list[WeekPoint]:
    bounds = period.chart_bounds()
    zone = period.zone
    points = []
    trend = raw.feedback.trend[team]  # the CSAT of the 8 feedback weeks ending with the digest's
    for i, volume in enumerate(raw.weekly[team]):
        label = bounds[i].astimezone(zone).strftime("%d %b")
        points.append(WeekPoint(label=label, volume=volume, csat=trend[i].value))
    return points


def _within(raw: _Raw, settings: Settings, team: Team, end: datetime) -> dict[str, Share]:
    """Shares within SLA of the requests resolved in the period: first responses over those that had one
    (as the median), resolutions over all."""
    records, policy = raw.sla_records[team.slug], policy_for(settings, team)
    answered = [r for r in records if r.first_response_at is not None]
    return {**attainment(answered, policy, end, slas=(FIRST_RESPONSE,)),
            **attainment(records, policy, end, slas=(RESOLUTION,))}


def _build(raw: _Raw, settings: Settings, team: Team, period: Period, workspace_url: str | None) -> TeamDigest:
    slug, end = team.slug, period.end
    within = _within(raw, settings, team, end)
    depts = raw.departments[slug]
    cats = [(c or "Uncategorised", n) for c, n in raw.categories.get(slug, [])]
    (first, resolution), (first_prev, resolution_prev) = raw.durations[slug][True], raw.durations[slug][False]
    texts = raw.texts.get(slug, [])
    reopened = raw.reopened.get(slug, [])
    late = past_due(raw.unclaimed.get(slug, []), policy_for(settings, team), FIRST_RESPONSE, end)
    oldest = raw.oldest.get(slug)
    return TeamDigest(
        team=slug, name=team.name, period=period,
        new=raw.weekly[slug][-1], new_prev=raw.weekly[slug][-2],
        resolved=raw.events.get((slug, "resolved", True), 0),
        resolved_prev=raw.events.get((slug, "resolved", False), 0),
        transferred_in=sum(1 for _, to in raw.transfers if to == slug),
        transferred_out=sum(1 for frm, _ in raw.transfers if frm == slug),
        open_end=raw.open.get(slug, 0), oldest_open=_ref(oldest, end, workspace_url) if oldest else None,
        first_response=_speed(first, first_prev, team.first_response_sla.nominal().total_seconds(),
                              within[FIRST_RESPONSE]),
        resolution=_speed(resolution, resolution_prev, team.resolution_sla.nominal().total_seconds(),
                          within[RESOLUTION]),
        satisfaction=raw.feedback.teams[slug],
        internal_customers=ranked_change(depts[True], depts[False]),
        top_categories=cats,
        topics=extract_topics(texts, top=TOP_TOPICS, extra_stopwords=(slug, team.name)) if texts else [],
        unclaimed=[_due_ref(r._mapping, due, workspace_url) for due, r in late[:ATTENTION_LIMIT]],
        unclaimed_count=len(late),
        reopened=[_ref(r, end, workspace_url, since="reopened_at") for r in reopened],
        reopened_count=int(reopened[0]["total"]) if reopened else 0,
        weeks=_weeks(raw, slug, period), feedback=raw.feedback, sla=_notices(raw.notices.get(slug, {})),
        due=[_due_ref(r, r["sla_due_at"], workspace_url) for r in raw.due.get(slug, [])],
        due_count=int(raw.due[slug][0]["total"]) if raw.due.get(slug) else 0)


def _notices(counts: dict[tuple[str, str], int]) -> SlaNotices:
    by_urgency: dict[str, dict[str, int]] = {}
    for (kind, urgency), n in counts.items():
        by_urgency.setdefault(urgency, {})[NOTICES[kind]] = n
    return SlaNotices(by_urgency=by_urgency)


def _due_ref(row: Mapping[str, Any], due_at: datetime, workspace_url: str | None) -> DueRef:
    ref = _ref({**row, "created_at": due_at}, due_at, workspace_url)
    return DueRef(id=ref.id, title=ref.title, link=ref.link, due_at=due_at)


def _compute(session: Session, settings: Settings, teams: Sequence[Team], period: Period, *,
             workspace_url: str | None, topics: bool, now: datetime | None) -> tuple[list[TeamDigest], _Raw]:
    raw = _fetch(session, settings, teams, period, topics, now)
    digests = [_build(raw, settings, team, period, workspace_url) for team in teams]
    actions = needs_queries.digest_actions(session, teams=[t.slug for t in teams], start=period.start, end=period.end)
    for digest in digests:
        digest.actions = [a for a in actions if a.team == digest.team]
    return digests, raw


def compute(session: Session, settings: Settings, teams: Sequence[Team], period: Period, *,
            workspace_url: str | None = None, topics: bool = True, now: datetime | None = None) -> list[TeamDigest]:
    """The digests of `teams` for `period` (all teams share it), in one pass over the database.

    Satisfaction is the latest feedback week closed by the period's end (or by `now`, for a period that
    has not ended: a preview never shows a week that is still running)."""
    if not teams:
        return []
    return _compute(session, settings, teams, period, workspace_url=workspace_url, topics=topics, now=now)[0]


def compute_org(session: Session, settings: Settings, period: Period, *, workspace_url: str | None = None,
                topics: bool = False, teams: list[TeamDigest] | None = None,
                now: datetime | None = None) -> OrgDigest:
    """All teams side by side plus the department x team matrix of requests and satisfaction.

    `teams`: the team digests of this period when already computed (else computed here, without topics,
    which the organisation digest does not show)."""
    slugs = [t.slug for t in settings.teams]
    if teams is None:
        digests, raw = _compute(session, settings, settings.teams, period, workspace_url=workspace_url,
                                topics=topics, now=now)
        feedback = raw.feedback
    else:
        digests = teams
        known = teams[0].feedback if teams else None
        if known is not None and set(known.teams) == set(slugs):
            feedback = known  # computed with the team digests, for every team: the same figures
        else:
            week = teams[0].satisfaction.week if teams else satisfaction.closed_week(
                settings, min(period.end, now) if now else period.end)
            feedback = satisfaction.compute(session, settings, week, slugs)
    matrix: dict[tuple[str, str], int] = defaultdict(int)
    for d in digests:
        for item in d.internal_customers:
            matrix[(item.key, d.team)] += item.count
    totals: dict[str, int] = defaultdict(int)
    for (dept, _), n in matrix.items():
        totals[dept] += n
    return OrgDigest(period=period, teams=digests, departments=sorted(totals, key=lambda d: (-totals[d], d)),
                     matrix=dict(matrix), matrix_csat=feedback.cells, csat=feedback.overall,
                     feedback_week=feedback.week)


def team_digest(engine: Engine, settings: Settings, team: Team, period: Period, *,
                workspace_url: str | None = None, now: datetime | None = None) -> TeamDigest:
    with read_scope(engine) as session:
        return compute(session, settings, [team], period, workspace_url=workspace_url, now=now)[0]


def org_digest(engine: Engine, settings: Settings, period: Period, *,
               workspace_url: str | None = None, now: datetime | None = None) -> OrgDigest:
    with read_scope(engine) as session:
        return compute_org(session, settings, period, workspace_url=workspace_url, now=now)
