"""Signed-request driver: sends requests to the app exactly as Slack does.

Slash commands are form-encoded, interactivity is a form field `payload=<JSON>`, Events API
deliveries are JSON `event_callback` envelopes; every request carries `X-Slack-Request-Timestamp`
and `X-Slack-Signature: v0=HMAC-SHA256(signing_secret, "v0:{ts}:{raw body}")`. Body shapes follow
the captured payloads in Slack's docs and SDK test suites. With a `SlackSimulator`, trigger_ids and
response_urls are issued by the simulator (so views.open and `respond()` work end to end), user and
channel names come from its world, and `message_event` also stores the message there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slacksim.simulator import SlackSimulator

__all__ = ["DriverResponse", "SlackDriver"]

logger = logging.getLogger(__name__)

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"
FORM = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


@dataclass
class DriverResponse:
    """The app's answer to one delivery; `payload` is what was sent (dict)."""

    status: int
    body: str
    json: Any | None
    headers: dict[str, str]
    elapsed: float
    payload: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class SlackDriver:
    """Plays Slack's side of HTTP delivery towards an app listening at `app_url`."""

    def __init__(
        self,
        app_url: str,
        signing_secret: str,
        simulator: SlackSimulator | None = None,
        *,
        team_id: str = "T0001",
        api_app_id: str = "A0001",
        clock: Callable[[], float] = time.time,
        team_domain: str = "askdesk-demo",
        verification_token: str = "legacy-verification-token",
        bot_user_id: str = "UBOT",
        timeout: float = 10.0,
    ) -> None:
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.simulator = simulator
        self.team_id = team_id
        self.api_app_id = api_app_id
        self.clock = clock
        self.team_domain = team_domain
        self.verification_token = verification_token
        self.bot_user_id = simulator.bot_user_id if simulator is not None else bot_user_id
        self.bot_id = simulator.bot_id if simulator is not None else "BBOT"
        self.timeout = timeout
        self._serial = itertools.count(1)
        self._last_ts_us = 0
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # ------------------------------------------------------------------ transport
    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for `body` (timestamp defaults to `clock()`)."""
        ts = str(int(self.clock()) if timestamp is None else int(timestamp))
        digest = hmac.new(self.signing_secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest.hexdigest()}

    def send_raw(self, body: bytes, headers: dict[str, str]) -> DriverResponse:
        """POST `body` with exactly `headers` (no signing added): for bad-signature tests."""
        request = urllib.request.Request(self.app_url, data=body, headers=headers, method="POST")
        started = time.perf_counter()
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                status, raw, resp_headers = resp.status, resp.read(), dict(resp.headers.items())
        except urllib.error.HTTPError as err:
            status, raw, resp_headers = err.code, err.read(), dict((err.headers or {}).items())
        elapsed = time.perf_counter() - started
        text = raw.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text.strip() else None
        except ValueError:
            parsed = None
        logger.debug("driver POST %s -> %s in %.3fs", self.app_url, status, elapsed)
        return DriverResponse(status, text, parsed, resp_headers, elapsed)

    def _post(self, body: bytes, content_type: str, payload: Any,
              extra_headers: dict[str, str] | None = None) -> DriverResponse:
        headers = {"Content-Type": content_type, "User-Agent": USER_AGENT, "Accept": "application/json,*/*",
                   **self.sign(body), **(extra_headers or {})}
        response = self.send_raw(body, headers)
        response.payload = payload
        return response

    def _interactive(self, payload: dict[str, Any]) -> DriverResponse:
        body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
        return self._post(body, FORM, payload)

    # ------------------------------------------------------------------ helpers
    def _ts(self) -> str:
        if self.simulator is not None:
            return self.simulator.next_ts()
        self._last_ts_us = max(int(self.clock() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _user_name(self, user_id: str) -> str:
        user = self.simulator.users.get(user_id) if self.simulator is not None else None
        return user.name if user is not None else user_id.lower()

    def _channel_id(self, channel_id: str) -> str:
        if self.simulator is not None and channel_id[:1] in ("U", "W") and channel_id in self.simulator.users:
            return self.simulator.dm_channel_for(channel_id)
        return channel_id

    def _channel_name(self, channel_id: str) -> str:
        ch = self.simulator.channels.get(channel_id) if self.simulator is not None else None
        if channel_id.startswith("D") or (ch is not None and ch.is_im):
            return "directmessage"
        if ch is None:
            return channel_id.lower()
        return "privategroup" if ch.is_private and not ch.is_mpim else ch.name

    def _channel_type(self, channel_id: str) -> str:
        ch = self.simulator.channels.get(channel_id) if self.simulator is not None else None
        if channel_id.startswith("D"):
            return "im"
        if ch is not None and ch.is_mpim:
            return "mpim"
        return "group" if ch is not None and ch.is_private else "channel"

    def _trigger_id(self, user_id: str) -> str:
        if self.simulator is not None:
            return self.simulator.new_trigger_id(user_id)
        serial = f"{next(self._serial)}{secrets.randbelow(10**6):06d}"
        return f"{serial}.{int(self.clock())}.{secrets.token_hex(16)}"

    def _response_url(self, kind: str, user_id: str, channel_id: str | None = None,
                      message_ts: str | None = None) -> str:
        if self.simulator is not None:
            return self.simulator.new_response_url(channel_id=channel_id, user_id=user_id,
                                                   message_ts=message_ts)
        return f"https://hooks.slack.com/{kind}/{self.team_id}/{next(self._serial)}/{secrets.token_hex(12)}"

    def _team(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _user(self, user_id: str) -> dict[str, Any]:
        name = self._user_name(user_id)
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _common(self, kind: str, user_id: str) -> dict[str, Any]:
        return {"type": kind, "user": self._user(user_id), "api_app_id": self.api_app_id,
                "token": self.verification_token}

    def _view(self, view: dict[str, Any] | str | None, *, callback_id: str | None = None,
              private_metadata: str | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
        """A full view object: `view` itself, a simulator view (by id or callback_id), or a stub."""
        base: dict[str, Any] = {}
        if isinstance(view, dict):
            base = dict(view)
        elif self.simulator is not None:
            found = self.simulator.find_view(view_id=view) if isinstance(view, str) else None
            base = found or (self.simulator.find_view(callback_id=callback_id) if callback_id else None) or {}
        view_id = base.get("id") or (view if isinstance(view, str) else f"V{next(self._serial):09d}")
        state = {"values": values} if values is not None else base.get("state") or {"values": {}}
        kind = base.get("type", "modal")
        title = {"type": "plain_text", "text": "askdesk", "emoji": True} if kind == "modal" else None
        return {
            "id": view_id, "team_id": self.team_id, "type": kind,
            "blocks": base.get("blocks", []),
            "private_metadata": (base.get("private_metadata", "") if private_metadata is None
                                 else private_metadata),
            "callback_id": base.get("callback_id", "") if callback_id is None else callback_id,
            "state": state, "hash": base.get("hash") or f"{int(self.clock())}.{secrets.token_hex(4)}",
            "title": base.get("title") or title, "clear_on_close": base.get("clear_on_close", False),
            "notify_on_close": base.get("notify_on_close", False), "close": base.get("close"),
            "submit": base.get("submit"), "previous_view_id": base.get("previous_view_id"),
            "root_view_id": base.get("root_view_id") or view_id, "app_id": self.api_app_id,
            "external_id": base.get("external_id", ""), "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    @staticmethod
    def text_value(value: str | None) -> dict[str, Any]:
        """`state.values` entry of a plain_text_input."""
        return {"type": "plain_text_input", "value": value}

    @staticmethod
    def select_value(value: str, text: str | None = None,
                     element_type: str = "static_select") -> dict[str, Any]:
        """`state.values` entry of a static_select / radio_buttons choice."""
        option = {"text": {"type": "plain_text", "text": text or value, "emoji": True}, "value": value}
        return {"type": element_type, "selected_option": option}

    # ------------------------------------------------------------------ slash commands
    def slash(self, command: str, text: str = "", *, user_id: str, channel_id: str = "C0GENERAL",
              user_name: str | None = None) -> DriverResponse:
        channel_id = self._channel_id(channel_id)
        fields = {
            "token": self.verification_token, "team_id": self.team_id, "team_domain": self.team_domain,
            "channel_id": channel_id, "channel_name": self._channel_name(channel_id), "user_id": user_id,
            "user_name": user_name or self._user_name(user_id),
            "command": command if command.startswith("/") else "/" + command, "text": text,
            "api_app_id": self.api_app_id, "is_enterprise_install": "false",
            "response_url": self._response_url("commands", user_id, channel_id),
            "trigger_id": self._trigger_id(user_id),
        }
        return self._post(urllib.parse.urlencode(fields).encode(), FORM, fields)

    # ------------------------------------------------------------------ interactivity
    def block_action(
        self,
        *,
        user_id: str,
        action_id: str,
        value: str | None = None,
        block_id: str = "b",
        channel_id: str | None = None,
        message_ts: str | None = None,
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | str | None = None,
        selected_option: dict[str, Any] | None = None,
        action_type: str | None = None,
        button_text: str = "Button",
    ) -> DriverResponse:
        """A click/selection. In a message when `channel_id`/`message_ts` are given (the message is
        looked up in the simulator if not passed), otherwise inside `view` (dict, view id, or stub)."""
        payload = self._common("block_actions", user_id)
        in_message = channel_id is not None or message_ts is not None
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id,
                                  "type": action_type or ("static_select" if selected_option else "button")}
        if action["type"] == "button":
            action["text"] = {"type": "plain_text", "text": button_text, "emoji": True}
        if value is not None:
            action["value"] = value
        if selected_option is not None:
            action["selected_option"] = selected_option
        action["action_ts"] = f"{self.clock():.6f}"
        if in_message:
            channel_id = self._channel_id(channel_id or "")
            message_ts = message_ts or (message or {}).get("ts")
            if message is None and self.simulator is not None:
                found = (m for m in self.simulator.messages(channel_id) if m["ts"] == message_ts)
                message = next(found, None)
            message = message or {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
                                  "text": "", "ts": message_ts}
            container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                         "channel_id": channel_id, "is_ephemeral": False}
            if message.get("thread_ts") not in (None, message_ts):
                container["thread_ts"] = message["thread_ts"]
            payload.update(container=container, trigger_id=self._trigger_id(user_id), team=self._team(),
                           enterprise=None, is_enterprise_install=False,
                           channel={"id": channel_id, "name": self._channel_name(channel_id)},
                           message=message, state={"values": {}},
                           response_url=self._response_url("actions", user_id, channel_id, message_ts))
        else:
            view_obj = self._view(view)
            payload.update(container={"type": "view", "view_id": view_obj["id"]},
                           trigger_id=self._trigger_id(user_id), team=self._team(), enterprise=None,
                           is_enterprise_install=False, view=view_obj, state=view_obj["state"])
        payload["actions"] = [action]
        return self._interactive(payload)

    def view_submission(self, *, user_id: str, callback_id: str, values: dict[str, Any],
                        private_metadata: str | None = None, view_id: str | None = None,
                        view: dict[str, Any] | None = None) -> DriverResponse:
        """Submit a modal; `values` is Slack's `state.values` ({block_id: {action_id: {...}}}). The view
        (blocks, title, private_metadata) is taken from `view`, the simulator's view `view_id`, or the
        newest simulator view with `callback_id`."""
        view_obj = self._view(view if view is not None else view_id, callback_id=callback_id,
                              private_metadata=private_metadata, values=values)
        payload = {"type": "view_submission", "team": self._team(), "user": self._user(user_id),
                   "api_app_id": self.api_app_id, "token": self.verification_token,
                   "trigger_id": self._trigger_id(user_id), "view": view_obj, "response_urls": [],
                   "is_enterprise_install": False, "enterprise": None}
        return self._interactive(payload)

    def view_closed(self, *, user_id: str, callback_id: str, view_id: str | None = None,
                    private_metadata: str | None = None, is_cleared: bool = False) -> DriverResponse:
        view_obj = self._view(view_id, callback_id=callback_id, private_metadata=private_metadata)
        payload = {"type": "view_closed", "team": self._team(), "user": self._user(user_id),
                   "api_app_id": self.api_app_id, "token": self.verification_token, "view": view_obj,
                   "is_cleared": is_cleared, "is_enterprise_install": False, "enterprise": None}
        return self._interactive(payload)

    def message_shortcut(self, *, user_id: str, callback_id: str, channel_id: str,
                         message: dict[str, Any]) -> DriverResponse:
        channel_id = self._channel_id(channel_id)
        payload = {"type": "message_action", "token": self.verification_token,
                   "action_ts": f"{self.clock():.6f}", "team": self._team(), "user": self._user(user_id),
                   "channel": {"id": channel_id, "name": self._channel_name(channel_id)},
                   "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
                   "trigger_id": self._trigger_id(user_id),
                   "response_url": self._response_url("app", user_id, channel_id),
                   "message_ts": message.get("ts"), "message": message}
        return self._interactive(payload)

    def global_shortcut(self, *, user_id: str, callback_id: str) -> DriverResponse:
        payload = {"type": "shortcut", "token": self.verification_token, "action_ts": f"{self.clock():.6f}",
                   "team": self._team(), "user": self._user(user_id), "is_enterprise_install": False,
                   "enterprise": None, "callback_id": callback_id, "trigger_id": self._trigger_id(user_id)}
        return self._interactive(payload)

    # ------------------------------------------------------------------ Events API
    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry_num: int | None = None,
              retry_reason: str | None = None, event_time: int | None = None) -> DriverResponse:
        """Deliver `event` in an `event_callback` envelope. Re-send with the same `event_id` and a
        `retry_num` to imitate Slack's retries (adds X-Slack-Retry-Num / X-Slack-Retry-Reason)."""
        event = dict(event)
        event.setdefault("event_ts", self._ts())
        channel = event.get("channel") or (event.get("item") or {}).get("channel") or ""
        context = json.dumps({"et": event.get("type"), "tid": self.team_id, "aid": self.api_app_id,
                              "cid": channel}, separators=(",", ":"))
        envelope = {
            "token": self.verification_token, "team_id": self.team_id, "api_app_id": self.api_app_id,
            "event": event, "type": "event_callback",
            "event_id": event_id or f"Ev{next(self._serial):04d}{secrets.token_hex(4).upper()}",
            "event_time": int(self.clock() if event_time is None else event_time),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id, "user_id": self.bot_user_id,
                                "is_bot": True, "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-" + base64.urlsafe_b64encode(context.encode()).decode().rstrip("="),
        }
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num),
                       "X-Slack-Retry-Reason": retry_reason or "http_timeout"}
        return self._post(json.dumps(envelope).encode(), JSON_TYPE, envelope, headers)

    def url_verification(self, challenge: str | None = None) -> DriverResponse:
        payload = {"token": self.verification_token, "challenge": challenge or secrets.token_urlsafe(24),
                   "type": "url_verification"}
        return self._post(json.dumps(payload).encode(), JSON_TYPE, payload)

    # Builders: they return the inner event; deliver it with `event(...)`.
    def _reaction(self, kind: str, user_id: str, reaction: str, channel: str, ts: str,
                  item_user: str) -> dict[str, Any]:
        channel = self._channel_id(channel)
        item = {"type": "message", "channel": channel, "ts": ts, "channel_type": self._channel_type(channel)}
        return {"type": kind, "user": user_id, "reaction": reaction, "item_user": item_user, "item": item,
                "event_ts": self._ts()}

    def reaction_added(self, user_id: str, reaction: str, channel: str, ts: str,
                       item_user: str = "UBOT") -> dict[str, Any]:
        """A `reaction_added` event (`reaction` may carry a skin tone: "+1::skin-tone-2")."""
        return self._reaction("reaction_added", user_id, reaction, channel, ts, item_user)

    def reaction_removed(self, user_id: str, reaction: str, channel: str, ts: str,
                         item_user: str = "UBOT") -> dict[str, Any]:
        return self._reaction("reaction_removed", user_id, reaction, channel, ts, item_user)

    def _message(self, kind: str, user_id: str, channel: str, text: str, thread_ts: str | None,
                 ts: str | None, record: bool) -> dict[str, Any]:
        channel = self._channel_id(channel)
        sim = self.simulator
        if sim is not None and record and channel in sim.channels:
            known = ts is not None and any(m["ts"] == ts for m in sim.messages(channel))
            if not known:
                ts = sim.add_message(channel, user=user_id, text=text, ts=ts, thread_ts=thread_ts)
        ts = ts or self._ts()
        block = {"type": "rich_text", "block_id": secrets.token_hex(3),
                 "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}
        ev: dict[str, Any] = {"client_msg_id": str(uuid.uuid4()), "type": kind, "text": text, "user": user_id,
                              "ts": ts, "blocks": [block], "team": self.team_id, "channel": channel,
                              "event_ts": ts}
        if kind == "message":
            ev["channel_type"] = self._channel_type(channel)
        if thread_ts:
            ev["thread_ts"] = thread_ts
            parent = next((m for m in sim.messages(channel) if m["ts"] == thread_ts), None) if sim else None
            if parent is not None:
                ev["parent_user_id"] = parent.get("user")
        return ev

    def message_event(self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None,
                      ts: str | None = None, record: bool = True) -> dict[str, Any]:
        """A user's `message` event (thread replies carry `thread_ts` and no subtype, as over the
        Events API). With a simulator the message is also stored in its history (unless `record=False`
        or a message with `ts` is already there), as Slack stores it before delivering the event."""
        return self._message("message", user_id, channel, text, thread_ts, ts, record)

    def app_mention(self, user_id: str, channel: str, text: str, *, thread_ts: str | None = None,
                    ts: str | None = None) -> dict[str, Any]:
        return self._message("app_mention", user_id, channel, text, thread_ts, ts, False)

    def app_home_opened(self, user_id: str, *, tab: str = "home") -> dict[str, Any]:
        """`app_home_opened`; carries the simulator's published home view, if any, like Slack."""
        sim = self.simulator
        channel = sim.dm_channel_for(user_id) if sim is not None else "D" + user_id.lstrip("UW")
        ev: dict[str, Any] = {"type": "app_home_opened", "user": user_id, "channel": channel, "tab": tab,
                              "event_ts": self._ts()}
        home = sim.published_views.get(user_id) if sim is not None else None
        if tab == "home" and home is not None:
            ev["view"] = home
        return ev
