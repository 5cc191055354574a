"""World model for the loopback Slack fake: users, channels, messages, views, files, triggers.

`SlackWorld` holds the state, the object shapes (user, channel, file, view) and the files v2
handlers; `slacksim.simulator` adds the HTTP server, the other Web API method handlers, fault injection,
rate limits and recording on top of it. Nothing here does I/O, and public methods take the world
lock, so the inspection API is thread-safe.
"""

from __future__ import annotations

import base64
import bisect
import copy
import hashlib
import itertools
import json
import mimetypes
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

METHODS_FILE = Path(__file__).with_name("slack_methods.json")


def load_method_table() -> dict[str, dict[str, Any]]:
    """Return `{method: {"required": [...], "one_of": [[...]], "tier": "t3", "errors": [...]}}`."""
    with METHODS_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)["methods"]


class ApiError(Exception):
    """An `ok: false` answer: `error` code plus optional `response_metadata.messages`."""

    def __init__(self, error: str, *, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            out["response_metadata"] = {"messages": self.messages}
        return out


@dataclass
class SimUser:
    id: str
    name: str
    real_name: str
    tz: str
    tz_offset: int | None
    profile_fields: dict[str, str]
    deleted: bool = False
    is_bot: bool = False
    email: str | None = None
    locale: str | None = None  # e.g. "zh-CN"; Slack's default is "en-US"


@dataclass
class SimChannel:
    id: str
    name: str
    members: list[str]
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    user: str | None = None  # the other party of an IM
    created: int = 1700000000


@dataclass
class Upload:
    file_id: str
    filename: str
    length: int
    created: int
    data: bytes | None = None
    title: str | None = None
    alt_txt: str | None = None
    completed: bool = False
    shares: list[tuple[str, str]] = field(default_factory=list)  # (channel_id, message ts)


@dataclass
class ResponsePost:
    """One POST to a `response_url` issued by `new_response_url()`."""

    token: str
    body: dict[str, Any]
    at: float
    channel_id: str | None
    user_id: str | None
    status: int


@dataclass
class _Trigger:
    issued_at: float
    user_id: str | None
    used: bool = False


@dataclass
class _ResponseTarget:
    channel_id: str | None
    user_id: str | None
    message_ts: str | None
    issued_at: float
    posts: int = 0


def flag(value: Any) -> bool:
    """Slack booleans arrive as true/false, "true"/"false" or "1"/"0"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def to_int(value: Any, default: int, error: str = "invalid_arguments") -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(error) from None


def ts_key(ts: Any, error: str = "invalid_arguments") -> Decimal:
    """Order-preserving key for Slack `ts` strings (never floats: "1.10" != "1.1")."""
    try:
        return Decimal(str(ts))
    except InvalidOperation:
        raise ApiError(error) from None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(cursor: str, prefix: str) -> str:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        raise ApiError("invalid_cursor") from None
    if not text.startswith(prefix):
        raise ApiError("invalid_cursor")
    return text[len(prefix) :].rstrip("}").strip()


def _ptr(suffix: object) -> str:
    return f"[json-pointer:/blocks{'/' if suffix != '' else ''}{suffix}]"


def validate_blocks(blocks: Any, *, limit: int = 50) -> list[dict[str, Any]]:
    """Structural checks Slack applies to `blocks` (type present, unique block_id, text lengths)."""
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    if len(blocks) > limit:
        raise ApiError("invalid_blocks", messages=[f"[ERROR] no more than {limit} items allowed {_ptr('')}"])
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise ApiError("invalid_blocks", messages=[f"[ERROR] missing required field: type {_ptr(i)}"])
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in seen:
                raise ApiError("invalid_blocks", messages=[f"[ERROR] duplicate block_id {_ptr(i)}"])
            seen.add(block_id)
        text = block.get("text")
        max_len = {"section": 3000, "header": 150}.get(block["type"])
        if max_len and isinstance(text, dict) and len(str(text.get("text", ""))) > max_len:
            msg = f"[ERROR] must be less than {max_len + 1} characters {_ptr(f'{i}/text/text')}"
            raise ApiError("invalid_blocks", messages=[msg])
    return blocks


def validate_metadata(metadata: Any) -> dict[str, Any]:
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload", {}), dict)
    ):
        raise ApiError("invalid_metadata_format")
    return metadata


def field_id(label: str) -> str:
    """Stable custom-profile-field id for a label, shaped like Slack's `Xf01ABCDEF1`."""
    return "Xf01" + hashlib.sha1(label.encode()).hexdigest()[:7].upper()


class SlackWorld:
    """Stateful model of one Slack workspace with the askdesk app installed."""

    team_id = "T0001"
    team_name = "Askdesk Demo"
    team_domain = "askdesk-demo"
    workspace_url = "https://askdesk-demo.slack.com/"
    app_id = "A0001"
    bot_user_id = "UBOT"
    bot_id = "BBOT"
    bot_name = "askdesk"
    trigger_ttl = 3.0
    response_url_max_posts = 5
    response_url_ttl = 30 * 60.0

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.clock: Callable[[], float] = time.monotonic  # trigger / response_url expiry, rate limits
        self.wall_clock: Callable[[], float] = time.time  # message ts values, `created` stamps
        self.root_url = "http://127.0.0.1:0"  # set by the server on start()
        self.method_table = load_method_table()
        self.users: dict[str, SimUser] = {}
        self.channels: dict[str, SimChannel] = {}
        self._messages: dict[str, list[dict[str, Any]]] = {}
        self._msg_index: dict[tuple[str, str], dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self.published_views: dict[str, dict[str, Any]] = {}
        self.opened_views: list[dict[str, Any]] = []
        self._triggers: dict[str, _Trigger] = {}
        self._response_targets: dict[str, _ResponseTarget] = {}
        self._response_posts: list[ResponsePost] = []
        self.uploads: dict[str, Upload] = {}
        self.ephemeral_messages: list[dict[str, Any]] = []
        self.scheduled_messages: list[dict[str, Any]] = []
        self._last_ts_us = 0
        self._ids = itertools.count(1)
        self.add_user(self.bot_user_id, name=self.bot_name, real_name="Askdesk", tz="UTC", is_bot=True)

    # ------------------------------------------------------------------ world setup
    def add_user(
        self,
        user_id: str,
        *,
        name: str,
        real_name: str | None = None,
        tz: str = "America/New_York",
        tz_offset: int | None = None,
        profile_fields: dict[str, str] | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        email: str | None = None,
        locale: str | None = None,
    ) -> SimUser:
        ZoneInfo(tz)  # fail fast on unknown zones
        user = SimUser(
            id=user_id,
            name=name,
            real_name=real_name or name,
            tz=tz,
            tz_offset=tz_offset,
            profile_fields=dict(profile_fields or {}),
            deleted=deleted,
            is_bot=is_bot,
            email=email if email is not None else f"{name}@askdesk-demo.example.com",
            locale=locale,
        )
        with self._lock:
            self.users[user_id] = user
        return user

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str,
        members: list[str],
        bot_is_member: bool = True,
        is_private: bool = False,
    ) -> SimChannel:
        member_list = [m for m in members if m != self.bot_user_id]
        if bot_is_member:
            member_list.append(self.bot_user_id)
        channel = SimChannel(
            id=channel_id, name=name.lstrip("#"), members=member_list, is_private=is_private,
            created=int(self.wall_clock()),
        )
        with self._lock:
            self.channels[channel_id] = channel
            self._messages.setdefault(channel_id, [])
        return channel

    def add_message(
        self,
        channel: str,
        *,
        user: str,
        text: str,
        ts: str | None = None,
        thread_ts: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Seed a message written by a human `user` (as if typed in Slack); returns its ts."""
        with self._lock:
            ch = self._resolve(channel, check_member=False)
            msg: dict[str, Any] = {"user": user, "type": "message", "ts": ts or self.next_ts(), "text": text,
                                   "team": self.team_id}
            if blocks:
                msg["blocks"] = blocks
            if metadata:
                msg["metadata"] = metadata
            self._store(ch.id, msg, thread_ts=thread_ts)
            return msg["ts"]

    # ------------------------------------------------------------------ inspection
    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Current messages of a channel (a user id means the app's DM with them), oldest first,
        thread replies included, with edits and deletions applied."""
        with self._lock:
            channel_id = self._channel_id_for(channel)
            return copy.deepcopy(self._messages.get(channel_id, []))

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages(channel) if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    def dm_channel_for(self, user_id: str) -> str:
        """The stable id of the app's DM with `user_id` (created on first use)."""
        with self._lock:
            if user_id in self.users:
                return self._dm(user_id).id
            return self._dm_id(user_id)

    def find_view(
        self, *, view_id: str | None = None, callback_id: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of a view the app opened/pushed/published: by id, or the newest with `callback_id`."""
        with self._lock:
            if view_id is not None:
                found = self._views.get(view_id)
            else:
                views = reversed(self._views.values())
                found = next((v for v in views if v["callback_id"] == callback_id), None)
            return copy.deepcopy(found)

    @property
    def response_posts(self) -> list[ResponsePost]:
        with self._lock:
            return list(self._response_posts)

    # ------------------------------------------------------------------ triggers & response_urls
    def new_trigger_id(self, user_id: str | None = None) -> str:
        """Issue a trigger_id valid for `trigger_ttl` seconds of `clock` and a single views.open/push."""
        with self._lock:
            serial = f"{next(self._ids)}{secrets.randbelow(10**6):06d}"
            trigger = f"{serial}.{int(self.wall_clock())}.{secrets.token_hex(16)}"
            self._triggers[trigger] = _Trigger(issued_at=self.clock(), user_id=user_id)
            return trigger

    def consume_trigger(self, trigger_id: str) -> _Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued_at >= self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def new_response_url(
        self, *, channel_id: str | None = None, user_id: str | None = None, message_ts: str | None = None
    ) -> str:
        """Issue a response_url (5 posts within 30 minutes). `channel_id`/`message_ts` give
        `in_channel` / `replace_original` / `delete_original` posts their effect on `messages()`."""
        with self._lock:
            token = secrets.token_urlsafe(12)
            self._response_targets[token] = _ResponseTarget(channel_id, user_id, message_ts, self.clock())
            return f"{self.root_url}/response/{token}"

    def receive_response_post(self, token: str, body: Any) -> tuple[int, str]:
        with self._lock:
            target = self._response_targets.get(token)
            if target is None or self.clock() - target.issued_at > self.response_url_ttl:
                return 404, "expired_url"
            if target.posts >= self.response_url_max_posts:
                return 404, "used_url"
            if not isinstance(body, dict):
                return 400, "invalid_payload"
            has_content = any(body.get(k) for k in ("text", "blocks", "attachments"))
            if not (has_content or flag(body.get("delete_original"))):
                return 400, "no_text"
            target.posts += 1
            self._response_posts.append(
                ResponsePost(token, body, time.monotonic(), target.channel_id, target.user_id, 200)
            )
            self._apply_response(target, body)
            self._changed.notify_all()
            return 200, "ok"

    def _apply_response(self, target: _ResponseTarget, body: dict[str, Any]) -> None:
        original = self._msg_index.get((target.channel_id or "", target.message_ts or ""))
        if original is not None and flag(body.get("delete_original")):
            self._delete(target.channel_id or "", original)
        elif original is not None and flag(body.get("replace_original")):
            original["text"] = body.get("text") or ""
            for key in ("blocks", "attachments"):
                if body.get(key):
                    original[key] = body[key]
                else:
                    original.pop(key, None)
        elif body.get("response_type") == "in_channel" and target.channel_id in self.channels:
            msg = self.bot_message(body.get("text"), body.get("blocks"), body.get("attachments"), None)
            self._store(target.channel_id, msg, thread_ts=body.get("thread_ts"))
        elif target.channel_id:
            self.ephemeral_messages.append(
                {"channel": target.channel_id, "user": target.user_id, "message": copy.deepcopy(body)}
            )

    # ------------------------------------------------------------------ ids, ts, lookups
    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    def next_ts(self) -> str:
        """Unique, strictly increasing message ts close to wall time ("1700000000.000100")."""
        with self._lock:
            self._last_ts_us = max(int(self.wall_clock() * 1_000_000), self._last_ts_us + 1)
            return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _dm_id(self, user_id: str) -> str:
        return "D" + (user_id[1:] if user_id.startswith("U") else user_id)

    def _dm(self, user_id: str) -> SimChannel:
        dm_id = self._dm_id(user_id)
        if dm_id not in self.channels:
            self.channels[dm_id] = SimChannel(id=dm_id, name=user_id, members=[user_id, self.bot_user_id],
                                              is_private=True, is_im=True, user=user_id,
                                              created=int(self.wall_clock()))
            self._messages.setdefault(dm_id, [])
        return self.channels[dm_id]

    def _channel_id_for(self, channel: str) -> str:
        if channel in self.channels:
            return channel
        if channel in self.users:
            return self._dm(channel).id
        for ch in self.channels.values():
            if ch.name == channel.lstrip("#") and not ch.is_im:
                return ch.id
        return channel

    def _resolve(self, channel: Any, *, check_member: bool = True, users_as_dm: bool = True) -> SimChannel:
        """Resolve a channel argument (id, #name, or user id for the app's DM)."""
        if not isinstance(channel, str) or not channel:
            raise ApiError("channel_not_found")
        ch = self.channels.get(channel)
        if ch is None and users_as_dm and channel[:1] in ("U", "W") and channel not in self.channels:
            user = self.users.get(channel)
            if user is None:
                raise ApiError("user_not_found")
            if user.deleted:
                raise ApiError("user_disabled")
            ch = self._dm(channel)
        if ch is None:
            named = (c for c in self.channels.values() if c.name == channel.lstrip("#") and not c.is_im)
            ch = next(named, None)
        if ch is None or (ch.is_private and self.bot_user_id not in ch.members):
            raise ApiError("channel_not_found")
        if check_member and self.bot_user_id not in ch.members:
            raise ApiError("not_in_channel")
        return ch

    def user(self, user_id: Any) -> SimUser:
        user = self.users.get(user_id) if isinstance(user_id, str) else None
        if user is None:
            raise ApiError("user_not_found")
        return user

    def find_message(self, channel_id: str, ts: Any) -> dict[str, Any]:
        msg = self._msg_index.get((channel_id, str(ts)))
        if msg is None:
            raise ApiError("message_not_found")
        return msg

    # ------------------------------------------------------------------ messages
    def bot_message(self, text: Any, blocks: Any, attachments: Any, metadata: Any) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "user": self.bot_user_id, "type": "message", "ts": self.next_ts(), "bot_id": self.bot_id,
            "app_id": self.app_id, "text": text or "", "team": self.team_id,
            "bot_profile": {
                "id": self.bot_id, "deleted": False, "name": self.bot_name, "updated": 1700000000,
                "app_id": self.app_id, "team_id": self.team_id,
                "icons": {f"image_{n}": f"https://avatars.slack-edge.com/bot_{n}.png" for n in (36, 48, 72)},
            },
        }
        if blocks:
            msg["blocks"] = blocks
        if attachments:
            msg["attachments"] = attachments
        if metadata:
            msg["metadata"] = metadata
        return msg

    def _store(self, channel_id: str, msg: dict[str, Any], *, thread_ts: Any = None,
               broadcast: bool = False) -> None:
        if (channel_id, msg["ts"]) in self._msg_index:
            raise ValueError(f"duplicate ts {msg['ts']} in {channel_id}")
        self._last_ts_us = max(self._last_ts_us, int(ts_key(msg["ts"]) * 1_000_000))
        if thread_ts:
            msg["thread_ts"] = str(thread_ts)
            parent = self._msg_index.get((channel_id, str(thread_ts)))
            if parent is not None:
                msg["parent_user_id"] = parent.get("user")
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if msg.get("user") not in users:
                    users.append(msg.get("user"))
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = msg["ts"]
            if broadcast:
                msg["subtype"] = "thread_broadcast"
        bucket = self._messages.setdefault(channel_id, [])
        bisect.insort(bucket, msg, key=lambda m: ts_key(m["ts"]))
        self._msg_index[(channel_id, msg["ts"])] = msg
        self._changed.notify_all()

    def _delete(self, channel_id: str, msg: dict[str, Any]) -> None:
        if msg.get("reply_count"):
            for key in ("text", "blocks", "attachments", "metadata", "files"):
                msg.pop(key, None)
            msg.update({"subtype": "tombstone", "text": "This message was deleted.", "hidden": True})
        else:
            self._messages[channel_id].remove(msg)
            del self._msg_index[(channel_id, msg["ts"])]
        self._changed.notify_all()

    @staticmethod
    def is_top_level(msg: dict[str, Any]) -> bool:
        return msg.get("thread_ts") in (None, msg["ts"]) or msg.get("subtype") == "thread_broadcast"

    @staticmethod
    def public_message(msg: dict[str, Any], include_metadata: bool) -> dict[str, Any]:
        out = copy.deepcopy(msg)
        if not include_metadata:
            out.pop("metadata", None)
        return out

    # ------------------------------------------------------------------ object shapes
    def tz_fields(self, user: SimUser) -> tuple[int, str]:
        now = datetime.now(ZoneInfo(user.tz))
        offset = user.tz_offset if user.tz_offset is not None else int(now.utcoffset().total_seconds())  # type: ignore[union-attr]
        return offset, now.tzname() or user.tz

    def profile(self, user: SimUser, *, fields: bool, labels: bool = False) -> dict[str, Any]:
        first, _, last = user.real_name.partition(" ")
        avatar = hashlib.md5(user.id.encode()).hexdigest()[:12]
        out: dict[str, Any] = {
            "title": "", "phone": "", "skype": "", "real_name": user.real_name,
            "real_name_normalized": user.real_name, "display_name": user.name,
            "display_name_normalized": user.name,
            "status_text": "", "status_emoji": "", "status_expiration": 0, "avatar_hash": avatar,
            "email": user.email, "first_name": first, "last_name": last, "team": self.team_id,
            **{f"image_{n}": f"https://avatars.slack-edge.com/{avatar}_{n}.png" for n in (24, 48, 72, 192)},
        }
        if user.is_bot:
            out.update({"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True})
        if fields:
            out["fields"] = {
                field_id(label): {"value": value, "alt": "", **({"label": label} if labels else {})}
                for label, value in user.profile_fields.items()
            }
        return out

    def user_object(self, user: SimUser, *, include_locale: bool = False) -> dict[str, Any]:
        """A user as users.info returns it; `locale` only when asked for (`include_locale`), as Slack does."""
        offset, label = self.tz_fields(user)
        out = {
            "id": user.id, "team_id": self.team_id, "name": user.name, "deleted": user.deleted,
            "color": "9f69e7", "real_name": user.real_name, "tz": user.tz, "tz_label": label,
            "tz_offset": offset,
            "profile": self.profile(user, fields=False), "is_admin": False, "is_owner": False,
            "is_primary_owner": False, "is_restricted": False, "is_ultra_restricted": False,
            "is_bot": user.is_bot, "is_app_user": False, "updated": 1700000000, "has_2fa": False,
        }
        if include_locale:
            out["locale"] = user.locale or "en-US"
        return out

    def channel_object(self, ch: SimChannel, *, num_members: bool = False) -> dict[str, Any]:
        if ch.is_im:
            out: dict[str, Any] = {
                "id": ch.id, "created": ch.created, "is_im": True, "is_org_shared": False, "user": ch.user,
                "last_read": "0000000000.000000", "latest": None, "unread_count": 0,
                "unread_count_display": 0, "is_open": True, "priority": 0,
            }
        else:
            out = {
                "id": ch.id, "name": ch.name, "is_channel": not ch.is_mpim, "is_group": False,
                "is_im": False, "is_mpim": ch.is_mpim, "is_private": ch.is_private or ch.is_mpim,
                "created": ch.created, "is_archived": False, "is_general": ch.name == "general",
                "unlinked": 0, "name_normalized": ch.name, "is_shared": False, "is_org_shared": False,
                "is_ext_shared": False,
                "is_pending_ext_shared": False, "pending_shared": [], "context_team_id": self.team_id,
                "parent_conversation": None, "creator": ch.members[0] if ch.members else self.bot_user_id,
                "shared_team_ids": [self.team_id], "is_member": self.bot_user_id in ch.members,
                "topic": {"value": "", "creator": "", "last_set": 0},
                "purpose": {"value": "", "creator": "", "last_set": 0}, "previous_names": [],
            }
        if num_members:
            out["num_members"] = len(ch.members)
        return out

    def file_object(self, up: Upload) -> dict[str, Any]:
        ext = up.filename.rsplit(".", 1)[-1].lower() if "." in up.filename else "text"
        url = f"https://files.slack.com/files-pri/{self.team_id}-{up.file_id}/{up.filename}"
        shares: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for channel_id, ts in up.shares:
            ch = self.channels.get(channel_id)
            kind = "private" if ch is None or ch.is_private else "public"
            entry = {"reply_users": [], "reply_users_count": 0, "reply_count": 0, "ts": ts,
                     "channel_name": ch.name if ch else "", "team_id": self.team_id}
            shares.setdefault(kind, {}).setdefault(channel_id, []).append(entry)
        chans = [c for c, _ in up.shares]
        pub = hashlib.sha1(up.file_id.encode()).hexdigest()[:10]
        return {
            "id": up.file_id, "created": up.created, "timestamp": up.created, "name": up.filename,
            "title": up.title or up.filename,
            "mimetype": mimetypes.guess_type(up.filename)[0] or "text/plain", "filetype": ext,
            "pretty_type": ext.upper(), "user": self.bot_user_id, "user_team": self.team_id,
            "editable": False, "size": len(up.data or b""), "mode": "hosted", "is_external": False,
            "external_type": "", "is_public": "public" in shares, "public_url_shared": False,
            "display_as_bot": False, "username": "", "url_private": url,
            "url_private_download": url + "?dl=1",
            "permalink": f"{self.workspace_url}files/{self.bot_user_id}/{up.file_id}/{up.filename}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{up.file_id}-{pub}",
            "comments_count": 0, "is_starred": False, "shares": shares,
            "channels": [c for c in chans if c.startswith("C")],
            "groups": [c for c in chans if c.startswith("G")], "ims": [c for c in chans if c.startswith("D")],
            "has_rich_preview": False, "alt_txt": up.alt_txt or "",
        }

    def make_view(self, view: dict[str, Any], *, view_id: str | None = None, root_view_id: str | None = None,
                  previous_view_id: str | None = None) -> dict[str, Any]:
        vid = view_id or self.new_id("V")
        return {
            "id": vid, "team_id": self.team_id, "type": view["type"], "title": view.get("title"),
            "close": view.get("close"), "submit": view.get("submit"), "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""), "state": {"values": {}},
            "hash": f"{int(self.wall_clock())}.{secrets.token_hex(4)}",
            "clear_on_close": flag(view.get("clear_on_close")),
            "notify_on_close": flag(view.get("notify_on_close")),
            "root_view_id": root_view_id or vid, "previous_view_id": previous_view_id, "app_id": self.app_id,
            "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
        }

    def check_view(self, view: Any, *, kind: str, exclude: str | None = None) -> dict[str, Any]:
        def bad(message: str) -> ApiError:
            return ApiError("invalid_arguments", messages=[f"[ERROR] {message}"])

        if not isinstance(view, dict):
            raise bad("failed to parse `view` [json-pointer:/view]")
        if view.get("type") != kind:
            raise bad(f"must be `{kind}` [json-pointer:/view/type]")
        if kind == "modal" and not isinstance(view.get("title"), dict):
            raise bad("missing required field: title [json-pointer:/view]")
        try:
            validate_blocks(view.get("blocks", []), limit=100)
        except ApiError as exc:
            raise ApiError("invalid_arguments", messages=exc.messages or ["[ERROR] invalid blocks"]) from None
        external_id = view.get("external_id")
        if external_id and any(
            v.get("external_id") == external_id and v["id"] != exclude for v in self._views.values()
        ):
            raise ApiError("duplicate_external_id")
        return view

    # ------------------------------------------------------------------ files v2 (Web API handlers)
    def _m_files_getUploadURLExternal(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        length = to_int(a["length"], 0)
        file_id = self.new_id("F")
        self.uploads[file_id] = Upload(file_id, str(a["filename"]), length, int(self.wall_clock()),
                                       alt_txt=a.get("alt_txt"))
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        upload = self.uploads.get(file_id)
        if upload is None or upload.completed:
            return 404, "file_not_found"
        upload.data = data
        self._changed.notify_all()
        return 200, f"OK - {len(data)}"

    def _m_files_completeUploadExternal(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        files = a["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) and f.get("id") for f in files):
            raise ApiError("invalid_arguments", messages=["[ERROR] `files` must be a list of {id, title}"])
        uploads = [self.uploads.get(str(f["id"])) for f in files]
        if any(u is None or u.data is None for u in uploads):
            raise ApiError("file_not_found")  # unknown id, or the bytes never reached upload_url
        targets = [a["channel_id"]] if a.get("channel_id") else []
        targets += [c.strip() for c in str(a.get("channels") or "").split(",") if c.strip()]
        channels = [self._resolve(c) for c in targets]
        blocks = validate_blocks(a["blocks"]) if a.get("blocks") else None
        done = [u for u in uploads if u is not None]
        for spec, upload in zip(files, done, strict=True):
            upload.title = spec.get("title") or upload.title or upload.filename
            upload.completed = True
        for ch in channels:
            msg = self.bot_message(a.get("initial_comment"), blocks, None, None)
            msg.update(upload=True, display_as_bot=False)
            for upload in done:
                upload.shares.append((ch.id, msg["ts"]))
            msg["files"] = [self.file_object(u) for u in done]
            self._store(ch.id, msg, thread_ts=a.get("thread_ts"))
        return {"files": [self.file_object(u) for u in done]}

    def _m_files_info(self, a: dict[str, Any]) -> dict[str, Any]:
        upload = self.uploads.get(str(a["file"]))
        if upload is None or not upload.completed:
            raise ApiError("file_not_found")
        return {"file": self.file_object(upload), "comments": [], "response_metadata": {"next_cursor": ""}}
