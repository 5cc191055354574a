"""SLA attainment against issue 15's real deadlines (bot/services/sla_attainment.py): the team's clock
(business hours, days, holidays, time zone), the urgency's own targets and time spent waiting on the
requester; and the weekly digest's "within SLA" shares and the scorecard's `sla` part agree, because
both use it. Seeded on the real database (SQLite, and PostgreSQL with scripts/with-postgres.sh)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.config import Settings, Team
from bot.services import scorecard
from bot.services.digest_periods import period_ending
from bot.services.digests import team_digest
from bot.services.needs_periods import parse_quarter
from bot.services.sla import policy_for
from bot.services.sla_attainment import attainment, outcome
from bot.services.sla_plan import FIRST_RESPONSE, RESOLUTION
from storage.session import read_scope
from tests.conftest import TEST_CONFIG
from tests.digest_helpers import Seeder, settings_for

FRIDAY_17 = datetime(2026, 1, 9, 17, 0, tzinfo=UTC)  # London = UTC in January
MONDAY_10 = datetime(2026, 1, 12, 10, 0, tzinfo=UTC)


def config(clock: str) -> dict[str, Any]:
    """Finance with a 4h first response and 2d resolution on `clock`; high urgency 10m / 4h."""
    cfg = copy.deepcopy(TEST_CONFIG)
    cfg["teams"][0].update({"sla_clock": clock, "timezone": "Europe/London", "hours": "09:00-18:00",
                            "days": "mon-fri", "first_response_sla": "4h", "resolution_sla": "2d",
                            "urgency": {"high": {"first_response_sla": "10m", "resolution_sla": "4h"}}})
    return cfg


def finance(settings: Settings) -> Team:
    team = settings.team("finance")
    assert team is not None
    return team


@dataclass
class Rec:
    """The stored columns of one request, as attainment reads them."""

    created_at: datetime
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    status: str = "open"
    urgency: str = "normal"
    id: int | None = 1
    sla_cycle: int = 0
    sla_start_at: datetime | None = None
    sla_responded_at: datetime | None = None
    sla_paused_seconds: int = 0
    waiting_since: datetime | None = None


@pytest.mark.parametrize(("clock", "met"), [("business", True), ("calendar", False)])
def test_asked_friday_17_answered_monday_10_against_a_4h_sla(clock: str, met: bool) -> None:
    settings = settings_for("sqlite://", config(clock))
    policy = policy_for(settings, finance(settings))
    rec = Rec(created_at=FRIDAY_17, first_response_at=MONDAY_10, status="claimed")
    # business: Friday 17-18 and Monday 9-10 are 2 working hours; calendar: 65 hours
    assert outcome(rec, policy, FIRST_RESPONSE, MONDAY_10) is met


def test_a_high_urgency_request_is_measured_against_its_own_sla() -> None:
    settings = settings_for("sqlite://", config("business"))
    policy = policy_for(settings, finance(settings))
    answered = MONDAY_10 + timedelta(minutes=30)
    normal = Rec(created_at=MONDAY_10, first_response_at=answered, status="claimed")
    high = Rec(created_at=MONDAY_10, first_response_at=answered, status="claimed", urgency="high")
    assert outcome(normal, policy, FIRST_RESPONSE, answered) is True  # 30 min of 4 h
    assert outcome(high, policy, FIRST_RESPONSE, answered) is False  # 30 min of 10 min
    resolved = Rec(created_at=MONDAY_10, first_response_at=answered, resolved_at=MONDAY_10 + timedelta(hours=6),
                   status="resolved", urgency="high")
    assert outcome(resolved, policy, RESOLUTION, MONDAY_10 + timedelta(days=1)) is False  # 6 h of 4 h
    assert outcome(Rec(**{**resolved.__dict__, "urgency": "normal"}), policy, RESOLUTION,
                   MONDAY_10 + timedelta(days=1)) is True  # 6 h of 2 working days


def test_time_waiting_on_the_requester_does_not_count_and_pending_targets_are_left_out() -> None:
    settings = settings_for("sqlite://", config("calendar"))
    policy = policy_for(settings, finance(settings))
    resolved = MONDAY_10 + timedelta(days=3)  # 72 h against 2 d, of which 30 h waiting on the requester
    waited = Rec(created_at=MONDAY_10, first_response_at=MONDAY_10 + timedelta(hours=1), resolved_at=resolved,
                 status="resolved", sla_paused_seconds=30 * 3600)
    assert outcome(waited, policy, RESOLUTION, resolved) is True
    assert outcome(Rec(**{**waited.__dict__, "sla_paused_seconds": 0}), policy, RESOLUTION, resolved) is False
    still_waiting = Rec(created_at=MONDAY_10, first_response_at=MONDAY_10 + timedelta(hours=1),
                        status="claimed", waiting_since=MONDAY_10 + timedelta(hours=2))
    # 3 days on, but waiting on the requester since hour 2: not breached, not met — left out
    assert outcome(still_waiting, policy, RESOLUTION, MONDAY_10 + timedelta(days=3)) is None
    shares = attainment([waited, still_waiting, Rec(created_at=MONDAY_10)], policy, MONDAY_10 + timedelta(hours=5))
    assert (shares[FIRST_RESPONSE].met, shares[FIRST_RESPONSE].measured) == (2, 3)  # the unanswered one is late
    assert (shares[RESOLUTION].met, shares[RESOLUTION].measured) == (1, 1)


@pytest.mark.parametrize(("clock", "share"), [("business", 100.0), ("calendar", 0.0)])
def test_the_digest_and_the_scorecard_measure_the_same_deadlines(engine: Engine, db_url: str, clock: str,
                                                                 share: float) -> None:
    settings = settings_for(db_url, config(clock))
    team = finance(settings)
    seed = Seeder(engine)
    seed.request(created=FRIDAY_17, first_response=MONDAY_10 - FRIDAY_17,
                 resolved=MONDAY_10 + timedelta(hours=3) - FRIDAY_17)
    now = datetime(2026, 4, 2, tzinfo=UTC)
    digest = team_digest(engine, settings, team, period_ending(datetime(2026, 1, 14, tzinfo=UTC), "UTC"), now=now)
    # the first response took 65 calendar hours (2 working hours); resolved 68 h (5 working hours) after
    assert digest.first_response.within_sla == share and digest.resolution.within_sla == share
    with read_scope(engine) as session:
        card = scorecard.compute(session, settings, parse_quarter("2026-Q1", "UTC"), now)
    finance_score = next(s for s in card.teams if s.team == "finance")
    assert finance_score.sla == share and finance_score.sla_targets == 2

