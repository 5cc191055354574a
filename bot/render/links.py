"""Slack ids, URLs and mrkdwn links that are safe to put into a message.

A mrkdwn link is `<url|label>`: a `>` in the URL ends it early and whatever follows is parsed as
markup (`<!channel>` pings a whole channel), and a `|` starts the label. So every URL shown is first
validated (http(s), a host, no spaces or control characters) and then escaped (`&`, `<`, `>` as
entities, `|` percent-encoded); labels are escaped too. Channel ids and message timestamps are checked
against Slack's formats before they are stored or turned into links.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

CHANNEL_ID = re.compile(r"^[CDG][A-Z0-9]{2,31}$")  # public, DM and private/group conversations
MESSAGE_TS = re.compile(r"^\d{1,12}\.\d{1,8}$")
URL_LIMIT = 2000
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


def is_channel_id(value: object) -> bool:
    return isinstance(value, str) and bool(CHANNEL_ID.match(value))


def is_message_ts(value: object) -> bool:
    return isinstance(value, str) and bool(MESSAGE_TS.match(value))


def safe_url(value: object) -> str | None:
    """`value` if it is a plausible http(s) URL that fits a message, else None."""
    if not isinstance(value, str) or not value or len(value) > URL_LIMIT or _UNSAFE.search(value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.password:
        return None
    return value


def escape_text(text: str) -> str:
    """Neutralise Slack markup in text: no @channel, mentions or fake links survive."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link_url(url: object) -> str | None:
    """The URL part of a `<url|label>` link: validated (`safe_url`) and escaped, or None."""
    safe = safe_url(url)
    return None if safe is None else escape_text(safe).replace("|", "%7C")


def link(url: object, label: str) -> str:
    """`<url|label>` with both parts escaped; just the (escaped) label when the URL is not safe."""
    shown = escape_text(label).replace("|", "¦")
    target = link_url(url)
    return f"<{target}|{shown}>" if target else shown


def message_link(base_url: str | None, channel: str | None, ts: str | None) -> str | None:
    """`https://<workspace>/archives/<channel>/p<ts without dot>`, or None for ids of the wrong shape."""
    if not base_url or not is_channel_id(channel) or not is_message_ts(ts):
        return None
    return safe_url(f"{base_url.rstrip('/')}/archives/{channel}/p{str(ts).replace('.', '')}")
