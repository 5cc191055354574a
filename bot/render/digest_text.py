"""Terminal text and JSON renderings of digest figures (for `askdesk digest --dry-run/--json` and the demo).

Satisfaction figures arrive gated; suppressed ones are `null` in JSON and read
"not enough answers to show, to protect anonymity" in text.
"""

from __future__ import annotations

from typing import Any

from bot.analytics import SUPPRESSED_TEXT, GatedValue, format_duration
from bot.services.digests import OrgDigest, RequestRef, Speed, TeamDigest


def pct(value: float | None) -> str:
    """A percentage for digests ("—" when there is nothing to measure)."""
    return "—" if value is None else f"{value:.0f}%"


def gated(value: GatedValue[float], fmt: str = "{:.1f}") -> str:
    """A gated figure, or the anonymity notice when it is suppressed."""
    return value.display(fmt.format)


def _ref(ref: RequestRef) -> str:
    return f"{ref.title}" + (f" <{ref.link}>" if ref.link else "")


def _speed(label: str, s: Speed) -> str:
    if not s.count:
        return f"  {label}: no requests resolved"
    return (f"  {label}: median {format_duration(s.median)} (before: {format_duration(s.median_prev)}), "
            f"p90 {format_duration(s.p90)}, "
            f"{pct(s.within_sla)} within {format_duration(s.target)} ({s.count} requests)")


def team_text(d: TeamDigest) -> str:
    s = d.satisfaction
    lines = [f"{d.name} — weekly digest {d.period.week}" + (" (posted late)" if d.late else ""),
             f"{d.period.label()}, compared with the 7 days before", ""]
    if d.quiet:
        lines.append("A quiet week: no new requests, nothing resolved and no feedback.")
    lines += [
        "Volume",
        f"  new {d.new} (before: {d.new_prev}) · resolved {d.resolved} (before: {d.resolved_prev}) · "
        f"transferred in {d.transferred_in} / out {d.transferred_out} · open at the end {d.open_end}",
    ]
    if d.oldest_open:
        lines.append(f"  oldest open: {_ref(d.oldest_open)}, open {format_duration(d.oldest_open.age)}")
    lines += ["Speed (requests resolved in the period)", _speed("first response", d.first_response),
              _speed("resolution", d.resolution), "Satisfaction",
              f"  survey answers {s.responses} of {s.sent} sent ({pct(s.response_rate)})"]
    if s.csat.suppressed:
        lines.append(f"  scores: {SUPPRESSED_TEXT}")
    else:
        lines.append(f"  average {gated(s.average)} / 5 · CSAT {gated(s.csat, '{:.0f}%')} · "
                     + " · ".join(f"{k} {gated(v)}" for k, v in s.dimensions.items()))
    ratings = s.ratings.display(lambda r: " · ".join(f"{k}★ {n}" for k, n in r.items()) or "—")
    lines.append(f"  emoji ratings ({s.ratings.count}): {ratings}")
    if s.comments.value:
        lines += ["  anonymous comments:", *(f"    “{c}”" for c in s.comments.value[:5])]
    lines.append("Internal customers")
    lines += [f"  {i.rank}. {i.key}: {i.count} ({i.delta:+d} vs {i.previous})"
              for i in d.internal_customers[:15]]
    if len(d.internal_customers) > 15:
        lines.append(f"  …and {len(d.internal_customers) - 15} more")
    lines += ["Common needs",
              "  categories: " + (", ".join(f"{c} {n}" for c, n in d.top_categories[:10]) or "—"),
              "  recurring topics: " + (", ".join(f"{t} ({n})" for t, n in d.topics) or "—"),
              f"Needs attention: {d.unclaimed_count} unclaimed past SLA, {d.reopened_count} reopened"]
    lines += [f"  unclaimed: {_ref(r)}, waiting {format_duration(r.age)}" for r in d.unclaimed]
    lines += [f"  reopened: {_ref(r)}" for r in d.reopened]
    lines.append("Last 8 weeks: " + ", ".join(
        f"{w.label} {w.volume}" + ("" if w.csat is None else f" ({w.csat:.0f}%)") for w in d.weeks))
    return "\n".join(lines)


def org_text(o: OrgDigest) -> str:
    lines = [f"Organisation — weekly digest {o.period.week}", o.period.label(), "",
             f"{'team':<24}{'new':>6}{'resolved':>10}{'open':>6}{'1st resp':>10}{'resolution':>12}"
             f"{'CSAT':>6}{'SLA':>10}"]
    for d in sorted(o.teams, key=lambda t: (-t.new, t.name)):
        csat = "†" if d.satisfaction.csat.suppressed else pct(d.satisfaction.csat.value)
        sla = f"{pct(d.first_response.within_sla)}/{pct(d.resolution.within_sla)}"
        lines.append(f"{d.name[:23]:<24}{d.new:>6}{d.resolved:>10}{d.open_end:>6}{format_duration(d.first_response.median):>10}"
                     f"{format_duration(d.resolution.median):>12}{csat:>6}{sla:>10}")
    lines += ["", "Internal-customer map (requests; CSAT)"]
    for dept in o.departments:
        cells = sorted(((t, n) for (d, t), n in o.matrix.items() if d == dept), key=lambda c: -c[1])
        parts = []
        for team, n in cells:
            cell = o.matrix_csat.get((dept, team))
            shown = "" if cell is None else f" ({'†' if cell.suppressed else pct(cell.value)})"
            parts.append(f"{team} {n}{shown}")
        lines.append(f"  {dept}: " + ", ".join(parts))
    lines.append(f"† {SUPPRESSED_TEXT}")
    return "\n".join(lines)


def _gv(value: GatedValue[Any]) -> Any:
    return None if value.suppressed else value.value


def _refs(refs: list[RequestRef]) -> list[dict[str, Any]]:
    return [{"id": r.id, "title": r.title, "link": r.link, "age_seconds": r.age} for r in refs]


def _speed_json(s: Speed) -> dict[str, Any]:
    return {"count": s.count, "median_seconds": s.median, "p90_seconds": s.p90,
            "within_sla_percent": s.within_sla, "sla_seconds": s.target,
            "median_seconds_previous": s.median_prev}


def team_json(d: TeamDigest) -> dict[str, Any]:
    s = d.satisfaction
    return {
        "team": d.team, "name": d.name, "week": d.period.week, "timezone": d.period.tz,
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
        "top_categories": [{"category": c, "requests": n} for c, n in d.top_categories],
        "topics": [{"topic": t, "requests": n} for t, n in d.topics],
        "needs_attention": {
            "unclaimed_past_sla": {"count": d.unclaimed_count, "requests": _refs(d.unclaimed)},
            "reopened": {"count": d.reopened_count, "requests": _refs(d.reopened)}},
        "weeks": [{"label": w.label, "requests": w.volume, "csat_percent": w.csat} for w in d.weeks],
    }


def org_json(o: OrgDigest) -> dict[str, Any]:
    return {
        "team": "*", "week": o.period.week, "period_start": o.period.start.isoformat(),
        "period_end": o.period.end.isoformat(), "timezone": o.period.tz, "csat_percent": _gv(o.csat),
        "teams": [team_json(d) for d in o.teams],
        "matrix": [{"department": dept, "team": team, "requests": n,
                    "csat_percent": _gv(o.matrix_csat[(dept, team)]) if (dept, team) in o.matrix_csat
                    else None} for (dept, team), n in sorted(o.matrix.items())],
    }
