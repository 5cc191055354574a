"""Pure Block Kit builders for the needs-survey DM (open, answered, closed), its reminder, the
questionnaire modal and that modal's parser, in the reader's language (`t`)."""

from __future__ import annotations

import json
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
from bot.i18n import Translator
from bot.render import feedback_blocks
from bot.render.blocks import Rendered, escape, md_section, plain, slack_date
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from storage.models import NeedsAnswer, NeedsInvitation, NeedsRound

SCORE_NAMES = ("overall", "communication", "transparency", "support")
DIMENSION_NAMES = SCORE_NAMES[1:]
SCORES = range(1, 6)
SCORE_EMOJI = {1: ":disappointed:", 2: ":slightly_frowning_face:", 3: ":neutral_face:",
               4: ":slightly_smiling_face:", 5: ":star-struck:"}
TEXT_LIMIT = 1500
SHARE_VALUE = "share"


def score_label(score: int, t: Translator) -> str:
    return feedback_blocks.score_label(score, t)  # the same five words as the pulse survey


def question(name: str, team: str, t: Translator) -> str:
    """A score question of the questionnaire, about `team` (a name, escaped by the caller when needed)."""
    questions = {
        "overall": t._("Overall, how satisfied are you working with {team}?", team=team),
        "communication": t._("Communication efficiency: do you get what you need from {team} without chasing?",
                             team=team),
        "transparency": t._("Information transparency: do you know what {team} is doing about your requests?",
                            team=team),
        "support": t._("Support: does {team} actually help you get your work done?", team=team),
    }
    return questions[name]


def short_title(name: str, t: Translator) -> str:
    """A score's short name: "Overall satisfaction"."""
    titles = {"overall": t._("Overall satisfaction"), "communication": t._("Communication efficiency"),
              "transparency": t._("Information transparency"), "support": t._("Support")}
    return titles[name]


def score_action(score: int) -> str:
    return f"{Action.NEEDS_SCORE}_{score}"


def score_block(name: str) -> str:
    return f"{B.NEEDS_SCORE}_{name}"


def is_closed(rnd: NeedsRound, now: datetime) -> bool:
    return rnd.status != "open" or rnd.closes_at <= now


def privacy_note(team: Team, threshold: int, t: Translator) -> str:
    return t._(":lock: Anonymous: {team} only sees figures and themes given by at least {n} people, and never who "
               "said what.", team=escape(team.name), n=threshold)


# -- "Last time you told us …; we did …" ---------------------------------------------------------
def intro_data(needs: list[str], actions: list[str]) -> str | None:
    """What a round's opening remembers (stored on the round, rendered in each reader's language)."""
    return json.dumps({"needs": needs, "did": actions}, ensure_ascii=False) if actions else None


def intro_text(stored: str | None, t: Translator) -> str | None:
    """The opening sentence for the team's done actions; an intro stored as plain text is shown as it is."""
    if not stored:
        return None
    try:
        data = json.loads(stored)
    except ValueError:
        return stored
    if not isinstance(data, dict):
        return stored
    if not data.get("did"):
        return None
    sep = t._("; ")
    did = sep.join(str(a) for a in data["did"])
    if data.get("needs"):
        return t._("Last time you told us: {needs}. We did: {actions}.",
                   needs=sep.join(str(n) for n in data["needs"]), actions=did)
    return t._("After the last survey we did: {actions}.", actions=did)


def _buttons(invitation: NeedsInvitation, answer: NeedsAnswer | None, t: Translator) -> ActionsBlock:
    chosen = answer.overall if answer else None
    buttons = [ButtonElement(text=plain(f"{s} {SCORE_EMOJI[s]}", 75), action_id=score_action(s),
                             value=str(invitation.id), style="primary" if chosen == s else None)
               for s in SCORES]
    more = t._("Change my answers") if answer else t._("All questions…")
    buttons.append(ButtonElement(text=plain(more, 75), action_id=Action.NEEDS_MORE, value=str(invitation.id)))
    return ActionsBlock(block_id=f"needs_{invitation.id}", elements=buttons)


def _answer_lines(answer: NeedsAnswer, t: Translator) -> list[str]:
    lines = []
    scores = [t._("{title}: *{score}*", title=short_title(n, t), score=getattr(answer, n))
              for n in SCORE_NAMES if getattr(answer, n) is not None]
    if scores:
        lines.append(" · ".join(scores))
    if answer.obstacle or answer.start_stop:
        lines.append(t._("Your written answers are saved and may be quoted *anonymously* in the team's report.")
                     if answer.shareable else t._("Your written answers are saved and kept *private*."))
    return lines


def invitation_message(invitation: NeedsInvitation, rnd: NeedsRound, team: Team, answer: NeedsAnswer | None, *,
                       now: datetime, threshold: int, t: Translator) -> Rendered:
    """The needs-survey DM in its current state: open, answered (changeable) or closed."""
    name = escape(team.name)
    until = slack_date(rnd.closes_at)
    if is_closed(rnd, now):
        lines = [t._(":lock: {team}'s needs survey is closed since {date}.", team=name, date=until)]
        lines += [*_answer_lines(answer, t), t._("Thank you for your answers!")] if answer else [
            t._("No answer was given — no problem.")]
        return Rendered(text=t._("{team}'s needs survey is closed.", team=team.name),
                        blocks=[md_section("\n".join(lines))])
    if answer is not None:
        head = t._(":pray: *Thank you!* Your answers to {team}'s needs survey are saved.", team=name)
        note = t._("You can change them until {date}.", date=until) + " " + privacy_note(team, threshold, t)
        return Rendered(text=t._("Thanks for answering {team}'s needs survey!", team=team.name), blocks=[
            md_section("\n".join([head, *_answer_lines(answer, t)])), _buttons(invitation, answer, t),
            ContextBlock(elements=[MarkdownTextObject(text=note)])])
    blocks: list[Block] = [md_section(
        t._(":wave: *{team} would like to know how working with them is going* — and what you need from them.",
            team=name))]
    intro = intro_text(rnd.intro, t)
    if intro:
        blocks.append(md_section(":speech_balloon: " + escape(intro)))
    blocks += [
        md_section(question("overall", name, t) + "\n" + t._(
            "Pick *1 (worst)* to *5 (best)* — one click is an answer; *All questions…* adds three scores and two "
            "optional questions.")),
        _buttons(invitation, None, t),
        ContextBlock(elements=[MarkdownTextObject(
            text=privacy_note(team, threshold, t) + " " + t._("Open until {date}.", date=until))]),
    ]
    return Rendered(text=t._("How is working with {team} going? (needs survey, 1 = worst, 5 = best)",
                             team=team.name), blocks=blocks)


def reminder_message(invitation: NeedsInvitation, rnd: NeedsRound, team: Team, *, threshold: int,
                     t: Translator) -> Rendered:
    name, until = escape(team.name), slack_date(rnd.closes_at)
    text = t._(":alarm_clock: A reminder: {team}'s needs survey is open until {date}. It takes two minutes, and it "
               "is how {team} learns what to improve.", team=name, date=until)
    return Rendered(text=t._("A reminder: {team}'s needs survey is open until {date}.", team=team.name,
                             date=t.fmt_date(rnd.closes_at, skeleton="yMMMd")),
                    blocks=[md_section(text), _buttons(invitation, None, t),
                            ContextBlock(elements=[MarkdownTextObject(text=privacy_note(team, threshold, t))])])


def _score_select(name: str, team: Team, current: int | None, t: Translator) -> InputBlock:
    options = [Option(text=plain(f"{s} · {score_label(s, t)}", 75), value=str(s)) for s in reversed(SCORES)]
    initial = next((o for o in options if current is not None and o.value == str(current)), None)
    return InputBlock(block_id=score_block(name), label=plain(question(name, team.name, t), 2000),
                      optional=True,
                      element=StaticSelectElement(action_id=INPUT, options=options, initial_option=initial,
                                                  placeholder=plain(t._("1 (worst) … 5 (best)"))))


def _text_input(block_id: str, label: str, current: str | None) -> InputBlock:
    return InputBlock(block_id=block_id, label=plain(label, 2000), optional=True,
                      element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=TEXT_LIMIT,
                                                    initial_value=current or None))


def survey_modal(invitation: NeedsInvitation, team: Team, answer: NeedsAnswer | None, *, threshold: int,
                 t: Translator) -> View:
    """The whole questionnaire: four scores and two optional written answers."""
    share = Option(text=plain(t._("Quote my written answers anonymously in the report")), value=SHARE_VALUE)
    blocks: list[Block] = [md_section(t._("Every question is optional."))]
    blocks += [_score_select(n, team, getattr(answer, n) if answer else None, t) for n in SCORE_NAMES]
    blocks += [
        _text_input(B.NEEDS_OBSTACLE, t._("What is the biggest obstacle when you work with {team}?", team=team.name),
                    answer.obstacle if answer else None),
        _text_input(B.NEEDS_START_STOP, t._("What should {team} start or stop doing?", team=team.name),
                    answer.start_stop if answer else None),
        InputBlock(block_id=B.NEEDS_SHARE, label=plain(t._("Your written answers")), optional=True,
                   element=CheckboxesElement(action_id=INPUT, options=[share],
                                             initial_options=[share] if (answer is None or answer.shareable)
                                             else None)),
        ContextBlock(elements=[MarkdownTextObject(
            text=privacy_note(team, threshold, t) + " " + t._(
                "Unticked, your written answers are stored but never quoted or grouped into themes."))]),
    ]
    return View(type="modal", callback_id=Callback.NEEDS_MODAL, title=plain(t._("Needs survey"), 24),
                submit=plain(t._("Send"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(invitation.id),
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
