"""Readable text for what people would see in Slack, from the simulator's recorded Web API calls."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from typing import Any

_DATE = re.compile(r"<!date\^\d+\^[^|]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_USER = re.compile(r"<@([A-Z0-9]+)>")
_CHANNEL = re.compile(r"<#([A-Z0-9]+)(?:\|[^>]*)?>")


class Namer:
    def __init__(self, users: dict[str, str], channels: dict[str, str]) -> None:
        self.users, self.channels = users, channels
        self.dms: dict[str, str] = {}

    def user(self, user_id: str) -> str:
        return "@" + self.users.get(user_id, user_id)

    def channel(self, channel_id: str) -> str:
        if channel_id in self.channels:
            return "#" + self.channels[channel_id]
        if channel_id in self.users:
            return f"DM {self.user(channel_id)}"
        if channel_id in self.dms:
            return f"DM @{self.dms[channel_id]}"
        return channel_id

    def mrkdwn(self, text: str) -> str:
        text = _DATE.sub(lambda m: m.group(1), text)
        text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
        text = _USER.sub(lambda m: self.user(m.group(1)), text)
        text = _CHANNEL.sub(lambda m: self.channel(m.group(1)), text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return str(obj or "")


def blocks_to_lines(blocks: Iterable[dict[str, Any]], namer: Namer) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {_text_of(block.get('text'))} ==")
        elif kind == "section":
            if block.get("text"):
                lines.extend(namer.mrkdwn(_text_of(block["text"])).splitlines())
            fields = [namer.mrkdwn(_text_of(f)).replace("\n", ": ", 1) for f in block.get("fields") or []]
            if fields:
                lines.append(" | ".join(fields))
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines[-1] += f"  [{_text_of(accessory.get('text'))}]"
        elif kind == "context":
            lines.append("  " + " ".join(namer.mrkdwn(_text_of(e)) for e in block.get("elements") or []))
        elif kind == "actions":
            buttons = [f"[{_text_of(e.get('text'))}]" for e in block.get("elements") or []]
            lines.append("  " + " ".join(buttons))
        elif kind == "divider":
            lines.append("  ---")
        elif kind == "input":
            lines.append(f"  <{_text_of(block.get('label'))}>")
        elif kind == "image":
            lines.append(f"  (image: {block.get('alt_text', '')})")
    return lines


def _indent(lines: list[str], width: int = 100) -> str:
    out: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(line, width=width, subsequent_indent="      ") or [""]
        out.extend("    │ " + w for w in wrapped)
    return "\n".join(out)


def describe_call(method: str, args: dict[str, Any], response: dict[str, Any] | None, namer: Namer) -> str | None:
    """One transcript entry for a Web API call, or None for calls people don't see."""
    blocks = args.get("blocks") or []
    if isinstance(blocks, str):
        blocks = []
    body = blocks_to_lines(blocks, namer) or [namer.mrkdwn(str(args.get("text", "")))]
    channel = str(args.get("channel", ""))
    if method == "chat.postMessage":
        where = namer.channel(channel)
        thread = " (in thread)" if args.get("thread_ts") else ""
        return f"  → {where}{thread}: new message\n{_indent(body)}"
    if method == "chat.update":
        return f"  ✎ {namer.channel(channel)}: message updated\n{_indent(body)}"
    if method == "chat.postEphemeral":
        return f"  → only {namer.user(str(args.get('user')))} sees, in {namer.channel(channel)}:\n{_indent(body)}"
    if method in ("views.open", "views.push"):
        view = args.get("view") or {}
        lines = [f"== {_text_of(view.get('title'))} =="] + blocks_to_lines(view.get("blocks") or [], namer)
        return f"  ▢ a modal opens\n{_indent(lines)}"
    if method == "views.publish":
        view = args.get("view") or {}
        lines = blocks_to_lines(view.get("blocks") or [], namer)
        return f"  ⌂ App Home of {namer.user(str(args.get('user_id')))}\n{_indent(lines)}"
    if method == "files.completeUploadExternal":
        files = args.get("files") or []
        names = ", ".join(str(f.get("title") or f.get("id")) for f in files if isinstance(f, dict))
        return f"  📎 {namer.channel(str(args.get('channel_id', '')))}: file uploaded ({names})"
    return None


def describe_response_post(body: dict[str, Any], user: str, namer: Namer) -> str:
    blocks = body.get("blocks") or []
    lines = blocks_to_lines(blocks, namer) or [namer.mrkdwn(str(body.get("text", "")))]
    verb = "replaces their earlier note" if body.get("replace_original") else "only they see"
    return f"  → {namer.user(user)} ({verb}):\n{_indent(lines)}"
