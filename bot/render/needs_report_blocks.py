"""Pure Block Kit builders for the needs report, improvement actions (modal, card, "we did" DM) and
the quarterly scorecard post."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DatePickerElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.config import Team
from bot.i18n import Translator
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date, truncate
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from bot.render.needs_blocks import short_title
from bot.render.needs_text import (
    PARTS,
    change_text,
    formula,
    index_text,
    no_theme_text,
    part_title,
    part_value,
    pct,
    response_text,
    score_text,
    scorecard_title,
    status_title,
    theme_people,
    threshold_note,
)
from bot.services.needs_report import NeedsReport
from bot.services.scorecard import Scorecard
from storage.models import NeedsAction, NeedsRound, NeedsTheme

NO_THEME = "none"
TITLE_LIMIT = 150
DETAIL_LIMIT = 1000
STATUS_EMOJI = {"planned": ":spiral_note_pad:", "in_progress": ":hammer_and_wrench:", "done": ":white_check_mark:"}


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, 3000))])


def report_message(report: NeedsReport, *, with_action_button: bool, t: Translator) -> Rendered:
    """A closed round's report: response rate, scores with their change, common needs with quotes."""
    name = escape(report.team_name)
    blocks: list[Block] = [
        HeaderBlock(text=plain(t._("Needs survey {round} · {team}", round=report.key, team=report.team_name))),
        md_section(t._("*Response rate:* {rate}", rate=response_text(report, t))),
        md_section("\n".join(f"*{short_title(n, t)}:* {escape(score_text(s, report.previous_key, t))}"
                             for n, s in report.scores.items())),
        DividerBlock(),
        md_section(t._("*What {team}'s internal customers need most*", team=name)),
    ]
    if not report.themes:
        blocks.append(md_section(no_theme_text(report.threshold, t)))
    for theme in report.themes[:8]:
        quotes = "\n".join(f"> {escape(truncate(q, 300))}" for q in theme.quotes)
        head = f"*{theme.rank}. {escape(theme.label)}* — {theme_people(theme.people, t)}"
        blocks.append(md_section(truncate(f"{head}\n{quotes}", 3000)))
    if report.actions:
        lines = [f"{STATUS_EMOJI.get(a.status, '')} {escape(a.title)} · _{status_title(a.status, t)}_"
                 for a in report.actions]
        blocks.append(md_section(t._("*Improvement actions*") + "\n" + "\n".join(lines)))
    if with_action_button:
        blocks.append(ActionsBlock(block_id=f"needs_report_{report.round_id}", elements=[ButtonElement(
            text=plain(t._("Record an action"), 75), action_id=Action.NEEDS_ACTION_NEW, value=str(report.round_id),
            style="primary")]))
    blocks.append(_context(t.ngettext(
        ":lock: Scores, themes and quotes are shown only when at least {n} person gave them; quotes are anonymised. "
        "Themes group the written answers by the words they share.",
        ":lock: Scores, themes and quotes are shown only when at least {n} people gave them; quotes are anonymised. "
        "Themes group the written answers by the words they share.", report.threshold)))
    return Rendered(text=t._("Needs survey {round} for {team}: {rate}", round=report.key, team=report.team_name,
                             rate=response_text(report, t)), blocks=blocks[:50])


# -- improvement actions --------------------------------------------------------------------------
def action_modal(rnd: NeedsRound, team: Team, themes: list[NeedsTheme], *, user: str, t: Translator) -> View:
    options = [Option(text=plain(f"{theme.rank}. {theme.label}", 75), value=str(theme.id)) for theme in themes[:99]]
    options.append(Option(text=plain(t._("No theme in particular"), 75), value=NO_THEME))
    blocks: list[Block] = [
        md_section(t._("For {team}'s needs survey {round}. When the action is done, everyone who was surveyed gets "
                       "one message saying what changed — never who asked for it.", team=escape(team.name),
                       round=rnd.key)),
        InputBlock(block_id=B.ACTION_TITLE, label=plain(t._("What will you do?")),
                   element=PlainTextInputElement(action_id=INPUT, max_length=TITLE_LIMIT, placeholder=plain(
                       t._("e.g. Publish the expense rules on one page")))),
        InputBlock(block_id=B.ACTION_THEME, label=plain(t._("For which need?")), optional=True,
                   element=StaticSelectElement(action_id=INPUT, options=options,
                                               placeholder=plain(t._("Pick a theme")))),
        InputBlock(block_id=B.ACTION_DETAIL, label=plain(t._("What changes, and why?")), optional=True,
                   hint=plain(t._("Sent to everyone surveyed when the action is done.")),
                   element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=DETAIL_LIMIT)),
        InputBlock(block_id=B.ACTION_OWNER, label=plain(t._("Owner")), optional=True,
                   element=UserSelectElement(action_id=INPUT, initial_user=user)),
        InputBlock(block_id=B.ACTION_DUE, label=plain(t._("Due date")), optional=True,
                   element=DatePickerElement(action_id=INPUT)),
    ]
    return View(type="modal", callback_id=Callback.NEEDS_ACTION_MODAL, title=plain(t._("Improvement action"), 24),
                submit=plain(t._("Record"), 24), close=plain(t._("Cancel"), 24),
                private_metadata=json.dumps({"round": rnd.id}), blocks=blocks)


def _element(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    element = (values.get(block_id) or {}).get(INPUT)
    return element if isinstance(element, dict) else {}


def _text(values: dict[str, Any], block_id: str, limit: int) -> str | None:
    raw = _element(values, block_id).get("value")
    return raw.strip()[:limit] if isinstance(raw, str) and raw.strip() else None


@dataclass(frozen=True)
class ActionForm:
    """A parsed "Record an action" form."""

    title: str | None
    theme_id: int | None
    detail: str | None
    owner_id: str | None
    due_on: date | None


def parse_action_form(values: dict[str, Any]) -> ActionForm:
    theme = (_element(values, B.ACTION_THEME).get("selected_option") or {}).get("value")
    owner = _element(values, B.ACTION_OWNER).get("selected_user")
    raw_due = _element(values, B.ACTION_DUE).get("selected_date")
    try:
        due = date.fromisoformat(raw_due) if isinstance(raw_due, str) else None
    except ValueError:
        due = None
    return ActionForm(title=_text(values, B.ACTION_TITLE, TITLE_LIMIT),
                      theme_id=int(theme) if isinstance(theme, str) and theme.isdigit() else None,
                      detail=_text(values, B.ACTION_DETAIL, DETAIL_LIMIT),
                      owner_id=owner if isinstance(owner, str) and owner[:1] in "UW" and owner.isalnum() else None,
                      due_on=due)


def parse_round_metadata(raw: Any) -> int | None:
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    round_id = value.get("round") if isinstance(value, dict) else None
    return round_id if isinstance(round_id, int) else None


def done_modal(action: NeedsAction, t: Translator) -> View:
    return View(type="modal", callback_id=Callback.NEEDS_DONE_MODAL, title=plain(t._("Action done"), 24),
                submit=plain(t._("Mark done"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(action.id),
                blocks=[
                    md_section(f"*{escape(action.title)}*"),
                    InputBlock(block_id=B.ACTION_DETAIL, label=plain(t._("What changed, and why?")), optional=True,
                               hint=plain(t._("Everyone who was surveyed gets one message with this.")),
                               element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=DETAIL_LIMIT,
                                                             initial_value=action.detail or None)),
                ])


def parse_done_detail(values: dict[str, Any]) -> str | None:
    return _text(values, B.ACTION_DETAIL, DETAIL_LIMIT)


def action_card(action: NeedsAction, rnd: NeedsRound, team: Team, theme: str | None, t: Translator) -> Rendered:
    status = status_title(action.status, t)
    lines = [t._("{emoji} *Improvement action* · {status}", emoji=STATUS_EMOJI.get(action.status, ""), status=status),
             f"*{escape(action.title)}*"]
    if theme:
        lines.append(t._("For the need: “{theme}” ({round})", theme=escape(theme), round=rnd.key))
    else:
        lines.append(t._("From the needs survey {round}", round=rnd.key))
    facts = []
    if action.owner_id:
        mention = f"<@{action.owner_id}>"
        facts.append(t._("Owner: {user}", user=mention))
    if action.due_on:
        facts.append(t._("Due: {date}", date=action.due_on.isoformat()))
    if facts:
        lines.append(" · ".join(facts))
    if action.detail:
        lines.append(escape(truncate(action.detail, 1500)))
    if action.status == "done" and action.done_at:
        lines.append(t._("Done {date}; everyone surveyed is being told.", date=slack_date(action.done_at)))
    blocks: list[Block] = [md_section("\n".join(lines))]
    buttons = []
    if action.status == "planned":
        buttons.append(ButtonElement(text=plain(t._("Mark in progress"), 75), action_id=Action.NEEDS_ACTION_PROGRESS,
                                     value=str(action.id)))
    if action.status != "done":
        buttons.append(ButtonElement(text=plain(t._("Mark done…"), 75), action_id=Action.NEEDS_ACTION_DONE,
                                     value=str(action.id), style="primary"))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"needs_action_{action.id}", elements=buttons))
    return Rendered(text=t._("Improvement action for {team}: {title} ({status})", team=team.name,
                             title=action.title, status=status), blocks=blocks)


def done_message(action: NeedsAction, rnd: NeedsRound, team: Team, theme: str | None, t: Translator) -> Rendered:
    """The "you said, we did" DM: what changed and why — never who asked for it."""
    name = escape(team.name)
    said = (t._("In {team}'s needs survey ({round}) people told us: “{theme}”.", team=name, round=rnd.key,
                theme=escape(theme)) if theme else
            t._("You took part in {team}'s needs survey ({round}).", team=name, round=rnd.key))
    lines = [t._(":white_check_mark: *You said, we did — {team}*", team=name), said,
             t._("What we did: *{title}*", title=escape(action.title))]
    if action.detail:
        lines.append(escape(truncate(action.detail, 1500)))
    lines.append(t._("Thank you for telling us."))
    return Rendered(text=t._("You said, we did: {team} — {title}", team=team.name, title=action.title),
                    blocks=[md_section("\n".join(lines))])


# -- scorecard ------------------------------------------------------------------------------------
def scorecard_message(card: Scorecard, t: Translator) -> Rendered:
    blocks: list[Block] = [
        HeaderBlock(text=plain(scorecard_title(card, t))),
        _context(t._("Per team: the internal satisfaction index (0–100) and its parts, compared with {quarter}.",
                     quarter=card.previous_key)),
    ]
    pulse_rate = t._("Pulse-survey response rate")
    for score in card.teams[:20]:
        fields = [MarkdownTextObject(
            text=f"*{part_title(p, t)}*\n{escape(part_value(score, p, t))}{change_text(score, p, t)}") for p in PARTS]
        fields.append(MarkdownTextObject(text=f"*{pulse_rate}*\n{pct(score.pulse_response_rate, t)}"))
        head = t._("*{team}* · index *{index}*", team=escape(score.name), index=index_text(score, t))
        blocks += [md_section(head + change_text(score, "index", t)), SectionBlock(fields=fields[:10])]
    blocks.append(_context(escape(formula(card, t)) + " " + threshold_note(card, t)))
    return Rendered(text=t._("Internal satisfaction scorecard {quarter}", quarter=card.quarter.key),
                    blocks=blocks[:50])
