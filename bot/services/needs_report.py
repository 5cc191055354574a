"""Needs-survey report figures: response rate, scores with the change since the last round, and the
common needs (themes with quotes). Everything that comes from answers passes the anonymity gate.

Differencing (docs/needs.md): a report is only ever made for a *closed* round, whose answers can no
longer change, so every report of a round — the posts, `askdesk needs report`, its JSON, the scorecard —
is computed from the same answers; two rounds share no answer. Themes are computed once, when the round
closes, and stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from bot.analytics import privacy
from bot.analytics.privacy import GatedValue, effective_threshold
from bot.analytics.stats import mean
from bot.analytics.themes import group_themes, representative
from bot.config import Settings, Team
from storage import needs as queries
from storage.models import NeedsAction, NeedsRound

QUOTES_PER_THEME = 3


class ReportError(Exception):
    """No report to show (unknown team or round, or the round is still open): the message says why."""


@dataclass(frozen=True)
class Score:
    value: GatedValue[float]
    previous: GatedValue[float] | None  # the previous round's, when there is one

    @property
    def change(self) -> float | None:
        if self.previous is None or self.value.suppressed or self.previous.suppressed:
            return None
        if self.value.value is None or self.previous.value is None:
            return None
        return self.value.value - self.previous.value


@dataclass(frozen=True)
class ThemeFigure:
    id: int | None
    rank: int
    label: str
    people: int
    quotes: list[str]


@dataclass(frozen=True)
class ActionRef:
    id: int
    title: str
    status: str
    theme: str | None
    owner_id: str | None
    due_on: str | None


@dataclass(frozen=True)
class NeedsReport:
    team: str
    team_name: str
    round_id: int
    key: str
    status: str
    opens_at: datetime
    closes_at: datetime
    threshold: int
    invited: int  # invitations created
    reached: int  # of them, delivered
    answered: int
    previous_key: str | None
    scores: dict[str, Score]
    themes: list[ThemeFigure]
    themed_answers: int  # written answers that fall into a shown theme
    written_answers: int  # written answers that may be used (shareable)
    actions: list[ActionRef] = field(default_factory=list)

    @property
    def response_rate(self) -> float | None:
        return 100.0 * self.answered / self.reached if self.reached else None


def gated_scores(rows: list[queries.AnswerRow], threshold: int) -> dict[str, GatedValue[float]]:
    """The mean of each score over the answers that gave it, each gated on its own count."""
    out: dict[str, GatedValue[float]] = {}
    for name in queries.SCORES:
        given = [r for r in rows if r.scores[name] is not None]
        out[name] = privacy.gate(mean([r.scores[name] for r in given]) if given else None, count=len(given),
                                 threshold=threshold, basis=answer_basis(given))
    return out


def answer_basis(rows: list[queries.AnswerRow]) -> privacy.Basis:
    """The answers a figure is computed from (privacy rule 2 is checked on them; never shown)."""
    return frozenset(f"needs:{r.id}" for r in rows)


def compute_themes(rows: list[queries.AnswerRow], team: Team,
                   threshold: int) -> list[tuple[str, tuple[str, ...], int, list[str]]]:
    """(label, terms, people, quotes) of a closed round's common needs: only themes given by at least
    the threshold of people, each with up to three anonymised quotes from its own answers."""
    written = [r for r in rows if r.texts]
    limit = effective_threshold(threshold)
    themes = group_themes(["\n".join(r.texts) for r in written], min_people=limit,
                          extra_stopwords=(team.slug, team.name))
    out = []
    for theme in themes:
        fields = [text for i in theme.members for text in written[i].texts]
        gated = privacy.gate_comments(fields, threshold=limit)  # and theme.people >= limit, below
        if gated.suppressed or theme.people < limit:
            continue
        out.append((theme.label, theme.terms, theme.people,
                    representative(gated.value or [], theme.terms, k=QUOTES_PER_THEME)))
    return out


def _action_ref(action: NeedsAction, labels: dict[int, str]) -> ActionRef:
    return ActionRef(id=action.id or 0, title=action.title, status=action.status,
                     theme=labels.get(action.theme_id or 0), owner_id=action.owner_id,
                     due_on=action.due_on.isoformat() if action.due_on else None)


def find_round(session: Session, team: Team, key: str | None) -> NeedsRound:
    """The team's round `key`, or its latest closed round."""
    if key:
        rnd = queries.round_by_key(session, team=team.slug, key=key.strip().upper())
        if rnd is None:
            known = ", ".join(r.key for r in queries.rounds_of(session, team=team.slug)) or "none yet"
            raise ReportError(f"{team.name} has no needs round {key!r} (rounds: {known})")
        return rnd
    closed = queries.rounds_of(session, team=team.slug, statuses=("closed", "reported"))
    if not closed:
        raise ReportError(f"{team.name} has no closed needs round yet")
    return closed[-1]


def build(session: Session, settings: Settings, rnd: NeedsRound) -> NeedsReport:
    """The report of a closed round (ReportError for an open one: its answers may still change)."""
    team = settings.team(rnd.team)
    if team is None:
        raise ReportError(f"team {rnd.team!r} is not configured")
    if rnd.status == "open":
        raise ReportError(f"{team.name}'s needs round {rnd.key} is open until {rnd.closes_at:%Y-%m-%d %H:%M} UTC; "
                          "its report comes when it closes")
    threshold = settings.surveys.anonymity_threshold
    assert rnd.id is not None
    prev = queries.previous_round(session, rnd)
    prev = prev if prev is not None and prev.status != "open" else None
    rows = queries.answers(session, round_ids=[rnd.id])
    now_scores = gated_scores(rows, threshold)
    prev_scores = gated_scores(queries.answers(session, round_ids=[prev.id]), threshold) if prev and prev.id else None
    invited, reached, answered = queries.invitation_counts(session, round_ids=[rnd.id])[rnd.id]
    stored = queries.themes_of(session, round_id=rnd.id)
    if not stored:  # closed a moment ago: the close job stores them; same answers, same themes
        themes = [ThemeFigure(None, i, label, people, quotes)
                  for i, (label, _terms, people, quotes) in enumerate(compute_themes(rows, team, threshold), 1)]
    else:
        themes = [ThemeFigure(t.id, t.rank, t.label, t.people, json.loads(t.quotes)) for t in stored]
    labels = {t.id: t.label for t in stored if t.id is not None}
    actions = [_action_ref(a, labels) for a in queries.actions_of(session, round_ids=[rnd.id])]
    return NeedsReport(
        team=team.slug, team_name=team.name, round_id=rnd.id, key=rnd.key, status=rnd.status,
        opens_at=rnd.opens_at, closes_at=rnd.closes_at, threshold=effective_threshold(threshold),
        invited=invited, reached=reached, answered=answered, previous_key=prev.key if prev else None,
        scores={name: Score(now_scores[name], prev_scores[name] if prev_scores else None) for name in now_scores},
        themes=themes, themed_answers=sum(t.people for t in themes),
        written_answers=sum(1 for r in rows if r.texts), actions=actions)
