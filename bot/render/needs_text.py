"""Needs reports and scorecards as terminal text, JSON and CSV (`askdesk needs report`, `askdesk
scorecard`), and the small formatting helpers the Block Kit builders share, in the reader's language
(`t`; JSON and CSV are data and stay as they are). Pure functions."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

from bot.analytics.privacy import GatedValue
from bot.i18n import Translator, translator
from bot.render.digest_text import pct, suppressed
from bot.render.needs_blocks import short_title
from bot.services.needs_report import NeedsReport, Score
from bot.services.scorecard import Scorecard, TeamScore


def part_title(part: str, t: Translator) -> str:
    titles = {"needs": t._("Needs-survey score"), "csat": t._("Pulse CSAT"), "sla": t._("SLA attainment"),
              "response": t._("Needs-survey response rate"), "actions": t._("Improvement actions done")}
    return titles[part]


PARTS = ("needs", "csat", "sla", "response", "actions")


def status_title(status: str, t: Translator) -> str:
    titles = {"planned": t._("Planned"), "in_progress": t._("In progress"), "done": t._("Done")}
    return titles.get(status, status)


def signed(value: float, digits: int = 1, unit: str = "") -> str:
    return f"{'+' if value >= 0 else '−'}{abs(value):.{digits}f}{unit}"


def out_of_5(value: float, t: Translator) -> str:
    return t._("{score} / 5", score=t.fmt_decimal(value))


def shown(value: GatedValue[float], fmt: Callable[[float], str], t: Translator) -> str:
    """A gated figure, or the anonymity notice when it is suppressed."""
    return suppressed(t) if value.suppressed else value.display(fmt)


def score_text(score: Score, previous_key: str | None, t: Translator) -> str:
    text = shown(score.value, lambda v: out_of_5(v, t), t)
    if score.value.suppressed:
        return text
    change = score.change
    if change is not None and previous_key:
        text += " " + t._("({change} since {round})", change=signed(change), round=previous_key)
    count = score.value.count
    return text + " · " + t.ngettext("{n} answer", "{n} answers", count)


def response_text(report: NeedsReport, t: Translator) -> str:
    return t.ngettext("{answered} of {n} person answered ({rate})", "{answered} of {n} people answered ({rate})",
                      report.reached, answered=t.fmt_number(report.answered), rate=pct(report.response_rate, t))


def no_theme_text(threshold: int, t: Translator) -> str:
    return t.ngettext("No common need was written by at least {n} person this time.",
                      "No common need was written by at least {n} people this time.", threshold)


def theme_people(people: int, t: Translator) -> str:
    return t.ngettext("{n} person", "{n} people", people)


def report_text(report: NeedsReport, t: Translator) -> str:
    lines = [t._("Needs survey {round} · {team}", round=report.key, team=report.team_name),
             f"{report.opens_at:%Y-%m-%d} – {report.closes_at:%Y-%m-%d} · {report.status}",
             "", t._("Response rate: {rate}", rate=response_text(report, t)), ""]
    lines += [f"{short_title(name, t)}: {score_text(score, report.previous_key, t)}"
              for name, score in report.scores.items()]
    lines += ["", t._("Common needs:")]
    if not report.themes:
        lines.append("  " + no_theme_text(report.threshold, t))
    for theme in report.themes:
        lines.append(f"  {theme.rank}. {theme.label} — {theme_people(theme.people, t)}")
        lines += [f"     “{quote}”" for quote in theme.quotes]
    if report.actions:
        lines += ["", t._("Improvement actions:")]
        lines += [f"  [{status_title(a.status, t)}] {a.title}" +
                  (" " + t._("(for: {theme})", theme=a.theme) if a.theme else "") for a in report.actions]
    lines += ["", t.ngettext("Figures and themes are shown only when at least {n} person gave them.",
                             "Figures and themes are shown only when at least {n} people gave them.",
                             report.threshold)]
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
def formula(card: Scorecard, t: Translator | None = None) -> str:
    t = t or translator("en")
    used = [f"{card.weights[p]:g} × {part_title(p, t)}" for p in card.weights if card.weights[p] > 0]
    return t._("Index = ({parts}) / the sum of the weights of the parts that have a value; each part on a 0–100 "
               "scale.", parts=" + ".join(used))


def part_value(score: TeamScore, part: str, t: Translator) -> str:
    if part == "needs":
        if not score.needs_rounds:
            return t._("no closed round")
        return shown(score.needs_score, lambda v: out_of_5(v, t), t)
    if part == "csat":
        if score.csat is None:
            return t._("after the quarter ends")
        return shown(score.csat, lambda v: pct(v, t), t)
    if part == "sla":
        return pct(score.sla, t)
    if part == "response":
        return pct(score.needs_response_rate, t)
    return t._("{done} done, {open} open", done=t.fmt_number(score.actions_done), open=t.fmt_number(score.actions_open))


def change_text(score: TeamScore, part: str, t: Translator) -> str:
    change = score.change(part)
    return "" if change is None else " " + t._("({change} pts)", change=signed(change))


def index_text(score: TeamScore, t: Translator) -> str:
    return "—" if score.index is None else t._("{index} / 100", index=t.fmt_decimal(score.index, 0))


def scorecard_title(card: Scorecard, t: Translator) -> str:
    if card.ended:
        return t._("Internal satisfaction scorecard {quarter}", quarter=card.quarter.key)
    return t._("Internal satisfaction scorecard {quarter} (provisional)", quarter=card.quarter.key)


def threshold_note(card: Scorecard, t: Translator) -> str:
    return t.ngettext("Feedback figures are shown only over at least {n} answer.",
                      "Feedback figures are shown only over at least {n} answers.", card.threshold)


def scorecard_text(card: Scorecard, t: Translator) -> str:
    lines = [scorecard_title(card, t), t._("Compared with {quarter}.", quarter=card.previous_key), ""]
    for score in card.teams:
        lines.append(t._("{team}: index {index}", team=score.name, index=index_text(score, t)) +
                     change_text(score, "index", t))
        for part in PARTS:
            lines.append(f"  {part_title(part, t)}: {part_value(score, part, t)}{change_text(score, part, t)}")
        lines.append("  " + t._("Pulse-survey response rate") + ": " + pct(score.pulse_response_rate, t))
        lines.append("")
    lines.append(formula(card, t))
    lines.append(threshold_note(card, t))
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
