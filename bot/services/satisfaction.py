"""Satisfaction figures: the one place that computes them, always for a *closed feedback week*.

Every report — the weekly team digest, `/askdesk digest`, the organisation digest, the charts and the
CLI's text and JSON — takes its satisfaction figures from `compute` for a closed week, so whatever
route someone takes they only ever see whole weeks (see docs/privacy.md):

- a feedback week runs Monday 00:00 to Monday 00:00 in the workspace time zone and is closed once it
  has ended; its answers and ratings can no longer change then (storage/feedback_weeks.py), so its
  figures are the same whenever and however they are asked for, and two weeks share no answer;
- each figure passes the gate (bot/analytics/privacy.py): at least the threshold of answers (comments:
  of comments); in the department x team matrix the cells hidden under a shown team add up to nothing
  or to at least the threshold, and the organisation's total leaves out hidden teams that add up to
  less than the threshold.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlmodel import Session

from bot.analytics.privacy import (
    Basis,
    GatedValue,
    complementary,
    effective_threshold,
    gate,
    gate_breakdown,
    gate_comments,
    hidden,
)
from bot.analytics.stats import csat_percent, mean
from bot.config import Settings
from bot.services.digest_periods import WEEKS_IN_CHART, Period, last_closed_week
from storage import feedback_weeks as q

DIMENSIONS = q.DIMENSIONS
T = TypeVar("T")


@dataclass(frozen=True)
class Satisfaction:
    """One team's satisfaction in one closed feedback week."""

    week: Period
    threshold: int
    responses: int  # surveys answered among those that closed in the week
    sent: int  # surveys that closed in the week
    response_rate: float | None  # percent
    average: GatedValue[float]
    csat: GatedValue[float]
    csat_prev: GatedValue[float]  # the week before
    dimensions: dict[str, GatedValue[float]]
    ratings: GatedValue[dict[str, int]]  # requests rated per score "5".."1"
    comments: GatedValue[list[str]]

    @property
    def suppressed(self) -> bool:
        return self.csat.suppressed


@dataclass(frozen=True)
class WeekFeedback:
    """The satisfaction of some teams in one closed week, with the department x team matrix."""

    week: Period
    teams: dict[str, Satisfaction]
    cells: dict[tuple[str, str], GatedValue[float]]  # (department, team) -> CSAT
    overall: GatedValue[float]  # CSAT over the teams (see `_overall`)
    trend: dict[str, list[GatedValue[float]]]  # per team, CSAT of the chart's weeks ending with this one


def closed_week(settings: Settings, moment: datetime) -> Period:
    """The feedback week a report made at `moment` shows: the latest one that had ended by then."""
    return last_closed_week(moment, settings.workspace.timezone)


def _gated(answers: Sequence[q.ClosedSurvey], kind: str, key: Callable[[q.ClosedSurvey], int | None],
           value: Callable[[list[int | None]], T | None], threshold: int) -> GatedValue[T]:
    """`value` of the answers' `key`s, gated; its basis names each answer as "<kind>:<survey id>"."""
    values = [key(a) for a in answers]
    basis: Basis = frozenset(f"{kind}:{a.id}" for a in answers)
    return gate(value(values) if values else None, count=len(values), threshold=threshold, basis=basis)


def _csat(answers: Sequence[q.ClosedSurvey], threshold: int) -> GatedValue[float]:
    return _gated(answers, "score", lambda a: a.score, csat_percent, threshold)


def _team(week: Period, threshold: int, surveys: list[q.ClosedSurvey], rated: list[q.Rating],
          trend: list[GatedValue[float]]) -> Satisfaction:
    answered = [s for s in surveys if s.answered]
    scored = [s for s in answered if s.score is not None]
    dims = {}
    for i, name in enumerate(DIMENSIONS):
        given = [s for s in answered if s.dimensions[i] is not None]
        dims[name] = _gated(given, name, lambda s, i=i: s.dimensions[i], mean, threshold)
    by_score = {str(n): sum(1 for r in rated if r.score == n) for n in range(5, 0, -1)}
    with_comment = [s for s in answered if s.comment]
    return Satisfaction(
        week=week, threshold=effective_threshold(threshold), responses=len(answered), sent=len(surveys),
        response_rate=100.0 * len(answered) / len(surveys) if surveys else None,
        average=_gated(scored, "score", lambda s: s.score, mean, threshold),
        csat=_csat(scored, threshold), csat_prev=trend[-2],
        dimensions=dims,
        ratings=gate_breakdown({k: n for k, n in by_score.items() if n}, threshold=threshold,
                               basis=frozenset(f"rating:{r.id}" for r in rated)),
        comments=gate_comments([s.comment or "" for s in with_comment], threshold=threshold,
                               basis=frozenset(f"comment:{s.id}" for s in with_comment)))


def _cells(team: str, scored: list[q.ClosedSurvey], shown: bool,
           threshold: int) -> dict[tuple[str, str], GatedValue[float]]:
    """The team's department cells; when the team's own figure is shown, the hidden cells under it add
    up to nothing or to at least the threshold (else the team minus its shown cells would reveal them)."""
    by_department: dict[str, list[q.ClosedSurvey]] = defaultdict(list)
    for s in scored:
        by_department[s.department].append(s)
    cells = {(dept, team): _csat(answers, threshold) for dept, answers in by_department.items()}
    if shown:
        for dept in complementary({d: len(a) for d, a in by_department.items()}, threshold=threshold):
            cells[(dept, team)] = hidden(cells[(dept, team)])
    return cells


def _total(parts: Sequence[list[q.ClosedSurvey]], threshold: int) -> GatedValue[float]:
    """CSAT over parts that are shown on their own (teams of a week, weeks of a quarter) — except that the
    parts whose own figure is hidden are left out when together they have fewer than the threshold of
    answers (the total minus the shown parts would reveal them)."""
    limit = effective_threshold(threshold)
    hidden_parts = [p for p in parts if len(p) < limit]
    left_out = 0 < sum(len(p) for p in hidden_parts) < limit
    return _csat([s for p in parts if not (left_out and len(p) < limit) for s in p], threshold)


def compute(session: Session, settings: Settings, week: Period, teams: Sequence[str]) -> WeekFeedback:
    """The satisfaction of `teams` in the (closed) feedback `week`, with its chart trend."""
    threshold = settings.surveys.anonymity_threshold
    surveys: dict[str, list[q.ClosedSurvey]] = {t: [] for t in teams}
    for s in q.closed_surveys(session, teams, week.start, week.end):
        surveys[s.team].append(s)
    rated: dict[str, list[q.Rating]] = {t: [] for t in teams}
    for r in q.ratings(session, teams, week.start, week.end):
        rated[r.team].append(r)
    counts = q.score_counts(session, teams, week.chart_bounds(WEEKS_IN_CHART))
    trend = {t: [gate(100.0 * good / n if n else None, count=n, threshold=threshold) for n, good in counts[t]]
             for t in teams}
    figures = {t: _team(week, threshold, surveys[t], rated[t], trend[t]) for t in teams}
    scored = {t: [s for s in surveys[t] if s.answered and s.score is not None] for t in teams}
    cells: dict[tuple[str, str], GatedValue[float]] = {}
    for t in teams:
        cells.update(_cells(t, scored[t], not figures[t].csat.suppressed, threshold))
    return WeekFeedback(week=week, teams=figures, cells=cells, overall=_total(list(scored.values()), threshold),
                        trend=trend)


def weeks_ending_in(settings: Settings, start: datetime, end: datetime) -> list[Period]:
    """The feedback weeks that end in (start, end]: a longer period's (a quarter's) own weeks, so that every
    week belongs to exactly one of them and all of them have ended when the period has."""
    week = last_closed_week(end, settings.workspace.timezone)
    weeks = []
    while week.end > start:
        weeks.append(week)
        week = week.previous
    return weeks[::-1]


@dataclass(frozen=True)
class Span:
    """One team's pulse surveys over several closed feedback weeks (e.g. a quarter)."""

    csat: GatedValue[float]
    closed: int  # surveys that closed in those weeks
    answered: int


def over_weeks(session: Session, settings: Settings, team: str, weeks: Sequence[Period]) -> Span:
    """The team's CSAT over `weeks`: the union of their answers, except weeks whose own CSAT is hidden
    when together they have fewer than the threshold (the total minus the shown weeks would reveal them).
    Only meaningful once the last of the weeks has ended."""
    threshold = settings.surveys.anonymity_threshold
    if not weeks:
        return Span(gate(None, count=0, threshold=threshold), 0, 0)
    surveys = q.closed_surveys(session, [team], weeks[0].start, weeks[-1].end)
    answered = [s for s in surveys if s.answered]
    scored = [[s for s in answered if s.score is not None and w.start <= s.closes < w.end] for w in weeks]
    return Span(_total(scored, threshold), len(surveys), len(answered))
