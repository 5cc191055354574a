"""The internal satisfaction scorecard: per team and quarter, an index and its parts, with the change
from the previous quarter. Definitions (docs/needs.md, README "Needs surveys and scorecard"):

parts, each on a 0-100 scale
  needs     needs-survey score: the mean overall answer (1-5) of the team's rounds that opened in the
            quarter and have closed, as (mean - 1) / 4 * 100. A round with fewer overall answers than the
            anonymity threshold is left out (else the quarter's figure minus the other rounds' would give
            its answers away); the score itself is shown only over at least the threshold of answers.
  csat      pulse CSAT: % of 4-5 scores over the feedback weeks that end in the quarter
            (bot/services/satisfaction.py: the same answers the weekly figures show), once the quarter has
            ended, and gated; weeks whose own CSAT is hidden are left out when together they have fewer
            answers than the threshold (else the quarter minus the shown weeks would reveal them).
  sla       SLA attainment: % of first-response and resolution targets met by the requests created in the
            quarter, each against its real deadline (bot/services/sla_attainment.py: the team's clock,
            business hours and holidays, the urgency's targets, time waiting on the requester not
            counted); a target not yet due and not yet met is left out.
  response  needs-survey response rate: answered / reached, over the quarter's closed rounds.
  actions   improvement actions: done in the quarter / (done in the quarter + still open at its end).
index = sum(weight * part) / sum(weight) over the parts that have a value, `[scorecard] weights`
(default needs 0.4, csat 0.3, sla 0.2, actions 0.1, response 0); no index without a needs or csat part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.analytics import privacy
from bot.analytics.privacy import GatedValue, effective_threshold
from bot.analytics.stats import mean
from bot.config import Settings, Team
from bot.services import satisfaction
from bot.services.needs_periods import CalendarPeriod, previous
from bot.services.needs_report import answer_basis
from bot.services.sla import policy_for
from bot.services.sla_attainment import SlaRecord, combined
from bot.services.sla_plan import SlaPolicy
from storage import needs as needs_queries
from storage import scorecard as queries
from storage import sla as sla_queries

FEEDBACK_PARTS = ("needs", "csat")


@dataclass(frozen=True)
class TeamScore:
    team: str
    name: str
    needs_score: GatedValue[float]  # mean overall answer, 1-5
    needs_rounds: int  # closed rounds in the quarter
    needs_reached: int
    needs_answered: int
    csat: GatedValue[float] | None  # None: the quarter has not ended yet
    pulse_sent: int
    pulse_answered: int
    sla: float | None
    sla_targets: int
    actions_done: int
    actions_open: int
    parts: dict[str, float | None]  # 0-100, what the index is made of
    index: float | None
    previous: TeamScore | None = None

    @property
    def needs_response_rate(self) -> float | None:
        return 100.0 * self.needs_answered / self.needs_reached if self.needs_reached else None

    @property
    def pulse_response_rate(self) -> float | None:
        return 100.0 * self.pulse_answered / self.pulse_sent if self.pulse_sent else None

    def change(self, part: str) -> float | None:
        """This quarter's part (or "index") minus the previous quarter's, when both have a value."""
        if self.previous is None:
            return None
        now = self.index if part == "index" else self.parts.get(part)
        before = self.previous.index if part == "index" else self.previous.parts.get(part)
        return None if now is None or before is None else now - before


@dataclass(frozen=True)
class Scorecard:
    quarter: CalendarPeriod
    previous_key: str
    ended: bool
    threshold: int
    weights: dict[str, float]
    teams: list[TeamScore] = field(default_factory=list)


def sla_attainment(records: Sequence[SlaRecord], policy: SlaPolicy, now: datetime) -> tuple[float | None, int]:
    """% of first-response and resolution targets met, and how many targets were measured."""
    total = combined(records, policy, now)
    return total.percent, total.measured


def index_of(parts: Mapping[str, float | None], weights: Mapping[str, float]) -> float | None:
    if all(parts.get(p) is None or not weights.get(p) for p in FEEDBACK_PARTS):
        return None
    used = [(weights.get(p, 0.0), v) for p, v in parts.items() if v is not None and weights.get(p, 0.0) > 0]
    total = sum(w for w, _ in used)
    return sum(w * v for w, v in used) / total if total else None


def _team_score(session: Session, settings: Settings, team: Team, quarter: CalendarPeriod, now: datetime,
                prev: TeamScore | None) -> TeamScore:
    threshold = effective_threshold(settings.surveys.anonymity_threshold)
    rounds = queries.closed_rounds(session, teams=[team.slug], start=quarter.start, end=quarter.end)
    ids = [r.id for r in rounds if r.id is not None]
    counts = needs_queries.invitation_counts(session, round_ids=ids) if ids else {}
    rows = needs_queries.answers(session, round_ids=ids) if ids else []
    by_round: dict[int, list[needs_queries.AnswerRow]] = {}
    for row in rows:
        if row.scores["overall"] is not None:
            by_round.setdefault(row.round_id, []).append(row)
    shown = [r for answers in by_round.values() if len(answers) >= threshold for r in answers]
    overall = [int(r.scores["overall"] or 0) for r in shown]
    needs = privacy.gate(mean(overall) if overall else None, count=len(overall), threshold=threshold,
                         basis=answer_basis(shown))
    weeks = satisfaction.weeks_ending_in(settings, quarter.start, quarter.end)
    pulse = satisfaction.over_weeks(session, settings, team.slug, weeks)
    csat = pulse.csat if now >= quarter.end else None  # its weeks have all ended by then
    records = sla_queries.records(session, teams=[team.slug], start=quarter.start, end=quarter.end)[team.slug]
    sla, targets = sla_attainment(records, policy_for(settings, team), now)
    actions = needs_queries.action_counts(session, teams=[team.slug], start=quarter.start, end=quarter.end)[team.slug]
    reached = sum(counts[i][1] for i in ids)
    answered = sum(counts[i][2] for i in ids)
    parts: dict[str, float | None] = {
        "needs": (needs.value - 1) / 4 * 100 if needs.value is not None and not needs.suppressed else None,
        "csat": csat.value if csat is not None and not csat.suppressed else None,
        "sla": sla,
        "response": 100.0 * answered / reached if reached else None,
        "actions": (100.0 * actions.done / (actions.done + actions.open_at_end)
                    if actions.done + actions.open_at_end else None),
    }
    weights = settings.scorecard.weights.as_dict()
    return TeamScore(team=team.slug, name=team.name, needs_score=needs, needs_rounds=len(ids), needs_reached=reached,
                     needs_answered=answered, csat=csat, pulse_sent=pulse.closed,
                     pulse_answered=pulse.answered, sla=sla, sla_targets=targets, actions_done=actions.done,
                     actions_open=actions.open_at_end, parts=parts, index=index_of(parts, weights), previous=prev)


def compute(session: Session, settings: Settings, quarter: CalendarPeriod, now: datetime) -> Scorecard:
    """Every team's scorecard for `quarter`, each with the previous quarter's for the change."""
    before = previous(quarter, settings.workspace.timezone)
    teams = []
    for team in settings.teams:
        prev = _team_score(session, settings, team, before, now, None)
        teams.append(_team_score(session, settings, team, quarter, now, prev))
    weights = settings.scorecard.weights.as_dict()
    return Scorecard(quarter=quarter, previous_key=before.key, ended=now >= quarter.end,
                     threshold=effective_threshold(settings.surveys.anonymity_threshold), weights=weights,
                     teams=teams)
