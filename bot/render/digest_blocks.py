"""Pure Block Kit builders for the weekly digests (slack_sdk.models): team, organisation, quiet week and
the on-demand (ephemeral) view.

Slack limits hold whatever the data: at most 50 blocks per message, 3000 characters per section and
150 per header (characters: they hold for Chinese text too). Long lists (departments, categories, teams,
requests) are cut with "…and N more". Everything is in the language of the channel the digest goes to.
Every satisfaction figure arrives already gated (bot/analytics/privacy.py); suppressed ones read
"not enough answers to show, to protect anonymity".
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject

from bot.analytics import GatedValue, RankedItem
from bot.i18n import Translator
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date, truncate
from bot.render.digest_text import (
    action_status,
    category_name,
    dimension_name,
    gated,
    pct,
    period_label,
    sla_by_urgency,
    sla_totals,
    suppressed,
)
from bot.render.links import link
from bot.render.sla_text import due_phrase
from bot.services.digests import DueRef, OrgDigest, RequestRef, Satisfaction, Speed, TeamDigest

MAX_BLOCKS = 50
SECTION_LIMIT = 3000
RESERVE = 40  # room for the "…and N more" line
LIST_LIMIT = 10
DAGGER = "†"


def fit(lines: Sequence[str], *, t: Translator, limit: int = SECTION_LIMIT, more: str | None = None) -> str:
    """Lines joined by newlines, within `limit` characters; what does not fit becomes "…and N more"."""
    return sections(lines, t=t, limit=limit, max_sections=1, more=more)[0] if lines else ""


def sections(lines: Sequence[str], *, t: Translator, limit: int = SECTION_LIMIT, max_sections: int = 4,
             more: str | None = None) -> list[str]:
    """Split lines into at most `max_sections` texts of at most `limit` characters each.

    `more` is the sentence for what is left out, with `{n}` (default "…and {n} more")."""
    out: list[str] = []
    current: list[str] = []
    used = 0
    for i, raw in enumerate(lines):
        line = truncate(raw, limit - RESERVE)
        if current and used + len(line) + 1 > limit - RESERVE:
            if len(out) + 1 >= max_sections:
                current.append((more or t.pattern("…and {n} more")).format(n=len(lines) - i))
                break
            out.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += len(line) + 1
    out.append("\n".join(current))
    return out


def _ctx(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_LIMIT))])


def _link(ref: RequestRef | DueRef) -> str:
    return link(ref.link, ref.title)


def _change(now: int, before: int, t: Translator) -> str:
    delta = now - before
    arrow = "▲" if delta > 0 else "▼" if delta < 0 else "="
    return t._("*{now}* ({arrow}{delta} vs {before})", now=now, arrow=arrow, delta=abs(delta) if delta else "",
               before=before)


def _period_line(d: TeamDigest | OrgDigest, t: Translator, now_label: bool = False) -> str:
    span = period_label(d.period, t)
    if now_label:
        text = t._("The last 7 days until now · {period}", period=span)
    else:
        text = t._("{week} · {period} · compared with the 7 days before", week=d.period.week, period=span)
    if d.late:
        text = t._("{text} · :hourglass: *posted late* (it was due {date})", text=text, date=slack_date(d.period.end))
    return text


def _volume(d: TeamDigest, t: Translator) -> str:
    lines = [t._("*Volume*"), t._("• New requests: {change}", change=_change(d.new, d.new_prev, t)),
             t._("• Resolved: {change}", change=_change(d.resolved, d.resolved_prev, t)),
             t._("• Transferred in / out: {into} / {out}", into=d.transferred_in, out=d.transferred_out),
             t._("• Open at the end: *{n}*", n=d.open_end)]
    if d.oldest_open:
        lines.append(t._("• Oldest open: {request} (open {age})", request=_link(d.oldest_open),
                         age=t.fmt_duration(d.oldest_open.age)))
    return fit(lines, t=t)


def _speed_line(label: str, s: Speed, t: Translator) -> str:
    if not s.count:
        return t._("• {label}: no requests resolved", label=label)
    values = {"label": label, "median": t.fmt_duration(s.median), "p90": t.fmt_duration(s.p90),
              "share": pct(s.within_sla, t), "target": t.fmt_duration(s.target)}
    if s.median_prev is not None:
        return t.ngettext(
            "• {label}: median *{median}*, was {was} · 90th percentile {p90} · *{share}* within the {target} "
            "target ({n} request)",
            "• {label}: median *{median}*, was {was} · 90th percentile {p90} · *{share}* within the {target} "
            "target ({n} requests)", s.count, was=t.fmt_duration(s.median_prev), **values)
    return t.ngettext(
        "• {label}: median *{median}* · 90th percentile {p90} · *{share}* within the {target} target "
        "({n} request)",
        "• {label}: median *{median}* · 90th percentile {p90} · *{share}* within the {target} target "
        "({n} requests)", s.count, **values)


def _speed(d: TeamDigest, t: Translator) -> str:
    return fit([t._("*Speed* (requests resolved this week)"),
                _speed_line(t._("First response"), d.first_response, t),
                _speed_line(t._("Resolution"), d.resolution, t)], t=t)


def _week(s: Satisfaction, t: Translator) -> str:
    return f"{s.week.week}, {period_label(s.week, t)}"


def _sla(d: TeamDigest, t: Translator) -> str:
    lines = [t._("*SLA*"), f"• {sla_totals(d.sla, t)}"]
    if d.sla.by_urgency:
        lines.append(t._("• By urgency (reminders / escalations / breaches): {counts}",
                         counts=sla_by_urgency(d.sla, t)))
    return fit(lines, t=t)


def _satisfaction(s: Satisfaction, t: Translator) -> str:
    if s.sent:
        answers = t._("• Survey answers: *{n}* ({share} of the {sent} surveys that closed then)", n=s.responses,
                      share=pct(s.response_rate, t), sent=s.sent)
    else:
        answers = t._("• Survey answers: *{n}*", n=s.responses)
    lines = [t._("*Satisfaction* — the last whole week, {week}", week=_week(s, t)), answers]
    if s.csat.suppressed:
        lines.append(t._("• Scores: _{suppressed}_ (fewer than {n} answers)", suppressed=suppressed(t),
                         n=s.threshold))
    else:
        was = s.csat_prev.value
        values = {"average": gated(s.average, t), "csat": gated(s.csat, t, percent=True)}
        if s.csat_prev.suppressed or was is None:
            lines.append(t._("• Average score: *{average}* / 5 · CSAT (share of 4–5): *{csat}*", **values))
        else:
            lines.append(t._("• Average score: *{average}* / 5 · CSAT (share of 4–5): *{csat}*, was {was}",
                             was=t.fmt_percent(was), **values))
        dims = " · ".join(f"{dimension_name(name, t)} {gated(v, t)}" for name, v in s.dimensions.items())
        lines.append(f"• {dims}")
    if s.ratings.suppressed:
        lines.append(t._("• Emoji ratings ({n}): _{suppressed}_", n=s.ratings.count, suppressed=suppressed(t)))
    else:
        parts = " · ".join(f"{score}★ {n}" for score, n in (s.ratings.value or {}).items())
        lines.append(t._("• Emoji ratings ({n}): {ratings}", n=s.ratings.count, ratings=parts))
    return fit(lines, t=t)


def _customer(item: RankedItem, t: Translator) -> str:
    if item.is_new:
        change = t._("new")
    elif item.delta:
        change = t._("{arrow}{delta}, was #{rank}", arrow="▲" if item.delta > 0 else "▼", delta=abs(item.delta),
                     rank=item.previous_rank)
    else:
        change = t._("=, was #{rank}", rank=item.previous_rank)
    return t._("{rank}. {department} — *{n}* ({change})", rank=item.rank, department=escape(item.key),
               n=item.count, change=change)


def _customers(d: TeamDigest, t: Translator) -> str:
    items = [_customer(i, t) for i in d.internal_customers[:LIST_LIMIT]] or [t._("No requests this week.")]
    hidden = len(d.internal_customers) - LIST_LIMIT
    more = t.pattern("…and {n} more departments")
    if hidden > 0:
        items.append(more.format(n=hidden))
    return fit([t._("*Internal customers* (departments that asked you)"), *items], t=t, more=more)


def _needs(d: TeamDigest, t: Translator) -> str:
    cats = " · ".join(f"{escape(category_name(c, t))} {n}" for c, n in d.top_categories[:LIST_LIMIT]) or "—"
    if len(d.top_categories) > LIST_LIMIT:
        cats = t._("{categories} · …and {n} more", categories=cats, n=len(d.top_categories) - LIST_LIMIT)
    topics = " · ".join(f"{escape(topic)} ({n})" for topic, n in d.topics) or t._("none recurring")
    return fit([t._("*Common needs* — candidates for an FAQ or a process fix"),
                t._("• Top categories: {categories}", categories=cats),
                t._("• Recurring topics: {topics}", topics=topics)], t=t)


def _attention(d: TeamDigest, t: Translator) -> str | None:
    lines = []
    if d.unclaimed_count:
        lines.append(t._("• Unclaimed past their first-response SLA, most overdue first: *{n}*", n=d.unclaimed_count))
        lines += [t._("   {request} — {due}", request=_link(r), due=due_phrase(r.due_at, d.period.end, t))
                  for r in d.unclaimed]
        if d.unclaimed_count > len(d.unclaimed):
            lines.append(t._("   …and {n} more", n=d.unclaimed_count - len(d.unclaimed)))
    if d.due_count:
        lines.append(t._("• Open by due time, overdue first: *{n}*", n=d.due_count))
        lines += [t._("   {request} — {due}", request=_link(r), due=due_phrase(r.due_at, d.period.end, t))
                  for r in d.due]
        if d.due_count > len(d.due):
            lines.append(t._("   …and {n} more", n=d.due_count - len(d.due)))
    if d.reopened_count:
        lines.append(t._("• Reopened this week: *{n}*", n=d.reopened_count))
        lines += [f"   {_link(r)}" for r in d.reopened]
        if d.reopened_count > len(d.reopened):
            lines.append(t._("   …and {n} more", n=d.reopened_count - len(d.reopened)))
    return fit([t._("*Needs attention*"), *lines], t=t) if lines else None


def _comments(s: Satisfaction, t: Translator) -> str | None:
    if s.comments.suppressed or not s.comments.value:
        return None
    quotes = [f"> {escape(c)}" for c in s.comments.value[:5]]
    more = len(s.comments.value) - len(quotes)
    return fit([t._("*What people said* (anonymous comments, week {week}, in random order)", week=s.week.week),
                *quotes,
                *([t._("…and {n} more", n=more)] if more else [])], t=t)


def _actions(d: TeamDigest, t: Translator) -> str | None:
    """Improvement actions from the needs surveys, listed until they are done."""
    if not d.actions:
        return None
    lines = [t._("*Improvement actions* — you said, we did (from the needs surveys)")]
    for a in d.actions:
        status = action_status(a.status, t)
        if a.due_on and a.status != "done":
            status = t._("{status}, due {date}", status=status, date=a.due_on.isoformat())
        if a.theme:
            lines.append(t._("• {action} — for “{need}” ({status})", action=escape(a.title), need=escape(a.theme),
                             status=status))
        else:
            lines.append(t._("• {action} ({status})", action=escape(a.title), status=status))
    return fit(lines, t=t)


def _text(d: TeamDigest, t: Translator) -> str:
    return t._("{team} weekly digest {week}: {new} new, {resolved} resolved, {open} open", team=d.name,
               week=d.period.week, new=d.new, resolved=d.resolved, open=d.open_end)


def team_digest(d: TeamDigest, *, t: Translator, chart: bool = True, title: str | None = None,
                now_label: bool = False) -> Rendered:
    """The weekly team digest (or, with `title`/`now_label`, the on-demand figures)."""
    if d.quiet:
        return quiet_week(d, t=t, title=title, now_label=now_label)
    blocks: list[Block] = [HeaderBlock(text=plain(title or t._("{team} · weekly digest", team=d.name))),
                           _ctx(_period_line(d, t, now_label)), md_section(_volume(d, t)), md_section(_speed(d, t)),
                           md_section(_sla(d, t)), md_section(_satisfaction(d.satisfaction, t)),
                           md_section(_customers(d, t)), md_section(_needs(d, t))]
    for extra in (_attention(d, t), _comments(d.satisfaction, t), _actions(d, t)):
        if extra:
            blocks.append(md_section(extra))
    note = t._("Satisfaction covers whole weeks that have ended, and only figures over at least {n} answers "
               "(comments: {n} comments) are shown.", n=d.satisfaction.threshold)
    if chart:
        note = t._("{note} The chart of the last 8 weeks (volume and CSAT) follows.", note=note)
    blocks.append(_ctx(note))
    return Rendered(text=_text(d, t), blocks=blocks[:MAX_BLOCKS])


def quiet_week(d: TeamDigest, *, t: Translator, title: str | None = None, now_label: bool = False) -> Rendered:
    lines = [t._(":zzz: *A quiet week* — no new requests, nothing resolved and no feedback.")]
    if d.open_end and d.oldest_open:
        lines.append(t._("Still open: *{n}* — oldest: {request}", n=d.open_end, request=_link(d.oldest_open)))
    elif d.open_end:
        lines.append(t._("Still open: *{n}*", n=d.open_end))
    blocks: list[Block] = [HeaderBlock(text=plain(title or t._("{team} · quiet week", team=d.name))),
                           _ctx(_period_line(d, t, now_label)), md_section(fit(lines, t=t))]
    for extra in (_attention(d, t), _actions(d, t)):
        if extra:
            blocks.append(md_section(extra))
    return Rendered(text=t._("{team} weekly digest {week}: a quiet week", team=d.name, week=d.period.week),
                    blocks=blocks)


def on_demand(d: TeamDigest, *, t: Translator) -> Rendered:
    """The ephemeral `/askdesk digest` view: volume and speed of the 7 days until now, satisfaction of
    the last whole week (the same figures as every other report of that week), no chart."""
    return team_digest(d, t=t, chart=False, title=t._("{team} · figures so far", team=d.name), now_label=True)


def _dagger(value: GatedValue[float], t: Translator) -> str:
    return DAGGER if value.suppressed else pct(value.value, t)


def _team_row(d: TeamDigest, t: Translator) -> str:
    return t._("*{team}* — {new} new · {resolved} resolved · {open} open · first response {first} · resolution "
               "{resolution} · CSAT {csat} · SLA {sla_first} / {sla_resolution}", team=escape(d.name.strip()),
               new=d.new, resolved=d.resolved, open=d.open_end, first=t.fmt_duration(d.first_response.median),
               resolution=t.fmt_duration(d.resolution.median), csat=_dagger(d.satisfaction.csat, t),
               sla_first=pct(d.first_response.within_sla, t), sla_resolution=pct(d.resolution.within_sla, t))


def _department_row(o: OrgDigest, dept: str, names: dict[str, str], t: Translator) -> str:
    cells = sorted(((team, n) for (d, team), n in o.matrix.items() if d == dept), key=lambda c: (-c[1], c[0]))
    parts = []
    for team, n in cells[:5]:
        csat = o.matrix_csat.get((dept, team))
        name = escape(names.get(team, team))
        parts.append(t._("{team} {n} (CSAT {csat})", team=name, n=n, csat=_dagger(csat, t)) if csat
                     else f"{name} {n}")
    row = " · ".join(parts)
    if len(cells) > 5:
        row = t._("{teams} · …and {n} more teams", teams=row, n=len(cells) - 5)
    return f"*{escape(dept)}* ({sum(n for _, n in cells)}): {row}"


def org_digest(o: OrgDigest, *, t: Translator, chart: bool = True) -> Rendered:
    names = {d.team: d.name for d in o.teams}
    total_new, total_resolved = sum(d.new for d in o.teams), sum(d.resolved for d in o.teams)
    ranked = sorted(o.teams, key=lambda d: (-d.new, d.name))
    blocks: list[Block] = [HeaderBlock(text=plain(t._("Organisation · weekly digest"))), _ctx(_period_line(o, t)),
                           md_section(t._("*{new}* new requests across {teams} teams · *{resolved}* resolved · "
                                          "CSAT {csat} (week {week})", new=total_new, teams=len(o.teams),
                                          resolved=total_resolved, csat=_dagger(o.csat, t),
                                          week=o.feedback_week.week if o.feedback_week else "—")),
                           md_section(t._("*All teams* (new · resolved · open · median speeds · CSAT · SLA share "
                                          "first response / resolution)"))]
    blocks += [md_section(x) for x in sections([_team_row(d, t) for d in ranked], t=t, max_sections=10,
                                               more=t.pattern("…and {n} more teams (see `askdesk digest --json`)"))]
    blocks += [DividerBlock(), md_section(t._("*Internal-customer map* — requests per department and team"))]
    rows = [_department_row(o, dept, names, t) for dept in o.departments] or [t._("No requests this week.")]
    blocks += [md_section(x) for x in sections(rows, t=t, max_sections=10, more=t.pattern("…and {n} more departments"))]
    legend = t._("{dagger} {suppressed} (a cell is also hidden when, next to its team's figure, it would let "
                 "fewer answers be worked out). CSAT is about the last whole week.", dagger=DAGGER,
                 suppressed=suppressed(t))
    if chart:
        legend = t._("{legend} The department × team chart follows.", legend=legend)
    blocks.append(_ctx(legend))
    text = t._("Organisation weekly digest {week}: {new} new requests across {teams} teams", week=o.period.week,
               new=total_new, teams=len(o.teams))
    return Rendered(text=text, blocks=blocks[:MAX_BLOCKS])
