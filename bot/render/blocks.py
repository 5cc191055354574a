"""Pure Block Kit builders for request messages, modals and App Home (slack_sdk.models)."""

from __future__ import annotations

import json
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
from bot.render.ids import INPUT, Action, Callback
from bot.render.ids import Block as B
from storage.models import Request

SECTION_LIMIT = 3000
TEXT_PREVIEW = 2800
MAX_BLOCKS = 50
STATUS_LABEL = {"open": ":large_yellow_circle: Open", "claimed": ":large_blue_circle: Claimed",
                "resolved": ":white_check_mark: Resolved"}
URGENCY_LABEL = {"low": "Low", "normal": "Normal", "high": ":rotating_light: High"}


def escape(text: str) -> str:
    """Neutralise Slack markup in user text: no @channel, mentions or fake links survive."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def plain(text: str, limit: int = 150) -> PlainTextObject:
    """Plain text is not parsed by Slack, but echoed markup still looks like a live mention: defang it."""
    safe = text.replace("<", "‹").replace(">", "›")
    return PlainTextObject(text=truncate(safe, limit) or " ", emoji=True)


def md_section(text: str, **kwargs: object) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, SECTION_LIMIT)), **kwargs)  # type: ignore[arg-type]


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    return f"<!date^{int(when.timestamp())}^{fmt}|{when:%Y-%m-%d %H:%M} UTC>"


def message_link(base_url: str, channel: str | None, ts: str | None) -> str | None:
    if not channel or not ts:
        return None
    return f"{base_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


def request_title(req: Request) -> str:
    first_line = (req.summary or req.text).strip().splitlines()[0] if (req.summary or req.text).strip() else ""
    return f"#{req.id} · {first_line}" if first_line else f"#{req.id}"


def text_preview(req: Request) -> tuple[str, bool]:
    """The request text, escaped and cut to fit a section; also whether it was cut."""
    body = req.text or ""
    if req.purged_at:
        return "_(text removed by the data-retention policy)_", False
    cut = len(body) > TEXT_PREVIEW
    shown = escape(body[:TEXT_PREVIEW])
    if cut:
        shown = truncate(shown, TEXT_PREVIEW) + f"\n_(+{len(body) - TEXT_PREVIEW:,} more characters)_"
    return truncate(shown, SECTION_LIMIT), cut


def _button(text: str, action: str, value: str, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=plain(text, 75), action_id=action, value=value, style=style)


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: list[Block]

    def as_dicts(self) -> list[dict]:
        return [b.to_dict() for b in self.blocks]


def triage_message(req: Request, team: Team, *, origin_team: Team | None = None) -> Rendered:
    """The request as shown in the team's triage channel, always rebuilt from stored state."""
    preview, cut = text_preview(req)
    fields = [
        MarkdownTextObject(text=f"*Requester*\n<@{req.requester_id}>"),
        MarkdownTextObject(text=f"*Department*\n{escape(req.department)}"),
        MarkdownTextObject(text=f"*Category*\n{escape(req.category or '—')}"),
        MarkdownTextObject(text=f"*Urgency*\n{URGENCY_LABEL.get(req.urgency, req.urgency)}"),
        MarkdownTextObject(text=f"*Status*\n{STATUS_LABEL.get(req.status, req.status)}"),
        MarkdownTextObject(text=f"*Assignee*\n{f'<@{req.assignee_id}>' if req.assignee_id else '_unclaimed_'}"),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=plain(request_title(req))),
        SectionBlock(fields=fields),
        md_section(preview),
    ]
    context = [f"Opened {slack_date(req.created_at, '{date_short_pretty} {time} ({ago})')}"]
    if req.source_permalink:
        context.append(f"<{req.source_permalink}|original message>")
    if req.transfer_count and origin_team and origin_team.slug != team.slug:
        context.append(f"transferred from {escape(origin_team.name)}")
    elif req.transfer_count:
        context.append(f"transferred {req.transfer_count}×")
    if req.reopen_count:
        context.append(f"reopened {req.reopen_count}×")
    if req.status == "resolved" and req.resolved_at:
        context.append(f"resolved {slack_date(req.resolved_at)}")
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(" · ".join(context), 3000))]))
    value = str(req.id)
    buttons: list[ButtonElement] = []
    if req.status != "resolved":
        buttons.append(_button("Claim" if not req.assignee_id else "Claim (reassign to me)", Action.CLAIM,
                               value, "primary"))
        buttons.append(_button("Resolve", Action.RESOLVE, value))
        buttons.append(_button("Transfer", Action.TRANSFER, value))
    if cut:
        buttons.append(_button("View full text", Action.FULL_TEXT, value))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"req_{req.id}", elements=buttons))
    fallback = f"Request #{req.id} from <@{req.requester_id}>: {truncate(req.summary or req.text, 200)}"
    return Rendered(text=escape(fallback).replace(f"&lt;@{req.requester_id}&gt;", f"<@{req.requester_id}>"),
                    blocks=blocks)


def transferred_away_message(req: Request, from_team: Team, to_team: Team) -> Rendered:
    text = f"#{req.id} was transferred from {escape(from_team.name)} to *{escape(to_team.name)}*."
    return Rendered(text=text, blocks=[
        HeaderBlock(text=plain(request_title(req))),
        md_section(f":arrow_right: {text}"),
    ])


def dm_status_message(req: Request, team: Team, *, triage_link: str | None) -> Rendered:
    """The requester's own status message for one request (updated as it moves)."""
    status = STATUS_LABEL.get(req.status, req.status)
    lines = [f"*Your request #{req.id} to {escape(team.name)}*", f"> {truncate(escape(req.summary or req.text), 300)}",
             f"Status: {status}" + (f" · handled by <@{req.assignee_id}>" if req.assignee_id else "")]
    if req.post_state == "failed":
        lines.append(f":warning: I saved your request but could not post it to {escape(team.name)}'s triage "
                     f"channel ({req.post_error}). It is kept; press *Retry* or ask an admin to add the bot to the "
                     "channel.")
    elif req.post_state == "pending":
        lines.append("Posting it to the team…")
    if triage_link:
        lines.append(f"<{triage_link}|View it in {escape(team.name)}'s channel>")
    blocks: list[Block] = [md_section("\n".join(lines))]
    buttons: list[ButtonElement] = []
    if req.post_state == "failed":
        buttons.append(_button("Retry", Action.RETRY_POST, str(req.id), "primary"))
    if req.status == "resolved":
        buttons.append(_button("Reopen", Action.REOPEN, str(req.id)))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="How did we do? React to this message with an emoji (:+1: :slightly_smiling_face: "
                 ":neutral_face: :confused: :-1:) to rate the help.")]))
    else:
        buttons.append(_button("Mark resolved", Action.RESOLVE, str(req.id)))
    blocks.insert(1, ActionsBlock(block_id=f"dm_{req.id}", elements=buttons))
    return Rendered(text=f"Your request #{req.id} to {team.name}: {req.status}", blocks=blocks)


def app_dm_link(team_id: str | None, app_id: str | None) -> str | None:
    """Slack's documented deep link to a direct message with this app (where status messages live)."""
    if not app_id:
        return None
    return f"https://slack.com/app_redirect?app={quote(app_id)}" + (f"&team={quote(team_id)}" if team_id else "")


def confirmation(req: Request, team: Team, *, dm_link: str | None) -> Rendered:
    """The slash command's ephemeral answer, sent in the ack itself (no extra API call): the request's
    number, the triage channel it goes to, and a link to the DM where its status is kept up to date."""
    where = f"<{dm_link}|our DM>" if dm_link else "a DM"
    text = (f":white_check_mark: Request *#{req.id}* sent to {escape(team.name)} (<#{team.channel}>). "
            f"I'll keep its status in {where} as it moves; you can also follow it in my App Home.")
    return Rendered(text=text, blocks=[md_section(text)])


def notice(text: str) -> Rendered:
    return Rendered(text=text, blocks=[md_section(text)])


def _options(values: Sequence[str]) -> list[Option]:
    return [Option(text=plain(v, 75), value=v[:150]) for v in values]


def request_modal(*, teams: Sequence[Team], team: Team | None, permalink: str | None = None,
                  initial_text: str = "", source_channel: str | None = None) -> View:
    """The new-request modal: summary, details, category, urgency (and team picker when needed)."""
    blocks: list[Block] = []
    if permalink:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"About <{permalink}|this message>")]))
    if team is None:
        blocks.append(InputBlock(block_id=B.TEAM, label=plain("Team"), element=StaticSelectElement(
            action_id=INPUT, placeholder=plain("Which team should help?"),
            options=[Option(text=plain(t.name, 75), value=t.slug) for t in teams[:100]])))
    blocks.append(InputBlock(block_id=B.SUMMARY, label=plain("Summary"), element=PlainTextInputElement(
        action_id=INPUT, max_length=150, initial_value=truncate(initial_text, 150) or None,
        placeholder=plain("What do you need, in one line?"))))
    blocks.append(InputBlock(block_id=B.DETAILS, label=plain("Details"), optional=True,
                             element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=3000)))
    categories = sorted({c for t in ([team] if team else teams) for c in t.categories})
    if categories:
        blocks.append(InputBlock(block_id=B.CATEGORY, label=plain("Category"), optional=True,
                                 element=StaticSelectElement(action_id=INPUT, options=_options(categories[:100]),
                                                             placeholder=plain("Pick a category"))))
    urgency = _options(URGENCIES)
    for opt, label in zip(urgency, ("Low", "Normal", "High"), strict=True):
        opt.text = plain(label)
    blocks.append(InputBlock(block_id=B.URGENCY, label=plain("Urgency"), element=RadioButtonsElement(
        action_id=INPUT, options=urgency, initial_option=urgency[1])))
    title = f"Ask {team.name}" if team else "Ask a team"
    meta = {"team": team.slug if team else None, "permalink": permalink, "channel": source_channel}
    return View(type="modal", callback_id=Callback.REQUEST_MODAL, title=plain(title, 24),
                submit=plain("Send", 24), close=plain("Cancel", 24), blocks=blocks,
                private_metadata=json.dumps(meta)[:3000])


def transfer_modal(req: Request, teams: Sequence[Team]) -> View:
    others = [t for t in teams if t.slug != req.team]
    return View(type="modal", callback_id=Callback.TRANSFER_MODAL, title=plain(f"Transfer #{req.id}", 24),
                submit=plain("Transfer", 24), close=plain("Cancel", 24), private_metadata=str(req.id), blocks=[
                    md_section(f"*{escape(request_title(req))}*"),
                    InputBlock(block_id=B.TRANSFER_TEAM, label=plain("Move to team"), element=StaticSelectElement(
                        action_id=INPUT, options=[Option(text=plain(t.name, 75), value=t.slug) for t in others[:100]])),
                    InputBlock(block_id=B.TRANSFER_NOTE, label=plain("Note for the new team"), optional=True,
                               element=PlainTextInputElement(action_id=INPUT, multiline=True, max_length=1000)),
                ])


def full_text_modal(req: Request) -> View:
    body = escape(req.text or "")
    chunks = [body[i:i + TEXT_PREVIEW] for i in range(0, len(body), TEXT_PREVIEW)][: 99] or ["_(empty)_"]
    return View(type="modal", callback_id=Callback.FULL_TEXT_MODAL, title=plain(f"Request #{req.id}", 24),
                close=plain("Close", 24), blocks=[md_section(c) for c in chunks])


def _home_row(req: Request, team_name: str, *, with_claim: bool) -> list[Block]:
    status = STATUS_LABEL.get(req.status, req.status)
    line = (f"*#{req.id}* {escape(truncate(req.summary or req.text, 120))}\n{escape(team_name)} · {status}"
            f" · opened {slack_date(req.created_at, '{ago}')}")
    if with_claim:
        line += f" · from <@{req.requester_id}> ({escape(req.department)})"
    accessory = _button("Claim", Action.CLAIM, str(req.id), "primary") if with_claim else None
    if not with_claim and req.status == "resolved":
        accessory = _button("Reopen", Action.REOPEN, str(req.id))
    return [md_section(line, accessory=accessory)] if accessory else [md_section(line)]


def home_view(*, mine: Sequence[Request], queues: Sequence[tuple[Team, Sequence[Request], int]],
              team_names: dict[str, str], note: str | None = None) -> View:
    """App Home: my requests for everyone; the team's open queue (oldest first) for responders."""
    blocks: list[Block] = []
    if note:
        blocks.append(md_section(f":information_source: {note}"))
    blocks += [HeaderBlock(text=plain("My requests")),
               ActionsBlock(elements=[_button("Refresh", Action.HOME_REFRESH, "refresh")])]
    budget = MAX_BLOCKS - len(blocks) - 2 - 3 * len(queues)
    mine_budget = max(3, budget // 2) if queues else budget
    if not mine:
        blocks.append(md_section("You have no open or recently resolved requests. Ask with `/ask-<team>`."))
    for req in mine[:mine_budget]:
        blocks += _home_row(req, team_names.get(req.team, req.team), with_claim=False)
    for team, reqs, total in queues:
        blocks += [DividerBlock(), HeaderBlock(text=plain(f"{team.name} queue · {total} open"))]
        room = max(0, MAX_BLOCKS - len(blocks) - 1 - 2 * (len(queues) - 1))
        if not reqs:
            blocks.append(md_section("Nothing open. :tada:"))
        for req in reqs[:room]:
            blocks += _home_row(req, team.name, with_claim=req.status == "open")
        if total > min(len(reqs), room):
            blocks.append(ContextBlock(elements=[MarkdownTextObject(
                text=f"…and {total - min(len(reqs), room)} more in <#{team.channel}>")]))
    return View(type="home", blocks=blocks[:MAX_BLOCKS])


def unknown_command(command: str, teams: Sequence[Team]) -> str:
    listing = "\n".join(f"• `{t.command}` — {escape(t.name)}" for t in teams)
    return f"I don't know `{escape(command)}`. You can ask these teams:\n{listing}"
