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
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date, truncate
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from bot.render.needs_text import (
    PART_TITLES,
    SCORE_TITLES,
    STATUS_TITLES,
    change_text,
    formula,
    part_value,
    pct,
    response_text,
    score_text,
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


def report_message(report: NeedsReport, *, with_action_button: bool) -> Rendered:
    """A closed round's report: response rate, scores with their change, common needs with quotes."""
    name = escape(report.team_name)
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"Needs survey {report.key} · {report.team_name}")),
        md_section("*Response rate:* " + response_text(report)),
        md_section("\n".join(f"*{SCORE_TITLES[n]}:* {escape(score_text(s, report.previous_key))}"
                             for n, s in report.scores.items())),
        DividerBlock(),
        md_section(f"*What {name}'s internal customers need most*"),
    ]
    if not report.themes:
        blocks.append(md_section(f"No common need was written by at least {report.threshold} people this time."
                                 ))
    for theme in report.themes[:8]:
        quotes = "\n".join(f"> {escape(truncate(q, 300))}" for q in theme.quotes)
        label = escape(theme.label)
        blocks.append(md_section(truncate(f"*{theme.rank}. {label}* — {theme.people} people\n{quotes}", 3000)))
    if report.actions:
        lines = [f"{STATUS_EMOJI.get(a.status, '')} {escape(a.title)} · _{STATUS_TITLES.get(a.status, a.status)}_"
                 for a in report.actions]
        blocks.append(md_section("*Improvement actions*\n" + "\n".join(lines)))
    if with_action_button:
        blocks.append(ActionsBlock(block_id=f"needs_report_{report.round_id}", elements=[ButtonElement(
            text=plain("Record an action", 75), action_id=Action.NEEDS_ACTION_NEW, value=str(report.round_id),
            style="primary")]))
    blocks.append(_context(
        f":lock: Scores, themes and quotes are shown only when at least {report.threshold} people gave them; "
        "quotes are anonymised. Themes group the written answers by the words they share (docs/needs.md)."
        ))
    return Rendered(text=f"Needs survey {report.key} for {report.team_name}: {response_text(report)}",
                    blocks=blocks[:50])


# -- improvement actions --------------------------------------------------------------------------
def action_modal(rnd: NeedsRound, team: Team, themes: list[NeedsTheme], *, user: str) -> View:
    options = [Option(text=plain(f"{t.rank}. {t.label}", 75), value=str(t.id)) for t in themes[:99]]
    options.append(Option(text=plain("No theme in particular", 75), value=NO_THEME))
    blocks: list[Block] = [
        md_section(f"For {escape(team.name)}'s needs survey {rnd.key}. When the action is done, everyone who was "
                   "surveyed gets one message saying what changed — never who asked for it."),
        InputBlock(block_id=B.ACTION_TITLE, label=plain("What will you do?"),
                   element=PlainTextInputElement(action_id=INPUT, max_length=TITLE_LIMIT,
                                                 placeholder=plain("e.g. Publish the expense rules on one page"))),
        InputBlock(block_id=B.ACTION_THEME, label=plain("For which need?"), optional=True,
                   element=StaticSelectElement(action_id=INPUT, options=options,
                                               placeholder=plain("Pick a theme"))),
        InputBlock(block_id=B.ACTION_DETAIL, label=plain("What changes, and why?"), optional=True,
                   hint=plain("Sent to everyone surveyed when the action is done."),
                   element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=DETAIL_LIMIT)),
        InputBlock(block_id=B.ACTION_OWNER, label=plain("Owner"), optional=True,
                   element=UserSelectElement(action_id=INPUT, initial_user=user)),
        InputBlock(block_id=B.ACTION_DUE, label=plain("Due date"), optional=True,
                   element=DatePickerElement(action_id=INPUT)),
    ]
    return View(type="modal", callback_id=Callback.NEEDS_ACTION_MODAL, title=plain("Improvement action", 24),
                submit=plain("Record", 24), close=plain("Cancel", 24),
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


def done_modal(action: NeedsAction) -> View:
    return View(type="modal", callback_id=Callback.NEEDS_DONE_MODAL, title=plain("Action done", 24),
                submit=plain("Mark done", 24), close=plain("Cancel", 24), private_metadata=str(action.id),
                blocks=[
                    md_section(f"*{escape(action.title)}*"),
                    InputBlock(block_id=B.ACTION_DETAIL, label=plain("What changed, and why?"), optional=True,
                               hint=plain("Everyone who was surveyed gets one message with this."),
                               element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=DETAIL_LIMIT,
                                                             initial_value=action.detail or None)),
                ])


def parse_done_detail(values: dict[str, Any]) -> str | None:
    return _text(values, B.ACTION_DETAIL, DETAIL_LIMIT)


def action_card(action: NeedsAction, rnd: NeedsRound, team: Team, theme: str | None) -> Rendered:
    status = STATUS_TITLES.get(action.status, action.status)
    lines = ["{emoji} *Improvement action* · {status}".format(emoji=STATUS_EMOJI.get(action.status, ""), status=status),
             f"*{escape(action.title)}*"]
    if theme:
        lines.append(f"For the need: “{escape(theme)}” ({rnd.key})")
    else:
        lines.append(f"From the needs survey {rnd.key}")
    facts = []
    if action.owner_id:
        facts.append(f"Owner: <@{action.owner_id}>")
    if action.due_on:
        facts.append(f"Due: {action.due_on.isoformat()}")
    if facts:
        lines.append(" · ".join(facts))
    if action.detail:
        lines.append(escape(truncate(action.detail, 1500)))
    if action.status == "done" and action.done_at:
        lines.append(f"Done {slack_date(action.done_at)}; everyone surveyed is being told.")
    blocks: list[Block] = [md_section("\n".join(lines))]
    buttons = []
    if action.status == "planned":
        buttons.append(ButtonElement(text=plain("Mark in progress", 75), action_id=Action.NEEDS_ACTION_PROGRESS,
                                     value=str(action.id)))
    if action.status != "done":
        buttons.append(ButtonElement(text=plain("Mark done…", 75), action_id=Action.NEEDS_ACTION_DONE,
                                     value=str(action.id), style="primary"))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"needs_action_{action.id}", elements=buttons))
    return Rendered(text=f"Improvement action for {team.name}: {action.title} ({status})", blocks=blocks)


def done_message(action: NeedsAction, rnd: NeedsRound, team: Team, theme: str | None) -> Rendered:
    """The "you said, we did" DM: what changed and why — never who asked for it."""
    name = escape(team.name)
    said = (f"In {name}'s needs survey ({rnd.key}) people told us: “{escape(theme)}”."
            if theme else f"You took part in {name}'s needs survey ({rnd.key}).")
    lines = [f":white_check_mark: *You said, we did — {name}*", said,
             f"What we did: *{escape(action.title)}*"]
    if action.detail:
        lines.append(escape(truncate(action.detail, 1500)))
    lines.append("Thank you for telling us.")
    return Rendered(text=f"You said, we did: {team.name} — {action.title}", blocks=[md_section("\n".join(lines))])


# -- scorecard ------------------------------------------------------------------------------------
def scorecard_message(card: Scorecard) -> Rendered:
    status = "" if card.ended else " (provisional)"
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"Internal satisfaction scorecard {card.quarter.key}{status}")),
        _context(f"Per team: the internal satisfaction index (0–100) and its parts, compared with {card.previous_key}."
                 ),
    ]
    for score in card.teams[:20]:
        index = "—" if score.index is None else f"{score.index:.0f} / 100"
        fields = [MarkdownTextObject(text=f"*{PART_TITLES[p]}*\n{escape(part_value(score, p))}{change_text(score, p)}")
                  for p in PART_TITLES]
        fields.append(MarkdownTextObject(text=f"*Pulse-survey response rate*\n{pct(score.pulse_response_rate)}"))
        blocks += [md_section(f"*{escape(score.name)}* · index *{index}*{change_text(score, 'index')}"),
                   SectionBlock(fields=fields[:10])]
    blocks.append(_context(escape(formula(card)) + " Feedback figures are shown only over at least "
                           f"{card.threshold} answers."))
    return Rendered(text=f"Internal satisfaction scorecard {card.quarter.key}", blocks=blocks[:50])
