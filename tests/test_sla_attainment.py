"""SLA attainment against issue 15's real deadlines (bot/services/sla_attainment.py): the team's clock
(business hours, days, holidays, time zone), the urgency's own targets and time spent waiting on the
requester; and the weekly digest's "within SLA" shares and the scorecard's `sla` part agree, because
both use it. Seeded on the real database (SQLite, and PostgreSQL with scripts/with-postgres.sh)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from bot.config import Settings, Team
from bot.render.ids import Action
from bot.services import digest_jobs, scorecard
from bot.services.digest_periods import period_ending
from bot.services.digests import team_digest
from bot.services.needs_periods import parse_quarter
from bot.services.sla import policy_for
from bot.services.sla_attainment import attainment, earliest_due, outcome, past_due
from bot.services.sla_plan import FIRST_RESPONSE, RESOLUTION
from slacksim.simulator import SlackSimulator
from storage.session import read_scope
from tests.conftest import CAROL, IT_CH, TEST_CONFIG, Harness
from tests.digest_helpers import Seeder, settings_for
from tests.sla_helpers import harness, sla_config
from tests.test_request_loop import ask, button, load

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



def test_past_due_orders_by_the_real_deadline_urgency_and_pauses_included() -> None:
    settings = settings_for("sqlite://", config("business"))
    policy = policy_for(settings, finance(settings))
    now = MONDAY_10 + timedelta(hours=3)  # Monday 13:00 in London
    normal = Rec(created_at=MONDAY_10, id=1)  # due 14:00: not yet
    high = Rec(created_at=MONDAY_10 + timedelta(hours=1), urgency="high", id=2)  # due 11:10
    reopened = Rec(created_at=FRIDAY_17, id=3, sla_cycle=1, sla_start_at=MONDAY_10 - timedelta(hours=1),
                   first_response_at=FRIDAY_17)  # new cycle Monday 09:00: due 13:00 - not past at 13:00
    paused = Rec(created_at=FRIDAY_17, id=4, sla_paused_seconds=1800)  # Fri 17-18, Mon 9-12, 30 min paused: 12:30
    answered = Rec(created_at=FRIDAY_17, id=5, first_response_at=FRIDAY_17 + timedelta(minutes=5))
    late = past_due([normal, high, reopened, paused, answered], policy, FIRST_RESPONSE, now)
    assert [(rec.id, due) for due, rec in late] == [(2, MONDAY_10 + timedelta(hours=1, minutes=10)),
                                                    (4, MONDAY_10 + timedelta(hours=2, minutes=30))]
    assert earliest_due(policy, FIRST_RESPONSE) == timedelta(minutes=10)  # the high urgency's


# -- the weekly digest's "unclaimed past SLA", through the app -------------------------------------------------
@pytest.fixture
def it_weekend(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    """IT answers 09:00-18:00 Monday to Friday in Shanghai within 1h; its digest covers Saturday to
    Saturday 10:00 Berlin (09:00 UTC, 17:00 in Shanghai)."""
    config = sla_config()
    config["teams"][1].update(digest_weekday="sat", digest_time="10:00")
    yield from harness(sim, db_url, start=datetime(2026, 12, 10, 8, 0, tzinfo=UTC), config=config)


def test_the_digest_lists_unclaimed_requests_past_their_business_clock_sla_most_overdue_first(
        it_weekend: Harness) -> None:
    """A request made Friday 17:50 has 10 business minutes on Friday and 50 on Monday: not overdue on
    Saturday (calendar time would say 22 h). Those past their SLA read "overdue 2d" as in the triage
    message, the most overdue first."""
    h = it_weekend
    ask(h, "Printer on fire", command="/ask-it")  # Thu 16:00 Shanghai: due Thu 17:00
    h.clock.set(datetime(2026, 12, 11, 2, 0, tzinfo=UTC))
    ask(h, "VPN drops", command="/ask-it")  # Fri 10:00: due Fri 11:00
    claimed = ask(h, "New laptop", command="/ask-it")
    button(h, claimed, Action.CLAIM, CAROL)
    h.clock.set(datetime(2026, 12, 11, 9, 50, tzinfo=UTC))
    ask(h, "Password reset", command="/ask-it")  # Fri 17:50: due Mon 09:50
    h.wait(lambda: load(h, claimed.id).status == "claimed")
    h.clock.set(datetime(2026, 12, 12, 9, 0, 30, tzinfo=UTC))  # Saturday, digest time
    digest_jobs.schedule_digests(h.deps)
    h.tick()
    post = h.wait(lambda: next((m for m in h.sim.messages(IT_CH)
                                if (m.get("metadata") or {}).get("event_type") == "askdesk_digest"), None),
                  timeout=20)
    section = next(b["text"]["text"] for b in post["blocks"]
                   if "Unclaimed past" in (b.get("text") or {}).get("text", ""))
    lines = section.split("\n")
    head = next(i for i, line in enumerate(lines) if "Unclaimed past" in line)
    assert lines[head] == "• Unclaimed past their first-response SLA, most overdue first: *2*"
    listed = lines[head + 1:head + 3]
    assert "Printer on fire" in listed[0] and listed[0].endswith(" — overdue 2d"), listed
    assert "VPN drops" in listed[1] and listed[1].endswith(" — overdue 1d 6h"), listed
    assert lines[head + 3].startswith("•"), lines  # Password reset (due Monday) and New laptop are not listed
