"""Needs reports and scorecards as terminal text, JSON and CSV (`askdesk needs report`, `askdesk
scorecard`), and the small formatting helpers the Block Kit builders share. Pure functions."""

from __future__ import annotations

import csv
import io
from typing import Any

from bot.analytics.privacy import GatedValue
from bot.services.needs_report import NeedsReport, Score
from bot.services.scorecard import Scorecard, TeamScore

SCORE_TITLES = {"overall": "Overall satisfaction", "communication": "Communication efficiency",
                "transparency": "Information transparency", "support": "Support"}
PART_TITLES = {"needs": "Needs-survey score", "csat": "Pulse CSAT", "sla": "SLA attainment",
               "response": "Needs-survey response rate", "actions": "Improvement actions done"}
STATUS_TITLES = {"planned": "Planned", "in_progress": "In progress", "done": "Done"}


def signed(value: float, digits: int = 1, unit: str = "") -> str:
    return f"{'+' if value >= 0 else '−'}{abs(value):.{digits}f}{unit}"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} %"


def score_text(score: Score, previous_key: str | None) -> str:
    shown = score.value.display(lambda v: f"{v:.1f} / 5")
    if score.value.suppressed:
        return shown
    change = score.change
    if change is not None and previous_key:
        shown += f" ({signed(change)} since {previous_key})"
    return shown + f" · {score.value.count} answers"


def response_text(report: NeedsReport) -> str:
    rate = report.response_rate
    return f"{report.answered} of {report.reached} people answered ({pct(rate)})"


def report_text(report: NeedsReport) -> str:
    lines = [f"Needs survey {report.key} · {report.team_name}",
             f"{report.opens_at:%Y-%m-%d} – {report.closes_at:%Y-%m-%d} · {report.status}",
             "", f"Response rate: {response_text(report)}", ""]
    lines += [f"{SCORE_TITLES[name]}: {score_text(score, report.previous_key)}"
              for name, score in report.scores.items()]
    lines += ["", "Common needs:"]
    if not report.themes:
        lines.append(f"  No common need was written by at least {report.threshold} people.")
    for theme in report.themes:
        lines.append(f"  {theme.rank}. {theme.label} — {theme.people} people")
        lines += [f"     “{quote}”" for quote in theme.quotes]
    if report.actions:
        lines += ["", "Improvement actions:"]
        lines += [f"  [{STATUS_TITLES.get(a.status, a.status)}] {a.title}" + (f" (for: {a.theme})" if a.theme else "")
                  for a in report.actions]
    lines += ["", f"Figures and themes are shown only when at least {report.threshold} people gave them."]
    return "\n".join(lines)


def gated_json(value: GatedValue[Any]) -> dict[str, Any]:
    return {"value": None if value.suppressed else value.value, "count": value.count,
            "suppressed": value.suppressed}


def report_json(report: NeedsReport) -> dict[str, Any]:
    return {
        "team": report.team, "round": report.key, "status": report.status,
        "opens_at": report.opens_at.isoformat(), "closes_at": report.closes_at.isoformat(),
        "anonymity_threshold": report.threshold, "invited": report.invited, "reached": report.reached,
        "answered": report.answered, "response_rate": report.response_rate, "previous_round": report.previous_key,
        "scores": {name: {**gated_json(s.value), "change": s.change} for name, s in report.scores.items()},
        "themes": [{"rank": t.rank, "label": t.label, "people": t.people, "quotes": t.quotes} for t in report.themes],
        "actions": [{"id": a.id, "title": a.title, "status": a.status, "theme": a.theme, "owner": a.owner_id,
                     "due": a.due_on} for a in report.actions],
    }


# -- scorecard ------------------------------------------------------------------------------------
def formula(card: Scorecard) -> str:
    used = [f"{card.weights[p]:g} × {PART_TITLES[p]}" for p in card.weights if card.weights[p] > 0]
    return ("Index = ({parts}) / the sum of the weights of the parts that have a value; each part on a 0–100 "
            "scale.").format(parts=" + ".join(used))


def part_value(score: TeamScore, part: str) -> str:
    if part == "needs":
        if not score.needs_rounds:
            return "no closed round"
        return score.needs_score.display(lambda v: f"{v:.1f} / 5")
    if part == "csat":
        if score.csat is None:
            return "after the quarter ends"
        return score.csat.display(lambda v: f"{v:.0f} %")
    if part == "sla":
        return pct(score.sla)
    if part == "response":
        return pct(score.needs_response_rate)
    return f"{score.actions_done} done, {score.actions_open} open"


def change_text(score: TeamScore, part: str) -> str:
    change = score.change(part)
    return "" if change is None else f" ({signed(change)} pts)"


def scorecard_text(card: Scorecard) -> str:
    status = "" if card.ended else " (the quarter has not ended: provisional)"
    lines = [f"Internal satisfaction scorecard {card.quarter.key}{status}", f"Compared with {card.previous_key}.", ""]
    for score in card.teams:
        index = "—" if score.index is None else f"{score.index:.0f} / 100"
        lines.append(f"{score.name}: index {index}{change_text(score, 'index')}")
        for part in PART_TITLES:
            lines.append(f"  {PART_TITLES[part]}: {part_value(score, part)}{change_text(score, part)}")
        lines.append(f"  Pulse-survey response rate: {pct(score.pulse_response_rate)}")
        lines.append("")
    lines.append(formula(card))
    lines.append(f"Feedback figures are shown only over at least {card.threshold} answers.")
    return "\n".join(lines)


def _team_json(score: TeamScore) -> dict[str, Any]:
    return {
        "team": score.team, "name": score.name, "index": score.index, "index_change": score.change("index"),
        "parts": score.parts, "changes": {p: score.change(p) for p in score.parts},
        "needs_score": gated_json(score.needs_score), "needs_rounds": score.needs_rounds,
        "needs_reached": score.needs_reached, "needs_answered": score.needs_answered,
        "needs_response_rate": score.needs_response_rate,
        "pulse_csat": gated_json(score.csat) if score.csat is not None else None,
        "pulse_sent": score.pulse_sent, "pulse_answered": score.pulse_answered,
        "pulse_response_rate": score.pulse_response_rate,
        "sla_attainment": score.sla, "sla_targets": score.sla_targets,
        "actions_done": score.actions_done, "actions_open": score.actions_open,
    }


def scorecard_json(card: Scorecard) -> dict[str, Any]:
    return {"quarter": card.quarter.key, "previous_quarter": card.previous_key, "ended": card.ended,
            "anonymity_threshold": card.threshold, "weights": card.weights, "formula": formula(card),
            "teams": [_team_json(s) for s in card.teams]}


CSV_COLUMNS = ("quarter", "team", "index", "index_change", "needs_score", "needs_score_change", "needs_answers",
               "pulse_csat", "pulse_csat_change", "pulse_answers", "sla_attainment", "sla_change",
               "needs_response_rate", "pulse_response_rate", "actions_done", "actions_open")


def _cell(value: GatedValue[float] | None, digits: int = 1) -> str:
    if value is None:
        return "pending"
    if value.suppressed:
        return "suppressed"
    return "" if value.value is None else f"{value.value:.{digits}f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def scorecard_csv(card: Scorecard) -> str:
    """One row per team; a gated figure below the threshold reads "suppressed", pulse CSAT of a quarter
    that has not ended "pending"."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in card.teams:
        writer.writerow([card.quarter.key, s.team, _num(s.index), _num(s.change("index")), _cell(s.needs_score, 2),
                         _num(s.change("needs")), s.needs_score.count, _cell(s.csat), _num(s.change("csat")),
                         s.pulse_answered, _num(s.sla), _num(s.change("sla")), _num(s.needs_response_rate),
                         _num(s.pulse_response_rate), s.actions_done, s.actions_open])
    return out.getvalue()
