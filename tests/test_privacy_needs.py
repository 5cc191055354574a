"""Issue 17, the differencing rule across needs-survey rounds, reports and the scorecard, property-based.

Random rounds of two teams over two quarters (overlapping ad-hoc rounds, the same people invited to
several, scores, written answers shared or not) are answered through the real answer service, closed one
by one by the real close step, then answered late (refused) and purged. After every step every view a
person can obtain is taken again: each closed round's report (the posts to the team's and the leadership
channel and `askdesk needs report --json` all render one `NeedsReport`) and the scorecard of both quarters
(its post and `askdesk scorecard`, the same `Scorecard`). Then, over all views from all moments:

- a shown score is computed from at least the threshold of answers, and its value is what they give;
- two shown figures of the same kind (a round's overall score and a quarter's needs score are one kind)
  come from the same answers or from sets at least the threshold apart (`differs_enough`), and one set of
  answers has one value wherever it appears;
- nothing hidden can be worked out: a quarter's needs score is made only of rounds whose own overall
  score is shown; a theme is shown only with at least the threshold of people, the same theme (label,
  people) in every view of its round, and its quotes only ever disappear (purge), never change.

ASKDESK_PRIVACY_EXAMPLES runs more examples (default 25).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import select

from bot.analytics.privacy import GatedValue, differs_enough, effective_threshold
from bot.analytics.stats import mean
from bot.config import Settings
from bot.render import needs_text
from bot.services import needs, needs_invites, needs_report, purge, scorecard
from bot.services.needs_periods import parse_quarter
from storage import needs as queries
from storage.models import Job, NeedsAction, NeedsAnswer, NeedsInvitation, NeedsRound, NeedsTheme
from storage.session import session_scope
from tests.conftest import TEST_CONFIG
from tests.digest_helpers import settings_for

EXAMPLES = int(os.environ.get("ASKDESK_PRIVACY_EXAMPLES", "25"))
THRESHOLD = 3
TEAMS = ("finance", "it")
PEOPLE = tuple(f"U0N{i}" for i in range(9))
QUARTERS = {"2026-Q1": datetime(2026, 1, 1, tzinfo=UTC), "2026-Q2": datetime(2026, 4, 1, tzinfo=UTC)}
WORDS = ("expense report rules unclear", "expense report approvals slow", "laptop delivery slow",
         "报销 审批 太慢", "报销 规则 不清楚", "ok")
SCORE_KINDS = {"overall": "overall", "communication": "communication", "transparency": "transparency",
               "support": "support"}


@pytest.fixture
def needs_settings(db_url: str) -> Settings:
    config = copy.deepcopy(TEST_CONFIG)
    config["workspace"]["leadership_channel"] = "C0LEADS"
    config["surveys"] = {"anonymity_threshold": THRESHOLD}
    for team in config["teams"][:2]:
        team.update({"needs_survey": "quarterly"})
    return settings_for(db_url, config)


# -- generated histories ----------------------------------------------------------------------------
score = st.one_of(st.none(), st.integers(1, 5), st.integers(1, 5))
answer = st.one_of(st.none(), st.tuples(score, score, st.one_of(st.none(), st.sampled_from(WORDS)), st.booleans()))
round_plan = st.tuples(st.sampled_from(TEAMS), st.sampled_from(list(QUARTERS)), st.integers(0, 70),
                       st.lists(st.tuples(st.sampled_from(PEOPLE), answer), min_size=1, max_size=9,
                                unique_by=lambda item: item[0]),
                       st.lists(st.sampled_from(PEOPLE), max_size=2))  # who tries to answer after the close


@dataclass
class World:
    engine: Engine
    settings: Settings
    now: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    shown: list[tuple[str, str, GatedValue[float]]] = field(default_factory=list)  # (where, kind, value)
    rounds_in: dict[str, list[tuple[int, GatedValue[float]]]] = field(default_factory=dict)  # scorecard where
    themes: dict[int, list[tuple[str, int, tuple[str, ...]]]] = field(default_factory=dict)  # round -> views
    values: dict[str, int | None] = field(default_factory=dict)  # "needs:<answer id>" -> overall

    @property
    def deps(self) -> Any:
        """What the answer and close steps use of the running app: the database, the settings, the clock."""
        return SimpleNamespace(engine=self.engine, settings=self.settings, now=lambda: self.now)


def reset(engine: Engine) -> None:
    with session_scope(engine) as s:
        for table in (NeedsAction, NeedsTheme, NeedsAnswer, NeedsInvitation, NeedsRound, Job):
            s.exec(delete(table))  # type: ignore[call-overload]


def open_round(w: World, n: int, plan: tuple[Any, ...]) -> int:
    team, quarter, day, invited, _late = plan
    opens = QUARTERS[quarter] + timedelta(days=day, hours=n)
    with session_scope(w.engine) as s:
        round_id = queries.create_round(s, team=team, key=f"{quarter}-{n + 2}", cadence="adhoc", opens_at=opens,
                                        closes_at=opens + timedelta(days=14), audience_start=opens,
                                        audience_end=opens, intro=None)
        assert round_id is not None
        created = queries.add_invitations(s, round_id=round_id, people=[(u, "audience", opens) for u, _ in invited])
        for inv_id in created.values():
            queries.set_invitation_status(s, invitation_id=inv_id, status="sending")
            queries.mark_invitation_sent(s, invitation_id=inv_id, channel="D0", ts="1.0", sent_at=opens)
    w.now = opens + timedelta(hours=1)
    for user, answered in invited:
        if answered is None:
            continue
        overall, communication, text, shareable = answered
        values = {"overall": overall, "communication": communication, "obstacle": text, "shareable": shareable}
        if overall is None and communication is None and text is None:
            continue
        outcome = needs_invites.answer(w.deps, invitation_id=created[user], user=user, values=values)
        assert outcome.ok, outcome.message
    return round_id


def late_answers(w: World, round_id: int, people: list[str]) -> None:
    with session_scope(w.engine) as s:
        invited = {i.user_id: i.id for i in queries.invitations_of(s, round_id=round_id)}
    for user in people:
        if user in invited:
            outcome = needs_invites.answer(w.deps, invitation_id=invited[user] or 0, user=user, values={"overall": 1})
            assert not outcome.ok  # the round is closed: nothing changes


def look(w: World, moment: str) -> None:
    """Every view anyone can obtain now: each closed round's report, each quarter's scorecard."""
    with session_scope(w.engine) as s:
        w.values.update({f"needs:{a.id}": a.overall for a in s.exec(select(NeedsAnswer)).all()})
        rounds = [r for r in s.exec(select(NeedsRound)).all() if r.status != "open"]
        for rnd in rounds:
            report = needs_report.build(s, w.settings, rnd)
            data = needs_text.report_json(report)  # what `askdesk needs report --json` prints
            for name, kind in SCORE_KINDS.items():
                value = report.scores[name].value
                assert data["scores"][name]["value"] == (None if value.suppressed else value.value)
                if not value.suppressed:
                    w.shown.append((f"{moment}:round {rnd.key} {rnd.team}:{name}", kind, value))
            w.themes.setdefault(rnd.id or 0, []).append(
                tuple((t.label, t.people, tuple(t.quotes)) for t in report.themes))  # type: ignore[arg-type]
        for key in QUARTERS:
            card = scorecard.compute(s, w.settings, parse_quarter(key, "UTC"), w.now)
            data = needs_text.scorecard_json(card)  # what `askdesk scorecard --format json` prints
            for team_score, team_data in zip(card.teams, data["teams"], strict=True):
                value = team_score.needs_score
                assert team_data["needs_score"]["value"] == (None if value.suppressed else value.value)
                if not value.suppressed and value.value is not None:
                    where = f"{moment}:scorecard {key} {team_score.team}"
                    w.shown.append((where, "overall", value))
                    w.rounds_in[where] = [(r.id or 0, needs_report.build(s, w.settings, r).scores["overall"].value)
                                          for r in rounds if r.team == team_score.team
                                          and QUARTERS[key] <= r.opens_at < parse_quarter(key, "UTC").end]


def check(w: World) -> None:
    limit = effective_threshold(THRESHOLD)
    for where, kind, value in w.shown:
        assert len(value.basis) >= limit and value.count == len(value.basis), where
        if kind == "overall":
            assert mean([w.values[a] for a in value.basis]) == pytest.approx(value.value), where  # type: ignore[misc]
    for i, (where_a, kind_a, a) in enumerate(w.shown):
        for where_b, kind_b, b in w.shown[i + 1:]:
            if kind_a == kind_b:
                assert differs_enough(a.basis, b.basis, THRESHOLD), (where_a, where_b, sorted(a.basis ^ b.basis))
                if a.basis == b.basis:
                    assert a.value == pytest.approx(b.value), (where_a, where_b)
    for where, parts in w.rounds_in.items():  # a quarter's score is made only of rounds shown on their own
        value = next(v for at, _, v in w.shown if at == where)
        hidden = [rid for rid, own in parts if own.suppressed]
        with session_scope(w.engine) as s:
            hidden_answers = {f"needs:{a.id}" for a in s.exec(select(NeedsAnswer)).all() if a.round_id in hidden}
        assert not value.basis & hidden_answers, where
    for round_id, views in w.themes.items():
        first = views[0]
        for view in views:
            assert [(label, people) for label, people, _ in view] == [(label, people) for label, people, _ in first]
            assert all(people >= limit for _, people, _ in view), round_id
            for (_, _, quotes), (_, _, before) in zip(view, first, strict=True):
                assert quotes in (before, ()), round_id  # the same quotes, or none after a purge


def run(w: World, plans: list[tuple[Any, ...]]) -> None:
    ids = [open_round(w, n, plan) for n, plan in enumerate(plans)]
    with session_scope(w.engine) as s:
        order = sorted((queries.get_round(s, i).closes_at, i, plans[n][4])  # type: ignore[union-attr]
                       for n, i in enumerate(ids))
    for closes_at, round_id, late in order:
        w.now = max(w.now, closes_at + timedelta(minutes=1))
        look(w, f"before {round_id} closes")
        needs.close(w.deps, {"round_id": round_id}, None)  # type: ignore[arg-type]
        look(w, f"after {round_id} closed")
        late_answers(w, round_id, late)
        look(w, f"after late answers to {round_id}")
    w.now += timedelta(days=2)
    purge.purge(w.engine, older_than=timedelta(days=1), now=w.now)
    look(w, "after the purge")


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(plans=st.lists(round_plan, min_size=1, max_size=5))
def test_no_two_needs_views_single_anyone_out(engine: Engine, needs_settings: Settings,
                                              plans: list[tuple[Any, ...]]) -> None:
    reset(engine)
    w = World(engine, needs_settings)
    run(w, plans)
    check(w)


def test_the_needs_property_harness_sees_shown_figures(engine: Engine, needs_settings: Settings) -> None:
    """A fixed history with enough answers: the checks above have rounds, quarters and themes to check."""
    reset(engine)
    w = World(engine, needs_settings)
    many = [(u, (4 + i % 2, 3, WORDS[i % 2], True)) for i, u in enumerate(PEOPLE[:6])]
    few = [(u, (1, None, None, True)) for u in PEOPLE[6:8]]
    run(w, [("finance", "2026-Q1", 5, many, [PEOPLE[0]]), ("finance", "2026-Q1", 40, few, []),
            ("finance", "2026-Q1", 50, many, [])])
    check(w)
    kinds = {(where.split(":")[1].split(" ")[0], kind) for where, kind, _ in w.shown}
    assert {("round", "overall"), ("round", "communication"), ("scorecard", "overall")} <= kinds
    assert any(view and view[0][2] for views in w.themes.values() for view in views)  # quotes were shown
    assert any(w.rounds_in.values())
