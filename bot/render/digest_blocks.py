"""Pure Block Kit builders for the weekly digests (slack_sdk.models): team, organisation, quiet week and
the on-demand (ephemeral) view.

Slack limits hold whatever the data: at most 50 blocks per message, 3000 characters per section and
150 per header. Long lists (departments, categories, teams, requests) are cut with "…and N more".
Every satisfaction figure arrives already gated (bot/analytics/privacy.py); suppressed ones read
"not enough answers to show, to protect anonymity".
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject

from bot.analytics import SUPPRESSED_TEXT, GatedValue, RankedItem, format_duration
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date, truncate
from bot.render.digest_text import gated, pct
from bot.services.digests import OrgDigest, RequestRef, Satisfaction, Speed, TeamDigest

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
RESERVE = 40  # room for the "…and N more" line
LIST_LIMIT = 10
DAGGER = "†"


def fit(lines: Sequence[str], *, limit: int = SECTION_LIMIT, unit: str = "more") -> str:
    """Lines joined by newlines, within `limit` characters; what does not fit becomes "…and N more"."""
    return sections(lines, limit=limit, max_sections=1, unit=unit)[0] if lines else ""


def sections(lines: Sequence[str], *, limit: int = SECTION_LIMIT, max_sections: int = 4,
             unit: str = "more") -> list[str]:
    """Split lines into at most `max_sections` texts of at most `limit` characters each."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for i, raw in enumerate(lines):
        line = truncate(raw, limit - RESERVE)
        if current and used + len(line) + 1 > limit - RESERVE:
            if len(out) + 1 >= max_sections:
                current.append(f"…and {len(lines) - i} {unit}")
                break
            out.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += len(line) + 1
    out.append("\n".join(current))
    return out


def _ctx(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_LIMIT))])


def _link(ref: RequestRef) -> str:
    title = escape(ref.title).replace("|", "¦")
    return f"<{ref.link}|{title}>" if ref.link else title


def _change(now: int, before: int) -> str:
    delta = now - before
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return f"*{now}* ({arrow}{abs(delta) if delta else ''} vs {before})"


def _period_line(d: TeamDigest | OrgDigest, now_label: bool = False) -> str:
    span = d.period.label()
    text = f"{d.period.week} · {span} · compared with the 7 days before"
    if now_label:
        text = f"The last 7 days until now · {span}"
    if d.late:
        text += f" · :hourglass: *posted late* (it was due {slack_date(d.period.end)})"
    return text


def _volume(d: TeamDigest) -> str:
    lines = ["*Volume*", f"• New requests: {_change(d.new, d.new_prev)}",
             f"• Resolved: {_change(d.resolved, d.resolved_prev)}",
             f"• Transferred in / out: {d.transferred_in} / {d.transferred_out}",
             f"• Open at the end: *{d.open_end}*"]
    if d.oldest_open:
        lines.append(f"• Oldest open: {_link(d.oldest_open)} (open {format_duration(d.oldest_open.age)})")
    return fit(lines)


def _speed_line(label: str, s: Speed) -> str:
    if not s.count:
        return f"• {label}: no requests resolved"
    was = f", was {format_duration(s.median_prev)}" if s.median_prev is not None else ""
    return (f"• {label}: median *{format_duration(s.median)}*{was} · 90th percentile {format_duration(s.p90)} · "
            f"*{pct(s.within_sla)}* within the {format_duration(s.target)} target ({s.count} requests)")


def _speed(d: TeamDigest) -> str:
    return fit(["*Speed* (requests resolved this week)", _speed_line("First response", d.first_response),
                _speed_line("Resolution", d.resolution)])


def _satisfaction(s: Satisfaction) -> str:
    rate = f" ({pct(s.response_rate)} of {s.sent} sent)" if s.sent else ""
    lines = ["*Satisfaction*", f"• Survey answers: *{s.responses}*{rate}"]
    if s.csat.suppressed:
        lines.append(f"• Scores: _{SUPPRESSED_TEXT}_ (fewer than {s.threshold} answers)")
    else:
        was = s.csat_prev.value
        prev = "" if s.csat_prev.suppressed or was is None else f", was {was:.0f}%"
        lines.append(f"• Average score: *{gated(s.average)}* / 5 · CSAT (share of 4–5): "
                     f"*{gated(s.csat, '{:.0f}%')}*{prev}")
        dims = " · ".join(f"{name.title()} {gated(v)}" for name, v in s.dimensions.items())
        lines.append(f"• {dims}")
    if s.ratings.suppressed:
        lines.append(f"• Emoji ratings ({s.ratings.count}): _{SUPPRESSED_TEXT}_")
    else:
        parts = " · ".join(f"{score}★ {n}" for score, n in (s.ratings.value or {}).items())
        lines.append(f"• Emoji ratings ({s.ratings.count}): {parts}")
    return fit(lines)


def _customer(item: RankedItem) -> str:
    if item.is_new:
        change = "new"
    elif item.delta:
        change = f"{'▲' if item.delta > 0 else '▼'}{abs(item.delta)}, was #{item.previous_rank}"
    else:
        change = f"=, was #{item.previous_rank}"
    return f"{item.rank}. {escape(item.key)} — *{item.count}* ({change})"


def _customers(d: TeamDigest) -> str:
    items = [_customer(i) for i in d.internal_customers[:LIST_LIMIT]] or ["No requests this week."]
    hidden = len(d.internal_customers) - LIST_LIMIT
    if hidden > 0:
        items.append(f"…and {hidden} more departments")
    return fit(["*Internal customers* (departments that asked you)", *items], unit="more departments")


def _needs(d: TeamDigest) -> str:
    cats = " · ".join(f"{escape(c)} {n}" for c, n in d.top_categories[:LIST_LIMIT]) or "—"
    if len(d.top_categories) > LIST_LIMIT:
        cats += f" · …and {len(d.top_categories) - LIST_LIMIT} more"
    topics = " · ".join(f"{escape(t)} ({n})" for t, n in d.topics) or "none recurring"
    return fit(["*Common needs* — candidates for an FAQ or a process fix", f"• Top categories: {cats}",
                f"• Recurring topics: {topics}"])


def _attention(d: TeamDigest) -> str | None:
    lines = []
    if d.unclaimed_count:
        lines.append(f"• Unclaimed past the {format_duration(d.first_response.target)} first-response target: "
                     f"*{d.unclaimed_count}*")
        lines += [f"   {_link(r)} (waiting {format_duration(r.age)})" for r in d.unclaimed]
        if d.unclaimed_count > len(d.unclaimed):
            lines.append(f"   …and {d.unclaimed_count - len(d.unclaimed)} more")
    if d.reopened_count:
        lines.append(f"• Reopened this week: *{d.reopened_count}*")
        lines += [f"   {_link(r)}" for r in d.reopened]
        if d.reopened_count > len(d.reopened):
            lines.append(f"   …and {d.reopened_count - len(d.reopened)} more")
    return fit(["*Needs attention*", *lines]) if lines else None


def _comments(s: Satisfaction) -> str | None:
    if s.comments.suppressed or not s.comments.value:
        return None
    quotes = [f"> {escape(c)}" for c in s.comments.value[:5]]
    more = len(s.comments.value) - len(quotes)
    return fit(["*What people said* (anonymous comments)", *quotes, *([f"…and {more} more"] if more else [])])


def _text(d: TeamDigest) -> str:
    return f"{d.name} weekly digest {d.period.week}: {d.new} new, {d.resolved} resolved, {d.open_end} open"


def team_digest(d: TeamDigest, *, chart: bool = True, title: str | None = None,
                now_label: bool = False) -> Rendered:
    """The weekly team digest (or, with `title`/`now_label`, the on-demand figures)."""
    if d.quiet:
        return quiet_week(d, title=title, now_label=now_label)
    blocks: list[Block] = [HeaderBlock(text=plain(title or f"{d.name} · weekly digest")),
                           _ctx(_period_line(d, now_label)), md_section(_volume(d)), md_section(_speed(d)),
                           md_section(_satisfaction(d.satisfaction)), md_section(_customers(d)),
                           md_section(_needs(d))]
    for extra in (_attention(d), _comments(d.satisfaction)):
        if extra:
            blocks.append(md_section(extra))
    note = f"Scores are shown only over at least {d.satisfaction.threshold} answers."
    if chart:
        note += " The chart of the last 8 weeks (volume and CSAT) follows."
    blocks.append(_ctx(note))
    return Rendered(text=_text(d), blocks=blocks[:MAX_BLOCKS])


def quiet_week(d: TeamDigest, *, title: str | None = None, now_label: bool = False) -> Rendered:
    lines = [":zzz: *A quiet week* — no new requests, nothing resolved and no feedback."]
    if d.open_end:
        oldest = f" — oldest: {_link(d.oldest_open)}" if d.oldest_open else ""
        lines.append(f"Still open: *{d.open_end}*{oldest}")
    blocks: list[Block] = [HeaderBlock(text=plain(title or f"{d.name} · quiet week")),
                           _ctx(_period_line(d, now_label)), md_section(fit(lines))]
    attention = _attention(d)
    if attention:
        blocks.append(md_section(attention))
    return Rendered(text=f"{d.name} weekly digest {d.period.week}: a quiet week", blocks=blocks)


def on_demand(d: TeamDigest) -> Rendered:
    """The ephemeral `/askdesk digest` view: the same figures for the 7 days until now, no chart."""
    return team_digest(d, chart=False, title=f"{d.name} · figures so far", now_label=True)


def _dagger(value: GatedValue[float]) -> str:
    return DAGGER if value.suppressed else pct(value.value)


def _team_row(d: TeamDigest) -> str:
    return (f"*{escape(d.name.strip())}* — {d.new} new · {d.resolved} resolved · {d.open_end} open · "
            f"first response {format_duration(d.first_response.median)} · "
            f"resolution {format_duration(d.resolution.median)} · CSAT "
            f"{_dagger(d.satisfaction.csat)} · SLA {pct(d.first_response.within_sla)} / "
            f"{pct(d.resolution.within_sla)}")


def _department_row(o: OrgDigest, dept: str, names: dict[str, str]) -> str:
    cells = sorted(((team, n) for (d, team), n in o.matrix.items() if d == dept), key=lambda c: (-c[1], c[0]))
    parts = []
    for team, n in cells[:5]:
        csat = o.matrix_csat.get((dept, team))
        parts.append(f"{escape(names.get(team, team))} {n}" + (f" (CSAT {_dagger(csat)})" if csat else ""))
    more = f" · …and {len(cells) - 5} more teams" if len(cells) > 5 else ""
    return f"*{escape(dept)}* ({sum(n for _, n in cells)}): " + " · ".join(parts) + more


def org_digest(o: OrgDigest, *, chart: bool = True) -> Rendered:
    names = {d.team: d.name for d in o.teams}
    total_new, total_resolved = sum(d.new for d in o.teams), sum(d.resolved for d in o.teams)
    ranked = sorted(o.teams, key=lambda d: (-d.new, d.name))
    blocks: list[Block] = [HeaderBlock(text=plain("Organisation · weekly digest")), _ctx(_period_line(o)),
                           md_section(f"*{total_new}* new requests across {len(o.teams)} teams · "
                                      f"*{total_resolved}* resolved · CSAT {_dagger(o.csat)}"),
                           md_section("*All teams* (new · resolved · open · median speeds · CSAT · "
                                      "SLA share first response / resolution)")]
    blocks += [md_section(t) for t in sections([_team_row(d) for d in ranked], max_sections=10,
                                               unit="more teams (see `askdesk digest --json`)")]
    blocks += [DividerBlock(), md_section("*Internal-customer map* — requests per department and team")]
    rows = [_department_row(o, dept, names) for dept in o.departments] or ["No requests this week."]
    blocks += [md_section(t) for t in sections(rows, max_sections=10, unit="more departments")]
    legend = f"{DAGGER} {SUPPRESSED_TEXT}."
    if chart:
        legend += " The department × team chart follows."
    blocks.append(_ctx(legend))
    text = f"Organisation weekly digest {o.period.week}: {total_new} new requests across {len(o.teams)} teams"
    return Rendered(text=text, blocks=blocks[:MAX_BLOCKS])
