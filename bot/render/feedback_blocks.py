"""Pure Block Kit builders for pulse surveys: the DM (open, answered, closed), the "Tell us more"
modal, and the parser of that modal's state."""

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
from bot.render.blocks import Rendered, escape, md_section, plain, request_title, slack_date, truncate
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from storage.feedback import DIMENSIONS
from storage.models import Request, Survey

SCORE_LABELS = {1: "Very poor", 2: "Poor", 3: "Okay", 4: "Good", 5: "Excellent"}
SCORE_EMOJI = {1: ":disappointed:", 2: ":slightly_frowning_face:", 3: ":neutral_face:",
               4: ":slightly_smiling_face:", 5: ":star-struck:"}
DIMENSION_LABELS = {
    "responsiveness": ("Responsiveness", "How quickly did they pick it up and get back to you?"),
    "clarity": ("Communication clarity", "Were their answers clear and easy to act on?"),
    "transparency": ("Information transparency", "Did they keep you informed about what was happening?"),
    "support": ("Support given", "Did they actually help you get what you needed?"),
}
COMMENT_LIMIT = 2000
ANONYMOUS_VALUE = "anonymous"


def score_action(score: int) -> str:
    return f"{Action.SURVEY_SCORE}_{score}"


def dimension_block(name: str) -> str:
    return f"{B.DIMENSION}_{name}"


def score_text(score: int) -> str:
    return f"{score} · {SCORE_LABELS[score]}"


def is_closed(survey: Survey, now: datetime) -> bool:
    return survey.status == "expired" or (survey.expires_at is not None and survey.expires_at <= now)


def _privacy_note(team: Team, threshold: int) -> str:
    return (f":lock: Anonymous: {escape(team.name)} only ever sees totals over at least {threshold} answers, "
            "never who said what.")


def _buttons(survey: Survey) -> ActionsBlock:
    buttons = [ButtonElement(text=plain(f"{s} {SCORE_EMOJI[s]}", 75), action_id=score_action(s),
                             value=str(survey.id), style="primary" if survey.score == s else None)
               for s in range(1, 6)]
    more = "Change details" if survey.answered_at and _has_details(survey) else "Tell us more…"
    buttons.append(ButtonElement(text=plain(more, 75), action_id=Action.SURVEY_MORE, value=str(survey.id)))
    return ActionsBlock(block_id=f"survey_{survey.id}", elements=buttons)


def _has_details(survey: Survey) -> bool:
    return bool(survey.comment) or any(getattr(survey, d) is not None for d in DIMENSIONS)


def _answer_lines(survey: Survey) -> list[str]:
    lines = []
    if survey.score is not None:
        lines.append(f"Overall: *{score_text(survey.score)}* {SCORE_EMOJI[survey.score]}")
    dims = [f"{DIMENSION_LABELS[d][0]}: *{getattr(survey, d)}*" for d in DIMENSIONS if getattr(survey, d)]
    if dims:
        lines.append(" · ".join(dims))
    if survey.comment:
        lines.append("Your comment is saved and " + ("may be shared *anonymously* in team reports."
                                                     if survey.comment_anonymous else "kept *private*."))
    return lines


def survey_message(survey: Survey, req: Request, team: Team, *, now: datetime, threshold: int) -> Rendered:
    """The survey DM in its current state: open, answered (changeable) or closed."""
    title = f"*{escape(truncate(request_title(req), 200))}*"
    name = escape(team.name)
    until = slack_date(survey.expires_at) if survey.expires_at else None
    if is_closed(survey, now):
        since = f" since {until}." if until else "."
        lines = [f":lock: This survey about {title} ({name}) is closed{since}"]
        lines += _answer_lines(survey) if survey.answered_at else ["No answer was given — no problem."]
        if survey.answered_at:
            lines.append("Thank you for your feedback!")
        text = f"The survey about request #{req.id} ({team.name}) is closed."
        return Rendered(text=text, blocks=[md_section("\n".join(lines))])
    if survey.answered_at:
        head = f":pray: *Thank you!* Your feedback on {title} for {name} is saved."
        blocks: list[Block] = [md_section("\n".join([head, *_answer_lines(survey)])), _buttons(survey)]
        note = "You can change your answer" + (f" until {until}." if until else ".")
        note = f"{note} {_privacy_note(team, threshold)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
        return Rendered(text=f"Thanks for your feedback on request #{req.id} to {team.name}!", blocks=blocks)
    head = (f":wave: Your request {title} to *{name}* was resolved. How did {name} do?\n"
            "Pick a score from *1 (worst)* to *5 (best)* — one click is enough.")
    closes = f" Open until {until}." if until else ""
    blocks = [md_section(head), _buttons(survey),
              ContextBlock(elements=[MarkdownTextObject(text=_privacy_note(team, threshold) + closes)])]
    return Rendered(text=f"How did {team.name} do with your request #{req.id}? (1 = worst, 5 = best)",
                    blocks=blocks)


def _score_options() -> list[Option]:
    return [Option(text=plain(f"{score_text(s)}", 75), value=str(s)) for s in range(5, 0, -1)]


def _select(block_id: str, label: str, current: int | None, hint: str | None = None) -> InputBlock:
    options = _score_options()
    initial = next((o for o in options if current is not None and o.value == str(current)), None)
    element = StaticSelectElement(action_id=INPUT, options=options, initial_option=initial,
                                  placeholder=plain("1 (worst) … 5 (best)"))
    return InputBlock(block_id=block_id, label=plain(label), optional=True,
                      hint=plain(hint) if hint else None, element=element)


def survey_modal(survey: Survey, req: Request, team: Team, *, threshold: int) -> View:
    """"Tell us more": overall score, the four dimensions, a comment and the anonymity choice."""
    share = Option(text=plain("Share my comment anonymously in team reports"), value=ANONYMOUS_VALUE)
    blocks: list[Block] = [
        md_section(f"About *{escape(truncate(request_title(req), 200))}* ({escape(team.name)}). "
                   "Every question is optional."),
        _select(B.OVERALL, "Overall", survey.score),
    ]
    blocks += [_select(dimension_block(d), DIMENSION_LABELS[d][0], getattr(survey, d), DIMENSION_LABELS[d][1])
               for d in DIMENSIONS]
    blocks += [
        InputBlock(block_id=B.COMMENT, label=plain("Anything else?"), optional=True,
                   element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=COMMENT_LIMIT,
                                                 initial_value=survey.comment or None)),
        InputBlock(block_id=B.ANONYMOUS, label=plain("Your comment"), optional=True,
                   element=CheckboxesElement(action_id=INPUT, options=[share],
                                             initial_options=[share] if survey.comment_anonymous else None)),
        ContextBlock(elements=[MarkdownTextObject(
            text=f"{_privacy_note(team, threshold)} Unticked, your comment is stored but never shown "
                 "to anyone.")]),
    ]
    return View(type="modal", callback_id=Callback.SURVEY_MODAL, title=plain("Tell us more", 24),
                submit=plain("Send", 24), close=plain("Cancel", 24), private_metadata=str(survey.id),
                blocks=blocks)


@dataclass(frozen=True)
class SurveyForm:
    """A parsed modal submission: only the fields it sets (None = left empty)."""

    score: int | None
    dimensions: dict[str, int | None]
    comment: str | None
    anonymous: bool

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.dimensions, "comment": self.comment,
                               "comment_anonymous": self.anonymous}
        if self.score is not None:
            out["score"] = self.score
        return out

    @property
    def empty(self) -> bool:
        return self.score is None and not self.comment and all(v is None for v in self.dimensions.values())


def _element(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    return (values.get(block_id) or {}).get(INPUT) or {}


def _score(values: dict[str, Any], block_id: str) -> int | None:
    raw = (_element(values, block_id).get("selected_option") or {}).get("value")
    return int(raw) if isinstance(raw, str) and raw in {"1", "2", "3", "4", "5"} else None


def parse_survey_form(state_values: dict[str, Any]) -> SurveyForm:
    """Read `view.state.values` of the survey modal (forged or odd values are dropped)."""
    comment = _element(state_values, B.COMMENT).get("value")
    comment = comment.strip()[:COMMENT_LIMIT] if isinstance(comment, str) and comment.strip() else None
    chosen = _element(state_values, B.ANONYMOUS).get("selected_options") or []
    anonymous = any(isinstance(o, dict) and o.get("value") == ANONYMOUS_VALUE for o in chosen)
    return SurveyForm(score=_score(state_values, B.OVERALL),
                      dimensions={d: _score(state_values, dimension_block(d)) for d in DIMENSIONS},
                      comment=comment, anonymous=anonymous)
