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
from bot.i18n import Translator
from bot.render.blocks import Rendered, escape, md_section, plain, request_title, slack_date, truncate
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from storage.feedback import DIMENSIONS
from storage.models import Request, Survey

SCORE_EMOJI = {1: ":disappointed:", 2: ":slightly_frowning_face:", 3: ":neutral_face:",
               4: ":slightly_smiling_face:", 5: ":star-struck:"}
COMMENT_LIMIT = 2000
ANONYMOUS_VALUE = "anonymous"


def score_label(score: int, t: Translator) -> str:
    labels = {1: t._("Very poor"), 2: t._("Poor"), 3: t._("Okay"), 4: t._("Good"), 5: t._("Excellent")}
    return labels[score]


def dimension_label(name: str, t: Translator) -> tuple[str, str]:
    """A survey dimension's name and question."""
    labels = {
        "responsiveness": (t._("Responsiveness"), t._("How quickly did they pick it up and get back to you?")),
        "clarity": (t._("Communication clarity"), t._("Were their answers clear and easy to act on?")),
        "transparency": (t._("Information transparency"),
                         t._("Did they keep you informed about what was happening?")),
        "support": (t._("Support given"), t._("Did they actually help you get what you needed?")),
    }
    return labels[name]


def score_action(score: int) -> str:
    return f"{Action.SURVEY_SCORE}_{score}"


def dimension_block(name: str) -> str:
    return f"{B.DIMENSION}_{name}"


def score_text(score: int, t: Translator) -> str:
    return f"{score} · {score_label(score, t)}"


def is_closed(survey: Survey, now: datetime) -> bool:
    return survey.status == "expired" or (survey.expires_at is not None and survey.expires_at <= now)


def _privacy_note(team: Team, threshold: int, t: Translator) -> str:
    """What askdesk promises (docs/privacy.md), in the survey itself."""
    return t._(":lock: Anonymous: {team} never sees who said what — only figures for whole weeks, each over at "
               "least {n} answers. Your answer counts in the week this survey closes.",
               team=escape(team.name), n=threshold)


def _comment_note(threshold: int, t: Translator) -> str:
    return t._("A comment you share is shown only if at least {n} people left one that week, without names and in "
               "random order. Unticked, your comment is stored but never shown to anyone.", n=threshold)


def _buttons(survey: Survey, t: Translator) -> ActionsBlock:
    buttons = [ButtonElement(text=plain(f"{s} {SCORE_EMOJI[s]}", 75), action_id=score_action(s),
                             value=str(survey.id), style="primary" if survey.score == s else None)
               for s in range(1, 6)]
    more = t._("Change details") if survey.answered_at and _has_details(survey) else t._("Tell us more…")
    buttons.append(ButtonElement(text=plain(more, 75), action_id=Action.SURVEY_MORE, value=str(survey.id)))
    return ActionsBlock(block_id=f"survey_{survey.id}", elements=buttons)


def _has_details(survey: Survey) -> bool:
    return bool(survey.comment) or any(getattr(survey, d) is not None for d in DIMENSIONS)


def _answer_lines(survey: Survey, t: Translator) -> list[str]:
    lines = []
    if survey.score is not None:
        lines.append(t._("Overall: *{score}* {emoji}", score=score_text(survey.score, t),
                         emoji=SCORE_EMOJI[survey.score]))
    dims = [t._("{dimension}: *{score}*", dimension=dimension_label(d, t)[0], score=getattr(survey, d))
            for d in DIMENSIONS if getattr(survey, d)]
    if dims:
        lines.append(" · ".join(dims))
    if survey.comment:
        lines.append(t._("Your comment is saved and may be shared *anonymously* in team reports.")
                     if survey.comment_anonymous else t._("Your comment is saved and kept *private*."))
    return lines


def survey_message(survey: Survey, req: Request, team: Team, *, t: Translator, now: datetime,
                   threshold: int) -> Rendered:
    """The survey DM in its current state (open, answered and changeable, or closed), in the requester's language."""
    title = f"*{escape(truncate(request_title(req), 200))}*"
    name = escape(team.name)
    until = slack_date(survey.expires_at) if survey.expires_at else None
    if is_closed(survey, now):
        head = (t._(":lock: This survey about {title} ({team}) is closed since {date}.", title=title, team=name,
                    date=until) if until else
                t._(":lock: This survey about {title} ({team}) is closed.", title=title, team=name))
        lines = [head]
        lines += _answer_lines(survey, t) if survey.answered_at else [t._("No answer was given — no problem.")]
        if survey.answered_at:
            lines.append(t._("Thank you for your feedback!"))
        text = t._("The survey about request #{id} ({team}) is closed.", id=req.id, team=team.name)
        return Rendered(text=text, blocks=[md_section("\n".join(lines))])
    if survey.answered_at:
        head = t._(":pray: *Thank you!* Your feedback on {title} for {team} is saved.", title=title, team=name)
        blocks: list[Block] = [md_section("\n".join([head, *_answer_lines(survey, t)])), _buttons(survey, t)]
        note = (t._("You can change your answer until {date}.", date=until) if until
                else t._("You can change your answer."))
        note = f"{note} {_privacy_note(team, threshold, t)}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=note)]))
        return Rendered(text=t._("Thanks for your feedback on request #{id} to {team}!", id=req.id, team=team.name),
                        blocks=blocks)
    head = t._(":wave: Your request {title} to *{team}* was resolved. How did {team} do?\n"
               "Pick a score from *1 (worst)* to *5 (best)* — one click is enough.", title=title, team=name)
    note = _privacy_note(team, threshold, t)
    if until:
        note = t._("{note} Open until {date}.", note=note, date=until)
    blocks = [md_section(head), _buttons(survey, t), ContextBlock(elements=[MarkdownTextObject(text=note)])]
    return Rendered(text=t._("How did {team} do with your request #{id}? (1 = worst, 5 = best)", team=team.name,
                             id=req.id), blocks=blocks)


def _score_options(t: Translator) -> list[Option]:
    return [Option(text=plain(score_text(s, t), 75), value=str(s)) for s in range(5, 0, -1)]


def _select(block_id: str, label: str, current: int | None, t: Translator, hint: str | None = None) -> InputBlock:
    options = _score_options(t)
    initial = next((o for o in options if current is not None and o.value == str(current)), None)
    element = StaticSelectElement(action_id=INPUT, options=options, initial_option=initial,
                                  placeholder=plain(t._("1 (worst) … 5 (best)")))
    return InputBlock(block_id=block_id, label=plain(label), optional=True,
                      hint=plain(hint) if hint else None, element=element)


def survey_modal(survey: Survey, req: Request, team: Team, *, t: Translator, threshold: int) -> View:
    """"Tell us more": overall score, the four dimensions, a comment and the anonymity choice."""
    share = Option(text=plain(t._("Share my comment anonymously in team reports")), value=ANONYMOUS_VALUE)
    blocks: list[Block] = [
        md_section(t._("About *{title}* ({team}). Every question is optional.",
                       title=escape(truncate(request_title(req), 200)), team=escape(team.name))),
        _select(B.OVERALL, t._("Overall"), survey.score, t),
    ]
    for d in DIMENSIONS:
        label, question = dimension_label(d, t)
        blocks.append(_select(dimension_block(d), label, getattr(survey, d), t, question))
    blocks += [
        InputBlock(block_id=B.COMMENT, label=plain(t._("Anything else?")), optional=True,
                   element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=COMMENT_LIMIT,
                                                 initial_value=survey.comment or None)),
        InputBlock(block_id=B.ANONYMOUS, label=plain(t._("Your comment")), optional=True,
                   element=CheckboxesElement(action_id=INPUT, options=[share],
                                             initial_options=[share] if survey.comment_anonymous else None)),
        ContextBlock(elements=[MarkdownTextObject(
            text=f"{_privacy_note(team, threshold, t)} {_comment_note(threshold, t)}")]),
    ]
    return View(type="modal", callback_id=Callback.SURVEY_MODAL, title=plain(t._("Tell us more"), 24),
                submit=plain(t._("Send"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(survey.id),
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
