"""Pure Block Kit builders for request messages, modals and App Home (slack_sdk.models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    RadioButtonsElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.config import URGENCIES, Team
from bot.i18n import Translator
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from bot.render.links import escape_text, link_url
from bot.render.links import message_link as message_link  # re-exported: callers build links here
from bot.render.sla_text import FIRST_RESPONSE, SlaView, due_phrase
from storage.models import Request

SECTION_LIMIT = 3000
TEXT_PREVIEW = 2800
MAX_BLOCKS = 50


STATUS_EMOJI = {"open": ":large_yellow_circle:", "claimed": ":large_blue_circle:", "resolved": ":white_check_mark:"}


def status_word(status: str, t: Translator) -> str:
    words = {"open": t._("Open"), "claimed": t._("Claimed"), "resolved": t._("Resolved")}
    return words.get(status, status)


def status_label(status: str, t: Translator) -> str:
    """The status with its emoji: ":large_yellow_circle: Open"."""
    return f"{STATUS_EMOJI[status]} {status_word(status, t)}" if status in STATUS_EMOJI else status


def urgency_word(urgency: str, t: Translator) -> str:
    words = {"low": t._("Low"), "normal": t._("Normal"), "high": t._("High")}
    return words.get(urgency, urgency)


def urgency_label(urgency: str, t: Translator) -> str:
    """The urgency as the triage message shows it (high ones with a siren)."""
    return f":rotating_light: {urgency_word(urgency, t)}" if urgency == "high" else urgency_word(urgency, t)


CHANNEL_ERRORS = ("channel_not_found", "not_in_channel", "is_archived")  # fixed by fixing the channel
GAVE_UP = "still failing after"  # the outbox's reason for a job given up after a day of failures


def post_error_text(error: str | None, t: Translator) -> str:
    """Why a request could not be posted, from the Slack error code stored with it."""
    known = {"channel_not_found": t._("the triage channel was not found"),
             "not_in_channel": t._("the bot is not a member of the triage channel"),
             "is_archived": t._("the triage channel is archived")}
    if error and error.startswith(GAVE_UP):
        return t._("Slack kept refusing it for a day; its last answer was {error}",
                   error=error.partition(": ")[2] or "?")
    return known.get(error or "", error or t._("unknown error"))


escape = escape_text


def truncate(text: str, limit: int) -> str:
    """`text` within `limit` characters (Slack counts characters, not bytes: 3000 Chinese ones fit)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(text: str, limit: int = 150) -> PlainTextObject:
    """Plain text is not parsed by Slack, but echoed markup still looks like a live mention: defang it."""
    safe = text.replace("<", "‹").replace(">", "›")
    return PlainTextObject(text=truncate(safe, limit) or " ", emoji=True)


def md_section(text: str, **kwargs: object) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)), **kwargs)  # type: ignore[arg-type]


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A date Slack shows in each reader's own time zone and language (the fallback is UTC)."""
    return f"<!date^{int(when.timestamp())}^{fmt}|{when:%Y-%m-%d %H:%M} UTC>"


def mention(user_id: str) -> str:
    return f"<@{user_id}>"


def channel_link(channel_id: str) -> str:
    return f"<#{channel_id}>"


def request_title(req: Request) -> str:
    first_line = (req.summary or req.text).strip().splitlines()[0] if (req.summary or req.text).strip() else ""
    return f"#{req.id} · {first_line}" if first_line else f"#{req.id}"


def text_preview(req: Request, t: Translator) -> tuple[str, bool]:
    """The request text, escaped and cut to fit a section; also whether it was cut."""
    body = req.text or ""
    if req.purged_at:
        return t._("_(text removed by the data-retention policy)_"), False
    cut = len(body) > TEXT_PREVIEW
    shown = escape(body[:TEXT_PREVIEW])
    if cut:
        more = len(body) - TEXT_PREVIEW
        shown = truncate(shown, TEXT_PREVIEW) + "\n" + t.ngettext(
            "_(+{n} more character)_", "_(+{n} more characters)_", more)
    return truncate(shown, SECTION_LIMIT), cut


def button(text: str, action: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=plain(text, 75), action_id=action, value=value, style=style)


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: list[Block]

    def as_dicts(self) -> list[dict]:
        return [b.to_dict() for b in self.blocks]


def _field(label: str, value: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=f"*{label}*\n{value}")


def waiting(req: Request) -> bool:
    """Whether the team waits for the requester's answer to a question (the SLA clock is paused)."""
    return req.waiting_since is not None and req.status != "resolved"


def sla_context(view: SlaView | None, t: Translator) -> str | None:
    """The SLA line of the triage message: each unmet deadline, earliest first, as a Slack date that
    Slack shows relative to the reader's now ("in 25 minutes", "2 hours ago"), or the pause. It depends
    on stored state only, so the message needs no update as time passes."""
    if view is None:
        return None
    if view.waiting_since is not None:
        return t._(":hourglass_flowing_sand: Waiting on the requester since {since}",
                   since=slack_date(view.waiting_since))
    parts = []
    for sla, due in sorted(view.deadlines, key=lambda d: d[1]):
        when = slack_date(due, "{date_short_pretty} {time} ({ago})")
        parts.append(t._("First response due {date}", date=when) if sla == FIRST_RESPONSE
                     else t._("Resolution due {date}", date=when))
    return ":stopwatch: " + " · ".join(parts) if parts else None


def triage_message(req: Request, team: Team, *, t: Translator, origin_team: Team | None = None,
                   sla: SlaView | None = None) -> Rendered:
    """The request as shown in the team's triage channel (in the team's language), rebuilt from stored state,
    with its SLA deadlines (`sla`, from `bot.services.sla.view`)."""
    preview, cut = text_preview(req, t)
    fields = [
        _field(t._("Requester"), f"<@{req.requester_id}>"),
        _field(t._("Department"), escape(req.department)),
        _field(t._("Category"), escape(req.category or "—")),
        _field(t._("Urgency"), urgency_label(req.urgency, t)),
        _field(t._("Status"), t._(":hourglass_flowing_sand: Waiting on the requester") if waiting(req)
               else status_label(req.status, t)),
        _field(t._("Assignee"), f"<@{req.assignee_id}>" if req.assignee_id else t._("_unclaimed_")),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=plain(request_title(req))),
        SectionBlock(fields=fields),
        md_section(preview),
    ]
    context = [t._("Opened {date}", date=slack_date(req.created_at, "{date_short_pretty} {time} ({ago})"))]
    if source := link_url(req.source_permalink):  # validated and escaped: it cannot end the link early
        context.append(t._("<{link}|original message>", link=source))
    if req.transfer_count and origin_team and origin_team.slug != team.slug:
        context.append(t._("transferred from {team}", team=escape(origin_team.name)))
    elif req.transfer_count:
        context.append(t.ngettext("transferred once", "transferred {n} times", req.transfer_count))
    if req.reopen_count:
        context.append(t.ngettext("reopened once", "reopened {n} times", req.reopen_count))
    if req.status == "resolved" and req.resolved_at:
        context.append(t._("resolved {date}", date=slack_date(req.resolved_at)))
    due_line = sla_context(sla, t) if req.status != "resolved" else None
    if due_line:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(due_line, 3000))]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(" · ".join(context), 3000))]))
    value = str(req.id)
    buttons: list[ButtonElement] = []
    if req.status != "resolved":
        buttons.append(button(t._("Claim") if not req.assignee_id else t._("Claim (reassign to me)"),
                              Action.CLAIM, value, "primary"))
        buttons.append(button(t._("Assign"), Action.ASSIGN, value))
        buttons.append(button(t._("Ask requester"), Action.ASK_REQUESTER, value))
        buttons.append(button(t._("Resolve"), Action.RESOLVE, value))
        buttons.append(button(t._("Transfer"), Action.TRANSFER, value))
    if cut:
        buttons.append(button(t._("View full text"), Action.FULL_TEXT, value))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"req_{req.id}", elements=buttons))
    fallback = t._("Request #{id} from {user}: {text}", id=req.id, user=mention(req.requester_id),
                   text=escape(truncate(req.summary or req.text, 200)))
    return Rendered(text=fallback, blocks=blocks)


def transferred_away_message(req: Request, from_team: Team, to_team: Team, *, t: Translator) -> Rendered:
    text = t._("#{id} was transferred from {source} to *{target}*.", id=req.id, source=escape(from_team.name),
               target=escape(to_team.name))
    return Rendered(text=text, blocks=[
        HeaderBlock(text=plain(request_title(req))),
        md_section(f":arrow_right: {text}"),
    ])


def transferred_here_note(by: str, note: str, *, t: Translator) -> str:
    """The thread reply under a request posted after a transfer (in the receiving team's language)."""
    if note:
        return t._("Transferred here by {user}: {note}", user=mention(by), note=escape(note))
    return t._("Transferred here by {user}.", user=mention(by))


def dm_status_message(req: Request, team: Team, *, t: Translator, triage_link: str | None) -> Rendered:
    """The requester's own status message for one request (updated as it moves), in their language."""
    status = status_label(req.status, t)
    name = escape(team.name)
    state = (t._("Status: {status} · handled by {user}", status=status, user=mention(req.assignee_id))
             if req.assignee_id else t._("Status: {status}", status=status))
    lines = [t._("*Your request #{id} to {team}*", id=req.id, team=name),
             f"> {truncate(escape(req.summary or req.text), 300)}", state]
    if waiting(req):
        lines.append(t._("*Waiting on you:* {team} asked you a question. Answer in this message's thread, or "
                         "press *Reply*.", team=name))
    if req.post_state == "failed":
        lines.append(t._(":warning: I saved your request but could not post it to {team}'s triage channel "
                         "({error}). It is kept; press *Retry* or ask an admin to add the bot to the channel.",
                         team=name, error=post_error_text(req.post_error, t)))
    elif req.post_state == "pending":
        lines.append(t._("Posting it to the team…"))
    if triage := link_url(triage_link):
        lines.append(t._("<{link}|View it in {team}'s channel>", link=triage, team=name))
    blocks: list[Block] = [md_section("\n".join(lines))]
    buttons: list[ButtonElement] = []
    if req.post_state == "failed":
        buttons.append(button(t._("Retry"), Action.RETRY_POST, str(req.id), "primary"))
    if waiting(req):
        buttons.append(button(t._("Reply"), Action.REPLY, str(req.id), "primary"))
    if req.status == "resolved":
        buttons.append(button(t._("Reopen"), Action.REOPEN, str(req.id)))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=t._("How did we do? React to this message with an emoji (:+1: :slightly_smiling_face: "
                     ":neutral_face: :confused: :-1:) to rate the help — here only askdesk sees it, and the "
                     "team only ever sees weekly totals."))]))
    else:
        buttons.append(button(t._("Mark resolved"), Action.RESOLVE, str(req.id)))
    blocks.insert(1, ActionsBlock(block_id=f"dm_{req.id}", elements=buttons))
    # the notification's text says what matters most: a request that could not be posted is not "open"
    state = t._("not posted yet") if req.post_state == "failed" else status_word(req.status, t)
    text = t._("Your request #{id} to {team}: {status}", id=req.id, team=team.name, status=state)
    return Rendered(text=text, blocks=blocks)


def app_dm_link(team_id: str | None, app_id: str | None) -> str | None:
    """Slack's documented deep link to a direct message with this app (where status messages live)."""
    if not app_id:
        return None
    return f"https://slack.com/app_redirect?app={quote(app_id)}" + (f"&team={quote(team_id)}" if team_id else "")


def confirmation(req: Request, team: Team, *, t: Translator, dm_link: str | None) -> Rendered:
    """The slash command's ephemeral answer, sent in the ack itself (no extra API call): the request's
    number, the triage channel it goes to, and a link to the DM where its status is kept up to date."""
    values = {"id": req.id, "team": escape(team.name), "channel": channel_link(team.channel)}
    if dm_link := link_url(dm_link):
        text = t._(":white_check_mark: Request *#{id}* sent to {team} ({channel}). I'll keep its status in "
                   "<{link}|our DM> as it moves; you can also follow it in my App Home.", link=dm_link, **values)
    else:
        text = t._(":white_check_mark: Request *#{id}* sent to {team} ({channel}). I'll keep its status in a DM "
                   "as it moves; you can also follow it in my App Home.", **values)
    return Rendered(text=text, blocks=[md_section(text)])


def notice(text: str) -> Rendered:
    return Rendered(text=text, blocks=[md_section(text)])


def _options(values: Sequence[str]) -> list[Option]:
    return [Option(text=plain(v, 75), value=v[:150]) for v in values]


def request_modal(*, t: Translator, teams: Sequence[Team], team: Team | None, private_metadata: str,
                  permalink: str | None = None, initial_text: str = "") -> View:
    """The new-request modal: summary, details, category, urgency (and team picker when needed).
    `private_metadata` comes sealed from bot.services.request_forms."""
    blocks: list[Block] = []
    if source := link_url(permalink):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=t._("About <{link}|this message>", link=source))]))
    if team is None:
        blocks.append(InputBlock(block_id=B.TEAM, label=plain(t._("Team")), element=StaticSelectElement(
            action_id=INPUT, placeholder=plain(t._("Which team should help?")),
            options=[Option(text=plain(x.name, 75), value=x.slug) for x in teams[:100]])))
    blocks.append(InputBlock(block_id=B.SUMMARY, label=plain(t._("Summary")), element=PlainTextInputElement(
        action_id=INPUT, max_length=150, initial_value=truncate(initial_text, 150) or None,
        placeholder=plain(t._("What do you need, in one line?")))))
    blocks.append(InputBlock(block_id=B.DETAILS, label=plain(t._("Details")), optional=True,
                             element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=3000)))
    categories = sorted({c for x in ([team] if team else teams) for c in x.categories})
    if categories:
        blocks.append(InputBlock(block_id=B.CATEGORY, label=plain(t._("Category")), optional=True,
                                 element=StaticSelectElement(action_id=INPUT, options=_options(categories[:100]),
                                                             placeholder=plain(t._("Pick a category")))))
    urgency = [Option(text=plain(urgency_word(u, t)), value=u) for u in URGENCIES]
    blocks.append(InputBlock(block_id=B.URGENCY, label=plain(t._("Urgency")), element=RadioButtonsElement(
        action_id=INPUT, options=urgency, initial_option=urgency[1])))
    title = t._("Ask {team}", team=team.name) if team else t._("Ask a team")
    return View(type="modal", callback_id=Callback.REQUEST_MODAL, title=plain(title, 24),
                submit=plain(t._("Send"), 24), close=plain(t._("Cancel"), 24), blocks=blocks,
                private_metadata=private_metadata)


def transfer_modal(req: Request, teams: Sequence[Team], *, t: Translator) -> View:
    others = [x for x in teams if x.slug != req.team]
    return View(type="modal", callback_id=Callback.TRANSFER_MODAL, title=plain(t._("Transfer #{id}", id=req.id), 24),
                submit=plain(t._("Transfer"), 24), close=plain(t._("Cancel"), 24), private_metadata=str(req.id),
                blocks=[
                    md_section(f"*{escape(request_title(req))}*"),
                    InputBlock(block_id=B.TRANSFER_TEAM, label=plain(t._("Move to team")),
                               element=StaticSelectElement(action_id=INPUT, options=[
                                   Option(text=plain(x.name, 75), value=x.slug) for x in others[:100]])),
                    InputBlock(block_id=B.TRANSFER_NOTE, label=plain(t._("Note for the new team")), optional=True,
                               element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=1000)),
                ])


def full_text_modal(req: Request, *, t: Translator) -> View:
    body = escape(req.text or "")
    chunks = [body[i:i + TEXT_PREVIEW] for i in range(0, len(body), TEXT_PREVIEW)][: 99] or [t._("_(empty)_")]
    return View(type="modal", callback_id=Callback.FULL_TEXT_MODAL, title=plain(t._("Request #{id}", id=req.id), 24),
                close=plain(t._("Close"), 24), blocks=[md_section(c) for c in chunks])


def _home_row(req: Request, team_name: str, *, t: Translator, with_claim: bool,
              sla: SlaView | None = None) -> list[Block]:
    status = status_label(req.status, t)
    if not with_claim and waiting(req):
        status = t._(":hourglass_flowing_sand: *waiting on you*")
    values = {"id": req.id, "text": escape(truncate(req.summary or req.text, 120)), "team": escape(team_name),
              "status": status, "opened": slack_date(req.created_at, "{ago}")}
    if with_claim:
        line = t._("*#{id}* {text}\n{team} · {status} · opened {opened} · from {user} ({department})",
                   user=mention(req.requester_id), department=escape(req.department), **values)
    else:
        line = t._("*#{id}* {text}\n{team} · {status} · opened {opened}", **values)
    due = sla.next_due if sla is not None else None
    if sla is not None and sla.waiting_since is not None:
        line += " · " + t._("waiting on the requester")
    elif sla is not None and due is not None:
        line += " · " + (":warning: " if due <= sla.now else "") + due_phrase(due, sla.now, t)
    accessory = button(t._("Claim"), Action.CLAIM, str(req.id), "primary") if with_claim else None
    if not with_claim and req.status == "resolved":
        accessory = button(t._("Reopen"), Action.REOPEN, str(req.id))
    return [md_section(line, accessory=accessory)] if accessory else [md_section(line)]


def _availability_row(team: Team, available: bool, t: Translator) -> Block:
    if available:
        text = t._(":large_green_circle: You are *available* for new {team} requests (assigned in turn).",
                   team=escape(team.name))
        toggle = button(t._("Mark me away"), Action.AWAY, team.slug)
    else:
        text = t._(":white_circle: You are *not available* for new {team} requests.", team=escape(team.name))
        toggle = button(t._("Mark me available"), Action.AVAILABLE, team.slug)
    return md_section(text, accessory=toggle)


def home_view(*, t: Translator, mine: Sequence[Request], queues: Sequence[tuple[Team, Sequence[Request], int]],
              team_names: dict[str, str], note: str | None = None, sla: dict[int, SlaView] | None = None,
              availability: Sequence[tuple[Team, bool]] = ()) -> View:
    """App Home: my requests for everyone; for responders the team's open queue, earliest deadline first
    (overdue first), and whether they take requests assigned in turn."""
    sla = sla or {}
    blocks: list[Block] = []
    if note:
        blocks.append(md_section(f":information_source: {note}"))
    blocks += [_availability_row(team, available, t) for team, available in availability]
    blocks += [HeaderBlock(text=plain(t._("My requests"))),
               ActionsBlock(elements=[button(t._("Refresh"), Action.HOME_REFRESH, "refresh")])]
    budget = MAX_BLOCKS - len(blocks) - 2 - 3 * len(queues)
    mine_budget = max(3, budget // 2) if queues else budget
    if not mine:
        blocks.append(md_section(t._("You have no open or recently resolved requests. Ask with `/ask-<team>`.")))
    for req in mine[:mine_budget]:
        blocks += _home_row(req, team_names.get(req.team, req.team), t=t, with_claim=False)
    for team, reqs, total in queues:
        blocks += [DividerBlock(), HeaderBlock(text=plain(t.ngettext(
            "{team} queue · {n} open", "{team} queue · {n} open", total, team=team.name)))]
        room = max(0, MAX_BLOCKS - len(blocks) - 1 - 2 * (len(queues) - 1))
        if not reqs:
            blocks.append(md_section(t._("Nothing open. :tada:")))
        for req in reqs[:room]:
            blocks += _home_row(req, team.name, t=t, with_claim=req.status == "open", sla=sla.get(req.id or 0))
        if total > min(len(reqs), room):
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text=t._("…and {n} more in {channel}", n=total - min(len(reqs), room),
                         channel=channel_link(team.channel)))]))
    return View(type="home", blocks=blocks[:MAX_BLOCKS])


def unknown_command(command: str, teams: Sequence[Team], *, t: Translator) -> str:
    listing = "\n".join(f"• `{x.command}` — {escape(x.name)}" for x in teams)
    return t._("I don't know `{command}`. You can ask these teams:\n{teams}", command=escape(command),
               teams=listing)
