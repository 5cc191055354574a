"""Pure Block Kit builders for SLA reminders and escalations, assignment and questions to the requester,
each in the reader's language (`t`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.config import Team
from bot.i18n import Translator
from bot.render.blocks import (
    Rendered,
    button,
    escape,
    md_section,
    mention,
    plain,
    request_title,
    slack_date,
    truncate,
    urgency_word,
)
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from bot.render.sla_text import FIRST_RESPONSE, due_phrase
from storage.models import Request


def _quote(text: str, limit: int = 2500) -> str:
    return truncate(escape(text), limit).replace("\n", "\n>")


def _owner(req: Request, t: Translator) -> str:
    if req.assignee_id:
        return t._("It is assigned to {user}.", user=mention(req.assignee_id))
    return t._("Nobody has claimed it yet.")


def _open_link(req: Request, team: Team, link: str | None, t: Translator) -> list[str]:
    return [t._("<{link}|Open #{id} in {team}'s channel>", link=link, id=req.id, team=escape(team.name))] \
        if link else []


def reminder_message(req: Request, *, sla: str, due_at: datetime, now: datetime, t: Translator) -> Rendered:
    """The reminder posted in the triage message's thread (in the team's language)."""
    values = {"id": req.id, "due": due_phrase(due_at, now, t), "when": slack_date(due_at, "{time}")}
    if sla == FIRST_RESPONSE:
        head = t._(":alarm_clock: Reminder: the first response to #{id} is {due} (by {when}).", **values)
    else:
        head = t._(":alarm_clock: Reminder: #{id} should be resolved, {due} (by {when}).", **values)
    text = f"{head} {_owner(req, t)}"
    return Rendered(text=text, blocks=[md_section(text)])


def escalation_message(req: Request, team: Team, *, sla: str, due_at: datetime, now: datetime, target: str,
                       link: str | None, t: Translator) -> Rendered:
    """The escalation to the team's escalation channel and its leads, with Claim and Assign."""
    values = {"id": req.id, "team": escape(team.name), "target": target, "urgency": urgency_word(req.urgency, t),
              "due": due_phrase(due_at, now, t)}
    if sla == FIRST_RESPONSE:
        head = t._(":rotating_light: #{id} in {team} has had no first response within its SLA of {target} "
                   "({urgency} urgency): {due}.", **values)
    else:
        head = t._(":rotating_light: #{id} in {team} was not resolved within its SLA of {target} "
                   "({urgency} urgency): {due}.", **values)
    value = str(req.id)
    return Rendered(text=f"{head} {_owner(req, t)}", blocks=[
        HeaderBlock(text=plain(request_title(req))),
        md_section("\n".join([head, _owner(req, t), *_open_link(req, team, link, t)])),
        ActionsBlock(block_id=f"esc_{req.id}", elements=[button(t._("Claim"), Action.CLAIM, value, "primary"),
                                                         button(t._("Assign"), Action.ASSIGN, value)]),
    ])


def assigned_message(req: Request, team: Team, *, by: str | None, link: str | None, t: Translator) -> Rendered:
    """The DM to a responder who was just given a request (in their language)."""
    title = escape(request_title(req))
    if by:
        text = t._(":bust_in_silhouette: {user} assigned #{id} to you: {title}", user=mention(by), id=req.id,
                   title=title)
    else:
        text = t._(":bust_in_silhouette: #{id} was assigned to you (in turn among {team}'s available "
                   "responders): {title}", id=req.id, team=escape(team.name), title=title)
    lines = [text, t._("Press *Claim* or reply in its thread to let the requester know you are on it."),
             *_open_link(req, team, link, t)]
    return Rendered(text=text, blocks=[md_section("\n".join(lines)), ActionsBlock(
        block_id=f"asg_{req.id}", elements=[button(t._("Claim"), Action.CLAIM, str(req.id), "primary")])])


def question_message(req: Request, team: Team, *, by: str, question: str, t: Translator) -> Rendered:
    """A responder's question, in the requester's DM status thread (in the requester's language), with Reply."""
    text = t._(":speech_balloon: {user} from {team} asks about your request #{id}:\n>{question}", user=mention(by),
               team=escape(team.name), id=req.id, question=_quote(question))
    hint = t._("Answer in this thread, or press *Reply*. The team's clock is paused until you answer.")
    return Rendered(text=text, blocks=[
        md_section(text),
        ContextBlock(elements=[MarkdownTextObject(text=hint)]),
        ActionsBlock(block_id=f"q_{req.id}", elements=[button(t._("Reply"), Action.REPLY, str(req.id), "primary")]),
    ])


def question_note(req: Request, *, by: str, question: str, t: Translator) -> Rendered:
    """The same question, noted in the triage message's thread (in the team's language)."""
    text = t._(":speech_balloon: {user} asked {requester}:\n>{question}\n_The SLA clock is paused until they "
               "answer._", user=mention(by), requester=mention(req.requester_id), question=_quote(question))
    return Rendered(text=text, blocks=[md_section(text)])


def answer_note(req: Request, *, answer: str, t: Translator) -> Rendered:
    """The requester's answer, relayed into the triage message's thread (in the team's language)."""
    text = t._(":leftwards_arrow_with_hook: {requester} answered:\n>{answer}", requester=mention(req.requester_id),
               answer=_quote(answer) or t._("_(no text)_"))
    return Rendered(text=text, blocks=[md_section(text)])


# -- modals -----------------------------------------------------------------------------------------
def _head(req: Request) -> SectionBlock:
    return md_section(f"*{escape(request_title(req))}*")


def loading_modal(req: Request, *, t: Translator) -> View:
    """The Assign modal as it opens at once (a trigger_id lasts 3 s), replaced when the names are in."""
    return View(type="modal", callback_id=Callback.ASSIGN_MODAL, title=plain(t._("Assign #{id}", id=req.id), 24),
                close=plain(t._("Cancel"), 24), private_metadata=str(req.id),
                blocks=[_head(req), md_section(t._(":hourglass: Loading…"))])


def notice_modal(req: Request, *, text: str, t: Translator) -> View:
    """A modal that only says why it cannot do what it was opened for."""
    return View(type="modal", callback_id=Callback.NOTICE_MODAL, title=plain(t._("Assign #{id}", id=req.id), 24),
                close=plain(t._("Close"), 24), private_metadata=str(req.id), blocks=[_head(req), md_section(text)])


def done_modal(title: str, *, text: str, t: Translator) -> View:
    """What a submitted form turns into when there was nothing left to do (a double submission): why."""
    return View(type="modal", callback_id=Callback.NOTICE_MODAL, title=plain(title, 24),
                close=plain(t._("Close"), 24), blocks=[md_section(text)])


def assign_modal(req: Request, team: Team, responders: Sequence[tuple[str, str]], *, t: Translator) -> View:
    """A picker of the team's responders (user id, name)."""
    title = plain(t._("Assign #{id}", id=req.id), 24)
    if not responders:
        return View(type="modal", callback_id=Callback.ASSIGN_MODAL, title=title, close=plain(t._("Close"), 24),
                    private_metadata=str(req.id), blocks=[_head(req), md_section(t._(
                        "Nobody is in {team}'s triage channel yet, so there is no one to assign.",
                        team=escape(team.name)))])
    options = [Option(text=plain(name, 75), value=user) for user, name in responders[:100]]
    current = next((o for o in options if o.value == req.assignee_id), None)
    picker = StaticSelectElement(action_id=INPUT, options=options, initial_option=current,
                                 placeholder=plain(t._("One of {team}'s responders", team=team.name)))
    return View(type="modal", callback_id=Callback.ASSIGN_MODAL, title=title, submit=plain(t._("Assign"), 24),
                close=plain(t._("Cancel"), 24), private_metadata=str(req.id),
                blocks=[_head(req), InputBlock(block_id=B.ASSIGNEE, label=plain(t._("Assign to")), element=picker)])


def ask_modal(req: Request, *, t: Translator) -> View:
    intro = t._("Your question goes to {user} in their DM with askdesk. The SLA clock pauses until they answer.",
                user=mention(req.requester_id))
    return View(type="modal", callback_id=Callback.ASK_MODAL, title=plain(t._("Ask about #{id}", id=req.id), 24),
                submit=plain(t._("Send"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(req.id), blocks=[
                    md_section(f"*{escape(request_title(req))}*\n{intro}"),
                    InputBlock(block_id=B.QUESTION, label=plain(t._("Question")), element=PlainTextInputElement(
                        action_id=INPUT, multiline=True, max_length=2000)),
                ])


def reply_modal(req: Request, team: Team, *, t: Translator) -> View:
    intro = t._("Your answer goes to {team}.", team=escape(team.name))
    return View(type="modal", callback_id=Callback.REPLY_MODAL, title=plain(t._("Reply about #{id}", id=req.id), 24),
                submit=plain(t._("Send"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(req.id), blocks=[
                    md_section(f"*{escape(request_title(req))}*\n{intro}"),
                    InputBlock(block_id=B.ANSWER, label=plain(t._("Answer")), element=PlainTextInputElement(
                        action_id=INPUT, multiline=True, max_length=2000)),
                ])
