"""All askdesk tables. Storage knows nothing about Slack's API; ids are plain strings.

Every datetime is timezone-aware UTC (sqlmodel >= 0.0.45 refuses naive values).
No `from __future__ import annotations` here: SQLModel needs the real annotations.
"""

from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Request(SQLModel, table=True):
    """One internal-customer request, from intake to resolution."""

    __tablename__ = "requests"
    __table_args__ = (
        Index("ix_requests_team_created_cover", "team", "created_at", "department", "category"),  # 0002
        Index("ix_requests_team_status", "team", "status"),
        Index("ix_requests_team_resolved_cover", "team", "resolved_at", "created_at", "first_response_at"),
        Index("ix_requests_team_status_created", "team", "status", "created_at"),  # digests (0002)
        # requests whose SLA timers need (re)planning; holds only those rows (0007)
        Index("ix_requests_sla_unplanned", "id", sqlite_where=text("sla_plan IS NULL"),
              postgresql_where=text("sla_plan IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=32)
    origin_team: str = Field(max_length=32)
    requester_id: str = Field(max_length=32, index=True)
    department: str = Field(default="Other", max_length=100)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    category: str | None = Field(default=None, max_length=100)
    urgency: str = Field(default="normal", max_length=10)
    status: str = Field(default="open", max_length=16)  # open | claimed | resolved
    assignee_id: str | None = Field(default=None, max_length=32)
    source_permalink: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    source_channel: str | None = Field(default=None, max_length=32)
    triage_channel: str | None = Field(default=None, max_length=32)
    triage_ts: str | None = Field(default=None, max_length=32, index=True)
    dm_channel: str | None = Field(default=None, max_length=32)
    dm_ts: str | None = Field(default=None, max_length=32, index=True)
    response_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    post_state: str = Field(default="pending", max_length=16)  # pending | posted | failed
    post_error: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution_count: int = 0
    reopen_count: int = 0
    transfer_count: int = 0
    purged_at: datetime | None = None
    # SLA state (bot/services/sla_plan.py). A cycle starts at creation, a transfer or a reopen.
    sla_cycle: int = 0
    sla_start_at: datetime | None = None  # start of the current cycle (None: created_at)
    sla_responded_at: datetime | None = None  # first response in the current cycle
    sla_paused_seconds: int = 0  # SLA-clock time spent waiting on the requester in this cycle
    waiting_since: datetime | None = None  # a question to the requester is unanswered since then
    sla_plan: str | None = Field(default=None, max_length=32)  # policy the timers were planned with; None: plan
    sla_due_at: datetime | None = None  # the earliest unmet deadline (orders queues)


class RequestEvent(SQLModel, table=True):
    """Append-only history: every state change with its time and actor."""

    __tablename__ = "request_events"
    __table_args__ = (
        Index("ix_request_events_team_at", "team", "at"),
        Index("ix_request_events_team_kind_at", "team", "kind", "at"),  # digests (0002)
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="requests.id", index=True)
    kind: str = Field(max_length=32)
    actor_id: str | None = Field(default=None, max_length=32)
    team: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class ProcessedEvent(SQLModel, table=True):
    """Event ids already handled, so retried/duplicated deliveries have no second effect."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)


class Person(SQLModel, table=True):
    """What askdesk caches about a Slack user: time zone, language, department, survey budget."""

    __tablename__ = "people"

    user_id: str = Field(primary_key=True, max_length=32)
    tz: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=16)  # as Slack reports it ("zh-CN"); "" = unknown
    department: str | None = Field(default=None, max_length=100)
    refreshed_at: datetime | None = None
    last_survey_at: datetime | None = None


class Reaction(SQLModel, table=True):
    """An emoji reaction on a request's triage or DM message (requester ratings and peer reactions)."""

    __tablename__ = "reactions"
    __table_args__ = (
        # one (request, user, emoji) among the reactions still there; removed ones are kept (0006)
        Index("uq_reactions_active", "request_id", "user_id", "emoji", unique=True,
              sqlite_where=text("removed_at IS NULL"), postgresql_where=text("removed_at IS NULL")),
        Index("ix_reactions_team_created", "team", "created_at"),  # digests (0002)
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="requests.id", index=True)
    team: str = Field(max_length=32, index=True)
    user_id: str = Field(max_length=32)
    emoji: str = Field(max_length=100)
    score: int | None = None
    is_requester: bool = False
    created_at: datetime = Field(default_factory=utcnow, index=True)
    removed_at: datetime | None = None  # the reaction was taken away then (a closed week keeps it)


class Survey(SQLModel, table=True):
    """One pulse survey per resolution of a request."""

    __tablename__ = "surveys"
    __table_args__ = (
        UniqueConstraint("request_id", "resolution_no", name="uq_surveys_request_resolution"),
        Index("ix_surveys_team_answered_cover", "team", "answered_at", "score"),  # digests (0002)
        Index("ix_surveys_team_sent", "team", "sent_at"),
        Index("ix_surveys_team_expires_cover", "team", "expires_at", "answered_at", "score"),  # feedback weeks (0006)
    )

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="requests.id", index=True)
    resolution_no: int = 1
    user_id: str = Field(max_length=32, index=True)
    team: str = Field(max_length=32)
    department: str = Field(default="Other", max_length=100)
    # scheduled | sent | answered | cancelled | skipped | failed | expired
    status: str = Field(default="scheduled", max_length=16, index=True)
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None
    expires_at: datetime | None = None
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    score: int | None = None
    responsiveness: int | None = None
    clarity: int | None = None
    transparency: int | None = None
    support: int | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    comment_anonymous: bool = True
    answered_at: datetime | None = None
    reason: str | None = Field(default=None, max_length=200)


class Digest(SQLModel, table=True):
    """One weekly digest per team (or the organisation, team='*') and ISO week."""

    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("team", "week", name="uq_digests_team_week"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=32)
    week: str = Field(max_length=10)
    period_start: datetime
    period_end: datetime
    status: str = Field(default="scheduled", max_length=16)  # scheduled | posted | failed
    late: bool = False
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    posted_at: datetime | None = None
    error: str | None = Field(default=None, max_length=200)


class Responder(SQLModel, table=True):
    """A responder's own setting per team: available for automatic assignment (round robin)."""

    __tablename__ = "responders"

    team: str = Field(primary_key=True, max_length=32)
    user_id: str = Field(primary_key=True, max_length=32)
    available: bool = False
    last_assigned_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class SlaPolicyPlan(SQLModel, table=True):
    """The SLA policy (fingerprint) in force for each team: a config change is noticed by comparing a
    handful of rows, not by reading every open request. `updated_at`: when it was noticed;
    `replan_from`: the next request id whose open requests are still to be marked for re-planning
    (None: all were), so marking is spread over ticks and resumes after a restart."""

    __tablename__ = "sla_policies"

    team: str = Field(primary_key=True, max_length=32)
    plan: str = Field(max_length=32)
    updated_at: datetime = Field(default_factory=utcnow)
    replan_from: int | None = None


class Job(SQLModel, table=True):
    """Durable outbox of work with side effects in Slack, claimed with leases and fenced updates.

    `key` is unique, so enqueueing the same work twice is a no-op. APScheduler only ticks the clock
    that claims due rows; the schedule itself lives here and survives restarts and crashes.
    """

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_due", "status", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    key: str = Field(max_length=128, unique=True)
    payload: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    status: str = Field(default="pending", max_length=16)  # pending | running | done | failed | cancelled
    due_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=64)
    lease_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    failing_since: datetime | None = None  # first transient failure of the current run of them (0004)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


# -- needs surveys (issue 17): rounds, invitations, answers, themes, improvement actions ------------
class NeedsRound(SQLModel, table=True):
    """One needs-survey round of a team: who was invited, when it opens and closes, where it was reported.

    `key` names the round ("2026-Q4", "2026-11", or "2026-Q4-2" for a second round in one quarter).
    Requesters of [audience_start, audience_end) are invited, with the members of the audience channels.
    status: open -> closed (no more answers; themes computed) -> reported (report jobs queued).
    """

    __tablename__ = "needs_rounds"
    __table_args__ = (
        UniqueConstraint("team", "key", name="uq_needs_rounds_team_key"),
        Index("ix_needs_rounds_status_closes", "status", "closes_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=32)
    key: str = Field(max_length=16)
    cadence: str = Field(default="adhoc", max_length=16)  # quarterly | monthly | adhoc
    status: str = Field(default="open", max_length=16)
    opens_at: datetime
    closes_at: datetime
    audience_start: datetime
    audience_end: datetime
    intro: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # "Last time you told us…"
    invited: int = 0  # invitations created by the planning job
    planned_at: datetime | None = None
    closed_at: datetime | None = None
    report_channel: str | None = Field(default=None, max_length=32)
    report_ts: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow)


class NeedsInvitation(SQLModel, table=True):
    """One person invited to one round (at most once).

    status: scheduled -> sending -> sent -> answered; scheduled -> skipped (budget, deactivated) |
    failed (a permanent Slack error); a round's close leaves these as they are (the round's status rules).
    """

    __tablename__ = "needs_invitations"
    __table_args__ = (
        UniqueConstraint("round_id", "user_id", name="uq_needs_invitations_round_user"),
        Index("ix_needs_invitations_user_status", "user_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="needs_rounds.id", index=True)
    user_id: str = Field(max_length=32)
    source: str = Field(default="requester", max_length=16)  # requester | audience
    status: str = Field(default="scheduled", max_length=16)
    due_at: datetime
    sent_at: datetime | None = None
    channel: str | None = Field(default=None, max_length=32)
    ts: str | None = Field(default=None, max_length=32)
    reminded_at: datetime | None = None
    reason: str | None = Field(default=None, max_length=200)


class NeedsAnswer(SQLModel, table=True):
    """The answer to one invitation (changeable while the round is open). Shown only through the gate."""

    __tablename__ = "needs_answers"

    id: int | None = Field(default=None, primary_key=True)
    invitation_id: int = Field(foreign_key="needs_invitations.id", unique=True)
    round_id: int = Field(foreign_key="needs_rounds.id", index=True)
    overall: int | None = None
    communication: int | None = None
    transparency: int | None = None
    support: int | None = None
    obstacle: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    start_stop: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    shareable: bool = True  # the free text may be used (anonymised) in themes and quotes
    answered_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class NeedsTheme(SQLModel, table=True):
    """A common need found in a closed round's free-text answers (computed once, when it closes)."""

    __tablename__ = "needs_themes"
    __table_args__ = (UniqueConstraint("round_id", "rank", name="uq_needs_themes_round_rank"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="needs_rounds.id", index=True)
    rank: int
    label: str = Field(max_length=200)
    terms: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON list
    people: int
    quotes: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))  # JSON list


class NeedsAction(SQLModel, table=True):
    """An improvement action ("you said, we did") recorded against a round (and maybe one of its themes)."""

    __tablename__ = "needs_actions"
    __table_args__ = (Index("ix_needs_actions_team_status", "team", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    team: str = Field(max_length=32)
    round_id: int = Field(foreign_key="needs_rounds.id", index=True)
    theme_id: int | None = Field(default=None, foreign_key="needs_themes.id")
    title: str = Field(max_length=200)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))  # what changed and why
    owner_id: str | None = Field(default=None, max_length=32)
    due_on: date | None = None
    status: str = Field(default="planned", max_length=16)  # planned | in_progress | done
    created_by: str = Field(max_length=32)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None
    card_channel: str | None = Field(default=None, max_length=32)
    card_ts: str | None = Field(default=None, max_length=32)
