"""Issue 13, the rule, property-based: random sequences of requests, resolutions, survey answers, comments,
emoji ratings, reopenings, transfers and time passing, with releases of satisfaction figures requested at
random moments — `/askdesk digest` for a team, the scheduled team digest, the organisation digest, the
CLI's `--week` — the way a responder or a member of the leadership channel could ask for them. After
each sequence, for every shown figure and every pair of them:

- it is computed from at least the threshold of answers, and its value is what those answers give;
- two figures of the same kind are computed from the same answers or from sets at least the threshold
  apart (`differs_enough`), and a figure about one team and week has one value wherever it appears;
- nothing hidden can be derived: under a shown team total, what the shown cells leave over is empty or
  at least the threshold; the same for the organisation's total over the shown teams.

State changes go through the real services (resolve, reopen, transfer, survey answers, reactions) on the
real database; only the survey DM's delivery is recorded directly (its Slack side is tested elsewhere).
ASKDESK_PRIVACY_EXAMPLES runs more examples (default 25).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlmodel import select

from bot.analytics.privacy import GatedValue, differs_enough, effective_threshold, gate_comments
from bot.analytics.stats import csat_percent, mean
from bot.cli.digest import figures as cli_figures
from bot.services import digest_jobs, digests, feedback, ratings
from bot.services import requests as request_service
from bot.services.digest_periods import Period, last_closed_week, period_ending, period_for_week, schedule_for
from bot.services.digests import OrgDigest, TeamDigest
from bot.services.ratings import ReactionEvent
from slacksim.simulator import SlackSimulator
from storage import feedback as feedback_queries
from storage.models import Digest, Job, Person, ProcessedEvent, Reaction, Request, RequestEvent, Survey
from storage.session import session_scope
from tests.conftest import ALICE, CAROL, TEST_CONFIG, FakeClock, Harness, make_settings, start_harness
from tests.digest_helpers import Seeder

EXAMPLES = int(os.environ.get("ASKDESK_PRIVACY_EXAMPLES", "25"))
THRESHOLD = 3
TZ = "Europe/Berlin"
START = datetime(2026, 1, 11, 23, 0, tzinfo=UTC)  # Monday 12 Jan 2026, 00:00 in Berlin
TEAMS = {"finance": ALICE, "it": CAROL}  # team -> a responder
DEPARTMENTS = ("Sales", "Legal", "IT")
REQUESTERS = ("U0R1", "U0R2", "U0R3", "U0R4")
EMOJI = ("+1", "-1", "smiley", "confused", "neutral_face", "tada")
LEADS = "C0LEADS"


@pytest.fixture
def ph(sim: SlackSimulator, db_url: str) -> Iterator[Harness]:
    sim.add_channel(LEADS, name="leadership", members=["U0ADMIN", "UBOT"])
    config = {**TEST_CONFIG, "workspace": {**TEST_CONFIG["workspace"], "leadership_channel": LEADS},
              "surveys": {"anonymity_threshold": THRESHOLD}}
    harness, stop = start_harness(sim, make_settings(sim, db_url, config), clock=FakeClock(START))
    yield harness
    stop()


# -- operations ------------------------------------------------------------------------------------
scores = st.integers(1, 5)
answers = st.tuples(st.one_of(scores, scores, st.none()), st.one_of(st.none(), scores),
                   st.one_of(st.none(), st.sampled_from(["ok", "slow", "thanks <@U0ALICE>", "meh"])), st.booleans())
serve = st.tuples(st.just("serve"), st.sampled_from(list(TEAMS)), st.sampled_from(DEPARTMENTS),
                  st.sampled_from(REQUESTERS), st.one_of(answers, answers, st.none()),
                  st.one_of(st.none(), st.sampled_from(EMOJI)))
rate = st.tuples(st.just("rate"), st.integers(0, 30), st.sampled_from(EMOJI), st.booleans(), st.booleans())
ops = st.one_of(
    serve, serve, rate, rate, rate,  # listed more than once: drawn more often
    st.tuples(st.just("ask"), st.sampled_from(list(TEAMS)), st.sampled_from(DEPARTMENTS),
              st.sampled_from(REQUESTERS)),
    st.tuples(st.just("resolve"), st.integers(0, 30)),
    st.tuples(st.just("answer"), st.integers(0, 30), answers),
    st.tuples(st.just("reopen"), st.integers(0, 30)),
    st.tuples(st.just("transfer"), st.integers(0, 30)),
    st.tuples(st.just("wait"), st.integers(1, 80)),
    st.tuples(st.just("release"), st.sampled_from(["now", "scheduled", "org", "week", "org-week"]),
              st.sampled_from(list(TEAMS)), st.integers(0, 3)),
)


@dataclass
class World:
    h: Harness
    requests: list[Request] = field(default_factory=list)
    shown: list[tuple[str, GatedValue[Any], Period]] = field(default_factory=list)  # (where, figure, week)
    csat: dict[tuple[str, str], set[float | None]] = field(default_factory=lambda: defaultdict(set))

    @property
    def now(self) -> datetime:
        return self.h.clock()

    def pick(self, i: int) -> Request | None:
        return self.requests[i % len(self.requests)] if self.requests else None

    def current(self, req: Request) -> Request:
        with session_scope(self.h.deps.engine) as s:
            found = s.get(Request, req.id)
            assert found is not None
            return found


def reset(h: Harness) -> None:
    with session_scope(h.deps.engine) as s:
        for table in (Reaction, Survey, RequestEvent, Job, Digest, ProcessedEvent, Person, Request):
            s.exec(delete(table))  # type: ignore[call-overload]
    h.clock.set(START)


def deliver(w: World, req: Request) -> None:
    """The survey DM went out now (what surveys.send records once Slack accepted it)."""
    with session_scope(w.h.deps.engine) as s:
        survey = feedback_queries.surveys_of(s, req.id)[-1]
        if feedback_queries.set_status(s, survey_id=survey.id, status="sending"):  # type: ignore[arg-type]
            feedback_queries.mark_sent(s, survey_id=survey.id, user_id=survey.user_id,  # type: ignore[arg-type]
                                       channel="D0SURVEY", ts=f"{survey.id}.000100", sent_at=w.now,
                                       expires_at=w.now + w.h.deps.settings.surveys.expire_after)


def apply(w: World, op: tuple[Any, ...]) -> None:
    deps, kind = w.h.deps, op[0]
    if kind in ("ask", "serve"):  # serve: asked, resolved, surveyed and (perhaps) answered at once
        w.requests.append(Seeder(deps.engine).request(created=w.now, team=op[1], department=op[2], requester=op[3]))
        if kind == "serve":
            apply(w, ("resolve", len(w.requests) - 1))
            if op[4] is not None:
                apply(w, ("answer", len(w.requests) - 1, op[4]))
            if op[5] is not None:  # and rated by the person who asked
                apply(w, ("rate", len(w.requests) - 1, op[5], True, True))
        return
    if kind == "wait":
        w.h.clock.advance(hours=op[1])
        return
    if kind == "release":
        release(w, op[1], op[2], op[3])
        return
    req = w.pick(op[1])
    if req is None:
        return
    req = w.current(req)
    if kind == "resolve":
        if request_service.resolve(deps, request_id=req.id, actor=TEAMS[req.team]).ok and \
                w.current(req).status == "resolved":
            deliver(w, req)
    elif kind == "answer":
        with session_scope(deps.engine) as s:
            surveys = feedback_queries.surveys_of(s, req.id)
        if surveys:
            score, dimension, comment, anonymous = op[2]
            values: dict[str, Any] = {"responsiveness": dimension, "comment": comment, "comment_anonymous": anonymous}
            if score is not None:
                values["score"] = score
            feedback.answer(deps, survey_id=surveys[-1].id, user=req.requester_id, values=values)  # type: ignore[arg-type]
    elif kind == "rate":
        user = req.requester_id if op[4] else TEAMS[req.team]
        ratings.record(deps, ReactionEvent(added=op[3], user=user, emoji=op[2], channel=req.triage_channel or "",
                                           ts=req.triage_ts or ""))
    elif kind == "reopen":
        request_service.reopen(deps, request_id=req.id, actor=req.requester_id)
    elif kind == "transfer":
        to = next(t for t in TEAMS if t != req.team)
        request_service.transfer(deps, request_id=req.id, actor=TEAMS[req.team], to_team=to)


# -- releases ----------------------------------------------------------------------------------------
def release(w: World, kind: str, slug: str, back: int) -> None:
    deps, now = w.h.deps, w.now
    settings = deps.settings
    target = digest_jobs.target_for(settings, "*" if kind == "org" else slug)
    assert target is not None
    if kind == "now":  # `/askdesk digest <team>`: what bot.services.digest_access computes
        result: Any = digests.team_digest(deps.engine, settings, target.team, period_ending(now, TZ),  # type: ignore[arg-type]
                                          now=now)
    elif kind in ("week", "org-week"):  # `askdesk digest --team <team or *> --week <key>` (--json / --dry-run)
        target = digest_jobs.target_for(settings, "*" if kind == "org-week" else slug)
        assert target is not None
        latest = digest_jobs.latest_period(settings, target, now).shifted(-back)
        period = period_for_week(latest.week, schedule_for(settings, target.team))
        result = cli_figures(deps.engine, settings, [(target, period)], now=now)[0]
    else:  # the scheduled team or organisation digest, as the job computes it
        result = digest_jobs.figures(deps, target, digest_jobs.latest_period(settings, target, now))
    closed = last_closed_week(now, TZ)
    teams = result.teams if isinstance(result, OrgDigest) else [result]
    for d in teams:
        assert d.satisfaction.week.end <= closed.end  # never a week that is still running
        record_team(w, f"{kind}:{d.team}@{now:%m-%d %H}", d)
    if isinstance(result, OrgDigest):
        record_org(w, f"org@{now:%m-%d %H}", result)


def record_team(w: World, where: str, d: TeamDigest) -> None:
    s = d.satisfaction
    week = s.week.week
    for name, value in [("average", s.average), ("csat", s.csat), ("ratings", s.ratings),
                        ("comments", s.comments), *s.dimensions.items()]:
        if not value.suppressed:
            w.shown.append((f"{where}:{name}", value, s.week))
    w.csat[(d.team, week)].add(s.csat.value)
    w.csat[(d.team, s.week.previous.week)].add(s.csat_prev.value)
    assert d.weeks[-1].csat == s.csat.value and d.weeks[-2].csat == s.csat_prev.value  # the chart agrees
    for k, point in enumerate(d.weeks):  # each chart point is that week's CSAT, the same everywhere
        w.csat[(d.team, s.week.shifted(k - len(d.weeks) + 1).week)].add(point.csat)


def record_org(w: World, where: str, o: OrgDigest) -> None:
    limit, week = effective_threshold(THRESHOLD), o.feedback_week
    assert week is not None
    for cell, value in o.matrix_csat.items():
        if not value.suppressed:
            w.shown.append((f"{where}:cell:{cell}", value, week))
    if not o.csat.suppressed:
        w.shown.append((f"{where}:overall", o.csat, week))
    rows = {d.team: d.satisfaction.csat for d in o.teams}
    for team, row in rows.items():  # what the shown cells leave of a shown team: nothing or enough
        if not row.suppressed:
            cells = [v for (_, t), v in o.matrix_csat.items() if t == team and not v.suppressed]
            rest = row.basis - frozenset().union(*(c.basis for c in cells))
            assert not rest or len(rest) >= limit, (team, rest)
    if not o.csat.suppressed:  # ... and of the organisation's total over the shown teams
        rest = o.csat.basis - frozenset().union(*(r.basis for r in rows.values() if not r.suppressed))
        assert not rest or len(rest) >= limit, rest


# -- checks ------------------------------------------------------------------------------------------
def ids(value: GatedValue[Any], kind: str) -> list[int]:
    return sorted(int(b.split(":", 1)[1]) for b in value.basis if b.startswith(f"{kind}:"))


def recomputed(w: World, value: GatedValue[Any], name: str, week: Period) -> Any:
    """The figure computed again, independently, from the rows its basis names — after checking that
    each of those rows belongs to the figure's week (and, for ratings, that each is a different
    request's rating by its requester)."""
    with session_scope(w.h.deps.engine) as s:
        if name == "ratings":
            rows = s.exec(select(Reaction).where(Reaction.id.in_(ids(value, "rating")))).all()  # type: ignore[union-attr]
            assert len({r.request_id for r in rows}) == len(rows) == len(value.basis)  # once per request
            assert all(r.is_requester and week.start <= r.created_at < week.end for r in rows)
            assert all(r.removed_at is None or r.removed_at >= week.end for r in rows)
            scores = [r.score for r in rows]
            return {str(n): scores.count(n) for n in range(5, 0, -1) if n in scores}
        kind = {"average": "score", "csat": "score", "cell": "score", "overall": "score",
                "comments": "comment"}.get(name, name)
        surveys = s.exec(select(Survey).where(Survey.id.in_(ids(value, kind)))).all()  # type: ignore[union-attr]
        assert len(surveys) == len(value.basis)
        assert all(x.answered_at and x.expires_at and week.start <= x.expires_at < week.end for x in surveys)
        if name == "comments":
            assert all(x.comment_anonymous for x in surveys)
            return sorted(gate_comments([x.comment or "" for x in surveys], threshold=THRESHOLD).value or [])
        if name == "average":
            return mean([x.score for x in surveys])
        if name in ("csat", "cell", "overall"):
            return csat_percent([x.score for x in surveys])
        return mean([getattr(x, name) for x in surveys])


def check(w: World) -> None:
    limit = effective_threshold(THRESHOLD)
    for where, value, week in w.shown:
        assert len(value.basis) >= limit and value.count >= limit, where
        name = where.rsplit(":", 1)[-1] if ":cell:" not in where else "cell"
        got = recomputed(w, value, name, week)
        if name == "comments":
            assert got == sorted(value.value), where
        else:
            assert got == pytest.approx(value.value), (where, got, value.value)
    for i, (where_a, a, _) in enumerate(w.shown):
        for where_b, b, _ in w.shown[i + 1:]:
            assert differs_enough(a.basis, b.basis, THRESHOLD), (where_a, where_b, sorted(a.basis ^ b.basis))
    for key, values in w.csat.items():
        assert len(values) == 1, (key, values)  # one team, one week: one CSAT (or hidden) everywhere


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(blocks=st.lists(st.tuples(st.lists(serve, min_size=2, max_size=8), st.lists(ops, max_size=16)),
                      min_size=1, max_size=4))
def test_no_two_releases_single_anyone_out(ph: Harness, blocks: list[tuple[list[Any], list[Any]]]) -> None:
    """Blocks of requests served one after another, each followed by random other steps (so that most
    weeks get enough answers to show figures at all)."""
    reset(ph)
    w = World(ph)
    for served, steps in blocks:
        for step in [*served, *steps]:
            apply(w, step)
    ph.clock.advance(days=8)  # finally: everything closes, and every kind of release is asked for once more,
    weeks = (ph.clock() - START).days // 7 + 2  # the CLI's for every week since the start
    for kind in ("now", "scheduled", "org"):
        for team in TEAMS:
            release(w, kind, team, 0)
    for back in range(weeks):
        release(w, "org-week", "finance", back)
        for team in TEAMS:
            release(w, "week", team, back)
    check(w)


def test_the_property_harness_sees_shown_figures(ph: Harness) -> None:
    """A fixed sequence with enough answers in one week: the checks above have something to check."""
    reset(ph)
    w = World(ph)
    steps: list[tuple[Any, ...]] = []
    for i in range(6):
        steps += [("ask", "finance", DEPARTMENTS[i % 2], REQUESTERS[i % 4]), ("resolve", i),
                  ("answer", i, (5 - i % 4, 4, f"comment {i}", True)), ("rate", i, "+1", True, True)]
    steps += [("wait", 80)] * 3 + [("release", "org", "finance", 0), ("release", "now", "finance", 0)]
    for step in steps:
        apply(w, step)
    check(w)
    names = {where.split(":", 2)[-1] for where, _, _ in w.shown}
    assert {"csat", "average", "ratings", "comments", "responsiveness", "overall"} <= names
    assert any(":cell:" in where for where, _, _ in w.shown)
