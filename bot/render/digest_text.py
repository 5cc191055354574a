"""Terminal text and JSON renderings of digest figures (for `askdesk digest --dry-run/--json` and the demo),
plus the value formats the Block Kit digests share.

Satisfaction figures arrive gated; suppressed ones are `null` in JSON and read
"not enough answers to show, to protect anonymity" in text. Text is in the language of `t`
(`askdesk digest --locale`); JSON keys are fixed, its labels (week labels, period) follow `t`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.analytics import GatedValue
from bot.i18n import Translator, translator
from bot.render.blocks import urgency_word
from bot.render.sla_text import due_phrase
from bot.services.digest_periods import Period
from bot.services.digests import DueRef, OrgDigest, RequestRef, SlaNotices, Speed, TeamDigest

EN = translator("en")
URGENCY_ORDER = ("high", "normal", "low")


def pct(value: float | None, t: Translator = EN) -> str:
    """A percentage for digests ("—" when there is nothing to measure)."""
    return t.fmt_percent(value)


def suppressed(t: Translator) -> str:
    """What a suppressed satisfaction figure reads (see bot/analytics/privacy.py)."""
    return t._("not enough answers to show, to protect anonymity")


def gated(value: GatedValue[float], t: Translator = EN, *, percent: bool = False) -> str:
    """A gated figure ("4.2" or "87%"), or the anonymity notice when it is suppressed."""
    if value.suppressed:
        return suppressed(t)
    if value.value is None:
        return "—"
    return t.fmt_percent(value.value) if percent else t.fmt_decimal(value.value)


def dimension_name(name: str, t: Translator) -> str:
    names = {"responsiveness": t._("Responsiveness"), "clarity": t._("Clarity"),
             "transparency": t._("Transparency"), "support": t._("Support")}
    return names.get(name, name.title())


def category_name(category: str, t: Translator) -> str:
    return t._("Uncategorised") if category == "Uncategorised" else category


def period_label(period: Period, t: Translator) -> str:
    """"Mon 23 Nov, 09:00 – Mon 30 Nov 2026, 09:00 (Europe/Berlin)" in the workspace's zone."""
    return t._("{start} – {end} ({zone})", start=t.fmt_datetime(period.start, period.tz),
               end=t.fmt_datetime(period.end, period.tz, skeleton="yMMMEd"), zone=period.tz)


def week_labels(d: TeamDigest, t: Translator) -> list[str]:
    """The chart's week labels ("23 Nov" / "11月23日"): the first day of each of the last weeks."""
    bounds = d.period.chart_bounds(len(d.weeks))
    return [t.fmt_date(bound, d.period.tz) for bound in bounds[:len(d.weeks)]]


def _ref(ref: RequestRef | DueRef) -> str:
    return f"{ref.title}" + (f" <{ref.link}>" if ref.link else "")


def sla_totals(n: SlaNotices, t: Translator) -> str:
    """"3 reminders sent, 1 escalations, 2 breaches" for the period."""
    return t._("{reminders} reminders sent, {escalations} escalations, {breaches} breaches",
               reminders=n.total("reminders"), escalations=n.total("escalations"), breaches=n.total("breaches"))


def sla_by_urgency(n: SlaNotices, t: Translator) -> str:
    """"high: 1 / 0 / 1 · normal: 2 / 1 / 1" (reminders / escalations / breaches), most urgent first."""
    levels = sorted(n.by_urgency, key=lambda u: (URGENCY_ORDER.index(u) if u in URGENCY_ORDER else 9, u))
    return " · ".join(t._("{urgency}: {reminders} / {escalations} / {breaches}", urgency=urgency_word(u, t),
                          reminders=n.by_urgency[u].get("reminders", 0),
                          escalations=n.by_urgency[u].get("escalations", 0),
                          breaches=n.by_urgency[u].get("breaches", 0)) for u in levels)


def due_line(ref: DueRef, end: Any, t: Translator) -> str:
    return t._("{request} — {due}", request=_ref(ref), due=due_phrase(ref.due_at, end, t))


def _speed(label: str, s: Speed, t: Translator) -> str:
    if not s.count:
        return t._("  {label}: no requests resolved", label=label)
    return t.ngettext(
        "  {label}: median {median} (before: {before}), p90 {p90}, {share} within {target} ({n} request)",
        "  {label}: median {median} (before: {before}), p90 {p90}, {share} within {target} ({n} requests)",
        s.count, label=label, median=t.fmt_duration(s.median), before=t.fmt_duration(s.median_prev),
        p90=t.fmt_duration(s.p90), share=pct(s.within_sla, t), target=t.fmt_duration(s.target))


def action_status(status: str, t: Translator) -> str:
    """An improvement action's status as a digest says it."""
    return {"planned": t._("planned"), "in_progress": t._("in progress"),
            "done": t._("done this week")}.get(status, status)


def team_text(d: TeamDigest, t: Translator = EN) -> str:
    s = d.satisfaction
    head = (t._("{team} — weekly digest {week} (posted late)", team=d.name, week=d.period.week) if d.late
            else t._("{team} — weekly digest {week}", team=d.name, week=d.period.week))
    lines = [head, t._("{period}, compared with the 7 days before", period=period_label(d.period, t)), ""]
    if d.quiet:
        lines.append(t._("A quiet week: no new requests, nothing resolved and no feedback."))
    lines += [
        t._("Volume"),
        t._("  new {new} (before: {new_prev}) · resolved {resolved} (before: {resolved_prev}) · transferred in "
            "{into} / out {out} · open at the end {open}", new=d.new, new_prev=d.new_prev, resolved=d.resolved,
            resolved_prev=d.resolved_prev, into=d.transferred_in, out=d.transferred_out, open=d.open_end),
    ]
    if d.oldest_open:
        lines.append(t._("  oldest open: {request}, open {age}", request=_ref(d.oldest_open),
                         age=t.fmt_duration(d.oldest_open.age)))
    lines += [t._("Speed (requests resolved in the period)"), _speed(t._("first response"), d.first_response, t),
              _speed(t._("resolution"), d.resolution, t),
              t._("SLA: {totals}", totals=sla_totals(d.sla, t))]
    if d.sla.by_urgency:
        lines.append(t._("  by urgency (reminders / escalations / breaches): {counts}",
                         counts=sla_by_urgency(d.sla, t)))
    lines += [t._("Satisfaction (the last whole week, {week}: {period})", week=s.week.week,
                  period=period_label(s.week, t)),
              t._("  survey answers {n} of the {sent} surveys that closed then ({share})", n=s.responses,
                  sent=s.sent, share=pct(s.response_rate, t))]
    if s.csat.suppressed:
        lines.append(t._("  scores: {suppressed}", suppressed=suppressed(t)))
    else:
        dims = " · ".join(f"{dimension_name(k, t)} {gated(v, t)}" for k, v in s.dimensions.items())
        lines.append(t._("  average {average} / 5 · CSAT {csat} · {dimensions}", average=gated(s.average, t),
                         csat=gated(s.csat, t, percent=True), dimensions=dims))
    ratings = (suppressed(t) if s.ratings.suppressed else
               " · ".join(f"{k}★ {n}" for k, n in (s.ratings.value or {}).items()) or "—")
    lines.append(t._("  emoji ratings ({n}): {ratings}", n=s.ratings.count, ratings=ratings))
    if s.comments.value:
        lines += [t._("  anonymous comments:"), *(f"    “{c}”" for c in s.comments.value[:5])]
    lines.append(t._("Internal customers"))
    lines += [t._("  {rank}. {department}: {n} ({change} vs {previous})", rank=i.rank, department=i.key,
                  n=i.count, change=format(i.delta, "+d"), previous=i.previous) for i in d.internal_customers[:15]]
    if len(d.internal_customers) > 15:
        lines.append(t._("  …and {n} more", n=len(d.internal_customers) - 15))
    categories = ", ".join(f"{category_name(c, t)} {n}" for c, n in d.top_categories[:10]) or "—"
    topics = ", ".join(f"{topic} ({n})" for topic, n in d.topics) or "—"
    lines += [t._("Common needs"), t._("  categories: {categories}", categories=categories),
              t._("  recurring topics: {topics}", topics=topics),
              t._("Needs attention: {unclaimed} unclaimed past SLA, {reopened} reopened",
                  unclaimed=d.unclaimed_count, reopened=d.reopened_count)]
    lines += [t._("  unclaimed: {request}", request=due_line(r, d.period.end, t)) for r in d.unclaimed]
    lines += [t._("  reopened: {request}", request=_ref(r)) for r in d.reopened]
    if d.actions:
        lines.append(t._("Improvement actions (needs surveys)"))
        for a in d.actions:
            values = {"status": action_status(a.status, t), "action": a.title, "need": a.theme}
            if a.due_on and a.status != "done":
                values["status"] = t._("{status}, due {date}", status=values["status"], date=a.due_on.isoformat())
            if a.theme:
                lines.append(t._("  [{status}] {action} — for “{need}”", **values))
            else:
                lines.append(t._("  [{status}] {action}", **values))
    if d.due_count:
        lines.append(t._("Open by due time ({n}), overdue first:", n=d.due_count))
        lines += [f"  {due_line(r, d.period.end, t)}" for r in d.due]
    weeks = [f"{label} {w.volume}" + ("" if w.csat is None else f" ({t.fmt_percent(w.csat)})")
             for label, w in zip(week_labels(d, t), d.weeks, strict=True)]
    lines.append(t._("Last 8 weeks: {weeks}", weeks=", ".join(weeks)))
    return "\n".join(lines)


def org_text(o: OrgDigest, t: Translator = EN) -> str:
    columns = (t._("team"), t._("new"), t._("resolved"), t._("open"), t._("1st resp"), t._("resolution"),
               t._("CSAT"), t._("SLA"))
    widths = (24, 6, 10, 6, 10, 12, 6, 10)
    period = period_label(o.period, t)
    if o.feedback_week:
        period = t._("{period}; satisfaction of the week {week}", period=period, week=o.feedback_week.week)
    lines = [t._("Organisation — weekly digest {week}", week=o.period.week), period, "", _row(columns, widths)]
    for d in sorted(o.teams, key=lambda x: (-x.new, x.name)):
        csat = "†" if d.satisfaction.csat.suppressed else pct(d.satisfaction.csat.value, t)
        sla = f"{pct(d.first_response.within_sla, t)}/{pct(d.resolution.within_sla, t)}"
        lines.append(_row((d.name[:23], str(d.new), str(d.resolved), str(d.open_end),
                           t.fmt_duration(d.first_response.median), t.fmt_duration(d.resolution.median), csat, sla),
                          widths))
    lines += ["", t._("Internal-customer map (requests; CSAT)")]
    names = {d.team: d.name for d in o.teams}
    for dept in o.departments:
        cells = sorted(((team, n) for (dp, team), n in o.matrix.items() if dp == dept), key=lambda c: -c[1])
        parts = []
        for team, n in cells:
            cell = o.matrix_csat.get((dept, team))
            shown = "" if cell is None else f" ({'†' if cell.suppressed else pct(cell.value, t)})"
            parts.append(f"{names.get(team, team)} {n}{shown}")
        lines.append(f"  {dept}: " + ", ".join(parts))
    lines.append(f"† {suppressed(t)}")
    return "\n".join(lines)


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if "\u2e80" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" else 1 for c in text)


def _row(cells: tuple[str, ...], widths: tuple[int, ...]) -> str:
    """A table row: the first cell left-aligned, the others right-aligned, in terminal columns."""
    out = cells[0] + " " * max(1, widths[0] - _width(cells[0]))
    return out + "".join(" " * max(1, w - _width(c)) + c for c, w in zip(cells[1:], widths[1:], strict=True))


def _gv(value: GatedValue[Any]) -> Any:
    return None if value.suppressed else value.value


def _refs(refs: list[RequestRef]) -> list[dict[str, Any]]:
    return [{"id": r.id, "title": r.title, "link": r.link, "age_seconds": r.age} for r in refs]


def _due_refs(refs: list[DueRef], end: datetime) -> list[dict[str, Any]]:
    return [{"id": r.id, "title": r.title, "link": r.link, "due_at": r.due_at.isoformat(),
             "overdue_seconds": max(0.0, (end - r.due_at).total_seconds())} for r in refs]


def _speed_json(s: Speed) -> dict[str, Any]:
    return {"count": s.count, "median_seconds": s.median, "p90_seconds": s.p90,
            "within_sla_percent": s.within_sla, "sla_seconds": s.target,
            "median_seconds_previous": s.median_prev}


def team_json(d: TeamDigest, t: Translator = EN) -> dict[str, Any]:
    s = d.satisfaction
    return {
        "team": d.team, "name": d.name, "week": d.period.week, "timezone": d.period.tz, "locale": t.locale,
        "period": period_label(d.period, t),
        "period_start": d.period.start.isoformat(), "period_end": d.period.end.isoformat(),
        "late": d.late, "quiet": d.quiet,
        "new": d.new, "new_previous": d.new_prev,
        "resolved": d.resolved, "resolved_previous": d.resolved_prev,
        "transferred_in": d.transferred_in, "transferred_out": d.transferred_out, "open": d.open_end,
        "oldest_open": _refs([d.oldest_open])[0] if d.oldest_open else None,
        "median_first_response_seconds": d.first_response.median,
        "median_resolution_seconds": d.resolution.median,
        "first_response": _speed_json(d.first_response), "resolution": _speed_json(d.resolution),
        "satisfaction": {
            "week": s.week.week, "week_start": s.week.start.isoformat(), "week_end": s.week.end.isoformat(),
            "responses": s.responses, "sent": s.sent, "response_rate_percent": s.response_rate,
            "average": _gv(s.average), "csat_percent": _gv(s.csat), "suppressed": s.suppressed,
            "threshold": s.threshold, "csat_percent_previous": _gv(s.csat_prev),
            "dimensions": {k: _gv(v) for k, v in s.dimensions.items()},
            "ratings": {"count": s.ratings.count, "by_score": _gv(s.ratings)},
            "comments": _gv(s.comments),
        },
        "internal_customers": [{"department": i.key, "requests": i.count, "previous": i.previous,
                                "change": i.delta, "rank": i.rank, "previous_rank": i.previous_rank}
                               for i in d.internal_customers],
        "top_categories": [{"category": category_name(c, t), "requests": n} for c, n in d.top_categories],
        "topics": [{"topic": t, "requests": n} for t, n in d.topics],
        "improvement_actions": [{"title": a.title, "status": a.status, "round": a.round_key, "theme": a.theme,
                                 "due": a.due_on.isoformat() if a.due_on else None} for a in d.actions],
        "needs_attention": {
            "unclaimed_past_sla": {"count": d.unclaimed_count, "requests": _due_refs(d.unclaimed, d.period.end)},
            "reopened": {"count": d.reopened_count, "requests": _refs(d.reopened)}},
        "weeks": [{"label": label, "requests": w.volume, "csat_percent": w.csat}
                  for label, w in zip(week_labels(d, t), d.weeks, strict=True)],
        "sla": {
            "reminders": d.sla.total("reminders"), "escalations": d.sla.total("escalations"),
            "breaches": d.sla.total("breaches"),
            "by_urgency": {u: {k: c.get(k, 0) for k in ("reminders", "escalations", "breaches")}
                           for u, c in sorted(d.sla.by_urgency.items())},
            "open_by_due": {"count": d.due_count, "requests": _due_refs(d.due, d.period.end)},
        },
    }


def org_json(o: OrgDigest, t: Translator = EN) -> dict[str, Any]:
    return {
        "team": "*", "week": o.period.week, "period_start": o.period.start.isoformat(),
        "period_end": o.period.end.isoformat(), "timezone": o.period.tz, "locale": t.locale,
        "period": period_label(o.period, t), "csat_percent": _gv(o.csat),
        "feedback_week": o.feedback_week.week if o.feedback_week else None,
        "teams": [team_json(d, t) for d in o.teams],
        "matrix": [{"department": dept, "team": team, "requests": n,
                    "csat_percent": _gv(o.matrix_csat[(dept, team)]) if (dept, team) in o.matrix_csat
                    else None} for (dept, team), n in sorted(o.matrix.items())],
    }
