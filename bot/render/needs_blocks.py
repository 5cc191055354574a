"""Pure Block Kit builders for the needs-survey DM (open, answered, closed), its reminder, the
questionnaire modal and that modal's parser.

Strings are whole sentences with named placeholders (`{team}`, `{date}`), ready for translation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.config import Team
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from storage.models import NeedsAnswer, NeedsInvitation, NeedsRound

SCORE_NAMES = ("overall", "communication", "transparency", "support")
DIMENSION_NAMES = SCORE_NAMES[1:]
SCORE_LABELS = {1: "Very poor", 2: "Poor", 3: "Okay", 4: "Good", 5: "Excellent"}
SCORE_EMOJI = {1: ":disappointed:", 2: ":slightly_frowning_face:", 3: ":neutral_face:",
               4: ":slightly_smiling_face:", 5: ":star-struck:"}
QUESTION = {
    "overall": "Overall, how satisfied are you working with {team}?",
    "communication": "Communication efficiency: do you get what you need from {team} without chasing?",
    "transparency": "Information transparency: do you know what {team} is doing about your requests?",
    "support": "Support: does {team} actually help you get your work done?",
}
SHORT = {"overall": "Overall satisfaction", "communication": "Communication efficiency",
         "transparency": "Information transparency", "support": "Support"}
OBSTACLE = "What is the biggest obstacle when you work with {team}?"
START_STOP = "What should {team} start or stop doing?"
TEXT_LIMIT = 1500
SHARE_VALUE = "share"


def score_action(score: int) -> str:
    return f"{Action.NEEDS_SCORE}_{score}"


def score_block(name: str) -> str:
    return f"{B.NEEDS_SCORE}_{name}"


def is_closed(rnd: NeedsRound, now: datetime) -> bool:
    return rnd.status != "open" or rnd.closes_at <= now


def privacy_note(team: Team, threshold: int) -> str:
    name = escape(team.name)
    return f":lock: Anonymous: {name} only sees figures and themes given by at least {threshold} people, and never " \
        "who said what."


def _buttons(invitation: NeedsInvitation, answer: NeedsAnswer | None) -> ActionsBlock:
    chosen = answer.overall if answer else None
    buttons = [ButtonElement(text=plain(f"{s} {SCORE_EMOJI[s]}", 75), action_id=score_action(s),
                             value=str(invitation.id), style="primary" if chosen == s else None)
               for s in range(1, 6)]
    more = "Change my answers" if answer else "All questions…"
    buttons.append(ButtonElement(text=plain(more, 75), action_id=Action.NEEDS_MORE, value=str(invitation.id)))
    return ActionsBlock(block_id=f"needs_{invitation.id}", elements=buttons)


def _answer_lines(answer: NeedsAnswer) -> list[str]:
    lines = []
    scores = [f"{SHORT[n]}: *{getattr(answer, n)}*" for n in SCORE_NAMES if getattr(answer, n) is not None]
    if scores:
        lines.append(" · ".join(scores))
    if answer.obstacle or answer.start_stop:
        lines.append("Your written answers are saved and " + (
            "may be quoted *anonymously* in the team's report." if answer.shareable else "kept *private*."))
    return lines


def invitation_message(invitation: NeedsInvitation, rnd: NeedsRound, team: Team, answer: NeedsAnswer | None, *,
                       now: datetime, threshold: int) -> Rendered:
    """The needs-survey DM in its current state: open, answered (changeable) or closed."""
    name = escape(team.name)
    until = slack_date(rnd.closes_at)
    if is_closed(rnd, now):
        lines = [f":lock: {name}'s needs survey is closed since {until}."]
        lines += [*_answer_lines(answer), "Thank you for your answers!"] if answer else [
            "No answer was given — no problem."]
        return Rendered(text=f"{team.name}'s needs survey is closed.", blocks=[md_section("\n".join(lines))])
    if answer is not None:
        head = f":pray: *Thank you!* Your answers to {name}'s needs survey are saved."
        note = f"You can change them until {until}. {privacy_note(team, threshold)}"
        return Rendered(text=f"Thanks for answering {team.name}'s needs survey!", blocks=[
            md_section("\n".join([head, *_answer_lines(answer)])), _buttons(invitation, answer),
            ContextBlock(elements=[MarkdownTextObject(text=note)])])
    blocks: list[Block] = [md_section(
        f":wave: *{name} would like to know how working with them is going* — and what you need from them."
        )]
    if rnd.intro:
        blocks.append(md_section(":speech_balloon: " + escape(rnd.intro)))
    blocks += [
        md_section((QUESTION["overall"] + "\nPick *1 (worst)* to *5 (best)* — one click is an answer; "
                    "*All questions…* adds three scores and two optional questions.").format(team=name)),
        _buttons(invitation, None),
        ContextBlock(elements=[MarkdownTextObject(
            text=f"{privacy_note(team, threshold)} Open until {until}.")]),
    ]
    return Rendered(text=f"How is working with {team.name} going? (needs survey, 1 = worst, 5 = best)",
                    blocks=blocks)


def reminder_message(invitation: NeedsInvitation, rnd: NeedsRound, team: Team, *, threshold: int) -> Rendered:
    name, until = escape(team.name), slack_date(rnd.closes_at)
    text = (f":alarm_clock: A reminder: {name}'s needs survey is open until {until}. It takes two minutes, and it "
            f"is how {name} learns what to improve.")
    return Rendered(text=f"A reminder: {team.name}'s needs survey is open until {rnd.closes_at:%Y-%m-%d}.",
                    blocks=[md_section(text), _buttons(invitation, None),
                            ContextBlock(elements=[MarkdownTextObject(text=privacy_note(team, threshold))])])


def _score_select(name: str, team: Team, current: int | None) -> InputBlock:
    options = [Option(text=plain(f"{s} · {SCORE_LABELS[s]}", 75), value=str(s)) for s in range(5, 0, -1)]
    initial = next((o for o in options if current is not None and o.value == str(current)), None)
    return InputBlock(block_id=score_block(name), label=plain(QUESTION[name].format(team=team.name), 2000),
                      optional=True,
                      element=StaticSelectElement(action_id=INPUT, options=options, initial_option=initial,
                                                  placeholder=plain("1 (worst) … 5 (best)")))


def _text_input(block_id: str, label: str, current: str | None) -> InputBlock:
    return InputBlock(block_id=block_id, label=plain(label, 2000), optional=True,
                      element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=TEXT_LIMIT,
                                                    initial_value=current or None))


def survey_modal(invitation: NeedsInvitation, team: Team, answer: NeedsAnswer | None, *, threshold: int) -> View:
    """The whole questionnaire: four scores and two optional written answers."""
    share = Option(text=plain("Quote my written answers anonymously in the report"), value=SHARE_VALUE)
    blocks: list[Block] = [md_section("Every question is optional.")]
    blocks += [_score_select(n, team, getattr(answer, n) if answer else None) for n in SCORE_NAMES]
    blocks += [
        _text_input(B.NEEDS_OBSTACLE, OBSTACLE.format(team=team.name), answer.obstacle if answer else None),
        _text_input(B.NEEDS_START_STOP, START_STOP.format(team=team.name), answer.start_stop if answer else None),
        InputBlock(block_id=B.NEEDS_SHARE, label=plain("Your written answers"), optional=True,
                   element=CheckboxesElement(action_id=INPUT, options=[share],
                                             initial_options=[share] if (answer is None or answer.shareable)
                                             else None)),
        ContextBlock(elements=[MarkdownTextObject(
            text=privacy_note(team, threshold) + " Unticked, your written answers are stored but never "
                 "quoted or grouped into themes.")]),
    ]
    return View(type="modal", callback_id=Callback.NEEDS_MODAL, title=plain("Needs survey", 24),
                submit=plain("Send", 24), close=plain("Cancel", 24), private_metadata=str(invitation.id),
                blocks=blocks)


@dataclass(frozen=True)
class NeedsForm:
    """A parsed questionnaire: the scores picked (None = left empty) and the written answers."""

    scores: dict[str, int | None]
    obstacle: str | None
    start_stop: str | None
    shareable: bool

    def values(self) -> dict[str, Any]:
        return {**self.scores, "obstacle": self.obstacle, "start_stop": self.start_stop,
                "shareable": self.shareable}

    @property
    def empty(self) -> bool:
        return not self.obstacle and not self.start_stop and all(v is None for v in self.scores.values())


def _element(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    element = (values.get(block_id) or {}).get(INPUT)
    return element if isinstance(element, dict) else {}


def _text(values: dict[str, Any], block_id: str) -> str | None:
    raw = _element(values, block_id).get("value")
    return raw.strip()[:TEXT_LIMIT] if isinstance(raw, str) and raw.strip() else None


def parse_needs_form(state_values: dict[str, Any]) -> NeedsForm:
    """Read `view.state.values` of the questionnaire (forged or odd values are dropped)."""
    scores: dict[str, int | None] = {}
    for name in SCORE_NAMES:
        raw = (_element(state_values, score_block(name)).get("selected_option") or {}).get("value")
        scores[name] = int(raw) if isinstance(raw, str) and raw in {"1", "2", "3", "4", "5"} else None
    chosen = _element(state_values, B.NEEDS_SHARE).get("selected_options") or []
    shareable = any(isinstance(o, dict) and o.get("value") == SHARE_VALUE for o in chosen)
    return NeedsForm(scores=scores, obstacle=_text(state_values, B.NEEDS_OBSTACLE),
                     start_stop=_text(state_values, B.NEEDS_START_STOP), shareable=shareable)
