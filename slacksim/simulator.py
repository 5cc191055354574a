"""Loopback fake of the Slack Web API for tests and `askdesk demo`.

    with SlackSimulator() as sim:
        sim.add_user("U1", name="ada", profile_fields={"Team": "Finance"})
        sim.add_channel("C1", name="finance", members=["U1"])
        client = WebClient(token="xoxb-test", base_url=sim.base_url)
        client.chat_postMessage(channel="U1", text="hi")      # DM -> sim.messages("U1")

Serves `POST/GET /api/<method>` (form, JSON or query string), `POST /upload/<file_id>` (files v2
upload URLs) and `POST /response/<token>` (response_url targets). Every Web API call is recorded as
a `Call`; faults (ok:false, HTTP 5xx, 429, delays, connection resets) can be queued per method, and
Slack's per-tier rate limits can be enforced. `apps.connections.open` (app-level `xapp-` token) hands
out URLs of a Socket Mode server (`socket_mode()`, bot/simulator_socket.py) started on first use.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import hashlib
import json
import logging
import math
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from slacksim.socket_mode import SocketModeServer
from slacksim.state import (
    ApiError,
    ResponsePost,
    SimChannel,
    SimUser,
    SlackWorld,
    Upload,
    b64,
    field_id,
    flag,
    to_int,
    ts_key,
    unb64,
    validate_blocks,
    validate_metadata,
)

__all__ = ["Call", "Chaos", "ResponsePost", "SimChannel", "SimUser", "SlackSimulator", "Upload"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

JSON_ARGS = ("blocks", "attachments", "metadata", "view", "files")
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}
PER_CHANNEL_METHODS = ("chat.postMessage", "chat.postEphemeral", "chat.update")
HTTP_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable", 504: "request_timeout"}


@dataclass
class Call:
    """One Web API request as the simulator saw it (`status` 0 = connection reset)."""

    method: str
    args: dict[str, Any]
    ok: bool
    error: str | None
    status: int
    at: float
    response: dict[str, Any] | None = None


@dataclass
class _Fault:
    method: str
    kind: str  # fail | http | stored_http | ratelimit | delay | slow_answer | reset
    count: int
    error: str = ""
    status: int = 200
    seconds: float = 0.0
    channel: str | None = None


@dataclass
class Chaos:
    """Random faults for every Web API call (`SlackSimulator.set_chaos`), each drawn independently:
    `rate_limited` of calls answered 429 (Retry-After in the `retry_after` range, whole seconds),
    `server_errors` answered 5xx
    (`stored_share` of those after the call took effect), `slow` answered `slow_seconds` (a range)
    late (`slow_stored_share` of those take effect at once and only the answer is late; the others
    take effect at the end of the wait). `methods` limits it to some methods (None: all but the ones
    in `spared`)."""

    rate_limited: float = 0.0
    server_errors: float = 0.0
    stored_share: float = 0.5
    slow: float = 0.0
    slow_seconds: tuple[float, float] = (15.0, 30.0)
    slow_stored_share: float = 0.5
    retry_after: tuple[int, int] = (1, 1)
    methods: frozenset[str] | None = None
    spared: frozenset[str] = frozenset({"auth.test"})
    seed: int | None = None
    drawn: dict[str, int] = field(default_factory=dict)  # fault kind -> how many were drawn

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def draw(self, method: str) -> _Fault | None:
        if method in self.spared or (self.methods is not None and method not in self.methods):
            return None
        roll, rnd = self._random.random(), self._random
        fault = None
        if roll < self.rate_limited:
            fault = _Fault(method, "ratelimit", 1, seconds=rnd.randint(*self.retry_after))
        elif roll < self.rate_limited + self.server_errors:
            stored = rnd.random() < self.stored_share
            fault = _Fault(method, "stored_http" if stored else "http", 1, status=rnd.choice((500, 502, 503)))
        elif roll < self.rate_limited + self.server_errors + self.slow:
            kind = "slow_answer" if rnd.random() < self.slow_stored_share else "delay"
            fault = _Fault(method, kind, 1, seconds=rnd.uniform(*self.slow_seconds))
        if fault is not None:
            self.drawn[fault.kind] = self.drawn.get(fault.kind, 0) + 1
        return fault


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True
    sim: SlackSimulator


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "SlackSimulator/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive, like Slack

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle stall on keep-alive
        with self.server.sim._lock:
            self.server.sim.connections += 1

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        sim = self.server.sim
        if url.path.startswith("/api/"):
            sim._handle_api(self, url.path[5:], url.query, body)
        elif url.path.startswith("/upload/"):
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                parts = _parse_multipart(body, self.headers["Content-Type"])
                body = next((v for v in parts.values() if isinstance(v, bytes)), b"")
            with sim._lock:
                status, text = sim.receive_upload(url.path[8:], body)
            self.reply(status, text.encode(), "text/plain")
        elif url.path.startswith("/response/"):
            try:
                payload = json.loads(body or b"null")
            except ValueError:
                payload = None
            status, text = sim.receive_response_post(url.path[10:], payload)
            self.reply(status, text.encode(), "text/plain")
        else:
            self.reply(404, b"not found", "text/plain")

    def reply(self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except OSError as exc:  # the client gave up (e.g. its timeout fired during delay_next)
            logger.debug("client went away before the answer: %s", exc)

    def reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


def _parse_multipart(body: bytes, content_type: str) -> dict[str, Any]:
    raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    out: dict[str, Any] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        out[str(name)] = data if part.get_filename() else data.decode("utf-8")
    return out


class SlackSimulator(SlackWorld):
    """A Slack workspace on 127.0.0.1 that slack_sdk / Bolt can talk to via `base_url`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0,
                 enforce_rate_limits: bool = False, rate_limit_scale: float = 1.0,
                 keep_responses: bool = True) -> None:
        super().__init__()
        self.keep_responses = keep_responses  # False: `Call.response` is None (long runs: history pages are big)
        self.host, self.port = host, port
        self.latency = latency
        self.enforce_rate_limits = enforce_rate_limits
        self.rate_limit_scale = rate_limit_scale
        self.rate_limited_count = 0
        self.connections = 0  # TCP connections accepted (keep-alive clients reuse theirs)
        self.base_url = ""
        self._calls: list[Call] = []
        self._faults: list[_Fault] = []
        self._windows: dict[str, deque[float]] = {}
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: SocketModeServer | None = None
        self.invalid_tokens: set[str] = set()  # answered invalid_auth (e.g. a revoked app-level token)
        self.chaos: Chaos | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SlackSimulator:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.sim = self
        self._server = server
        self.port = server.server_address[1]
        self.root_url = f"http://{self.host}:{self.port}"
        self.base_url = f"{self.root_url}/api/"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"slack-sim-{self.port}", daemon=True)
        self._thread.start()
        logger.info("Slack simulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._socket is not None:
            self._socket.stop()
            self._socket = None
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SlackSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def socket_mode(self) -> SocketModeServer:
        """Slack's Socket Mode side (started on first use): apps.connections.open answers its URLs."""
        with self._lock:
            if self._socket is None:
                self._socket = SocketModeServer(self.host, app_id=self.app_id).start()
            return self._socket

    # ------------------------------------------------------------------ inspection
    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
        """Poll `predicate` (woken early by every recorded call) until it returns a truthy value."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = "\n".join(
                    f"  {c.method} {c.status} {c.error or 'ok'} {json.dumps(c.args, default=str)[:200]}"
                    for c in self.calls[-15:]
                ) or "  (no calls)"
                raise TimeoutError(f"{predicate!r} not true within {timeout}s; recent calls:\n{recent}")
            with self._changed:
                self._changed.wait(min(interval, remaining))

    def wait_for_call(self, method: str, predicate: Callable[[Call], bool] | None = None,
                      timeout: float = 5.0) -> Call:
        """Wait until a call to `method` (matching `predicate`) has been recorded and return it."""

        def find() -> Call | None:
            matches = (c for c in reversed(self.calls_to(method)) if predicate is None or predicate(c))
            return next(matches, None)

        return self.wait_for(find, timeout=timeout)

    # ------------------------------------------------------------------ fault injection
    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def fail_next(self, method: str, error: str = "channel_not_found", count: int = 1,
                  channel: str | None = None) -> None:
        """Answer the next `count` calls (to `channel` only, if given; method "*" = any) with ok:false."""
        self._add_fault(_Fault(method, "fail", count, error=error, channel=channel))

    def http_error_next(self, method: str, status: int = 500, count: int = 1, channel: str | None = None) -> None:
        self._add_fault(_Fault(method, "http", count, status=status, channel=channel))

    def rate_limit_next(self, method: str, retry_after: int = 1, count: int = 1, channel: str | None = None) -> None:
        self._add_fault(_Fault(method, "ratelimit", count, seconds=retry_after, channel=channel))

    def delay_next(self, method: str, seconds: float, count: int = 1, channel: str | None = None) -> None:
        """Carry out the next call(s) only `seconds` after they arrive (and answer then)."""
        self._add_fault(_Fault(method, "delay", count, seconds=seconds, channel=channel))

    def reset_connection_next(self, method: str, count: int = 1) -> None:
        self._add_fault(_Fault(method, "reset", count))

    def answer_late_next(self, method: str, seconds: float, count: int = 1, channel: str | None = None) -> None:
        """Carry out the next call(s) at once but send the answer only `seconds` later (a client that
        times out meanwhile never learns that its message was stored). `delay_next` is the other
        kind of slowness: the call takes effect only after the wait."""
        self._add_fault(_Fault(method, "slow_answer", count, seconds=seconds, channel=channel))

    def http_error_after_store_next(self, method: str, status: int = 500, count: int = 1,
                                    channel: str | None = None) -> None:
        """Carry out the next call(s), then answer HTTP `status` anyway (Slack's edge failing after
        the message was stored: the client sees an error for a post that exists)."""
        self._add_fault(_Fault(method, "stored_http", count, status=status, channel=channel))

    def pending_faults(self) -> int:
        """How many queued faults have not been used yet."""
        with self._lock:
            return sum(f.count for f in self._faults)

    def clear_faults(self) -> None:
        """Drop every queued fault (Slack is well again)."""
        with self._lock:
            self._faults.clear()

    def set_chaos(self, chaos: Chaos | None) -> None:
        """Answer calls with random faults from now on (None: stop). Queued faults go first."""
        with self._lock:
            self.chaos = chaos

    def _take_fault(self, method: str, args: dict[str, Any]) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method not in (method, "*"):
                    continue
                if fault.channel is not None:
                    raw = [args.get("channel"), args.get("channel_id")]
                    names = {v for v in raw if isinstance(v, str)} | {
                        self._channel_id_for(v) for v in raw if isinstance(v, str)}
                    if not names & {fault.channel, self._channel_id_for(fault.channel)}:
                        continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ rate limits
    def _rate_limited(self, method: str, args: dict[str, Any]) -> int | None:
        """Return Retry-After seconds if this call exceeds Slack's limits, else count it."""
        now, scale = self.clock(), self.rate_limit_scale
        with self._lock:
            if method in PER_CHANNEL_METHODS:
                key = (method, self._channel_id_for(str(args.get("channel", ""))))
                rate, burst = 1.0 * scale, max(1.0, 3.0 * scale)
                bucket = self._buckets.setdefault(key, [burst, now])
                bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
                bucket[1] = now
                if bucket[0] >= 1.0:
                    bucket[0] -= 1.0
                    return None
                return max(1, math.ceil((1.0 - bucket[0]) / rate))
            per_minute = TIER_PER_MINUTE.get(self.method_table.get(method, {}).get("tier", ""))
            if per_minute is None:
                return None
            window = self._windows.setdefault(method, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= max(1, int(per_minute * scale)):
                return max(1, math.ceil(window[0] + 60.0 - now))
            window.append(now)
            return None

    # ------------------------------------------------------------------ request handling
    def _parse(self, h: _Handler, query: str, body: bytes) -> tuple[dict[str, Any], str | None]:
        args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
        ctype = h.headers.get("Content-Type", "").lower()
        if body and ctype.startswith("application/json"):
            try:
                data = json.loads(body)
            except ValueError:
                raise ApiError("invalid_json") from None
            if not isinstance(data, dict):
                raise ApiError("invalid_json")
            args.update(data)
        elif body and ctype.startswith("multipart/form-data"):
            args.update(_parse_multipart(body, h.headers["Content-Type"]))
        elif body:
            args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        auth = h.headers.get("Authorization", "")
        token_arg = args.pop("token", None)
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else token_arg
        for key in JSON_ARGS:
            if isinstance(args.get(key), str) and args[key]:
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    pass  # left as a string: the method answers invalid_*_format
        return args, token

    def _handle_api(self, h: _Handler, method: str, query: str, body: bytes) -> None:
        at = time.monotonic()
        try:
            args, token = self._parse(h, query, body)
            parse_error = None
        except ApiError as exc:
            args, token, parse_error = {}, None, exc
        if self.latency > 0:
            self._stopping.wait(self.latency)
        fault = self._take_fault(method, args) or self._chaos_fault(method)
        if fault is not None and fault.kind == "delay":
            self._stopping.wait(fault.seconds)
            fault = None
        headers = {"X-Slack-Req-Id": hashlib.md5(f"{at}{method}".encode()).hexdigest()}
        status = 200
        if fault is not None and fault.kind == "reset":
            self._record(Call(method, args, False, "connection_reset", 0, at))
            h.reset()
            return
        if fault is not None and fault.kind == "http":
            status, answer = fault.status, {"ok": False, "error": HTTP_ERRORS.get(fault.status, "http_error")}
        elif fault is not None and fault.kind == "ratelimit":
            status, answer = 429, {"ok": False, "error": "ratelimited"}
            headers["Retry-After"] = str(int(fault.seconds))
        else:
            done_fault = fault if fault is not None and fault.kind == "fail" else None
            status, answer, retry_after = self._answer(method, args, token, parse_error, done_fault)
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            if fault is not None and fault.kind == "stored_http" and status == 200:
                status, answer = fault.status, {"ok": False, "error": HTTP_ERRORS.get(fault.status, "http_error")}
            elif fault is not None and fault.kind == "slow_answer":
                self._stopping.wait(fault.seconds)
        if status == 429:
            with self._lock:
                self.rate_limited_count += 1
        self._record(Call(method, args, bool(answer.get("ok")), answer.get("error"), status, at,
                          answer if self.keep_responses else None))
        h.reply(status, json.dumps(answer).encode(), "application/json; charset=utf-8", headers)

    def _chaos_fault(self, method: str) -> _Fault | None:
        with self._lock:
            chaos = self.chaos
            return chaos.draw(method) if chaos is not None else None

    def _answer(self, method: str, args: dict[str, Any], token: str | None, parse_error: ApiError | None,
                fault: _Fault | None) -> tuple[int, dict[str, Any], int | None]:
        try:
            if parse_error is not None:
                raise parse_error
            if not token:
                raise ApiError("not_authed")
            app_level = method == "apps.connections.open"  # the one method that takes the xapp- token
            if not token.startswith("xapp-" if app_level else "xox"):
                raise ApiError("not_allowed_token_type" if token.startswith(("xox", "xapp-")) else "invalid_auth")
            if token in self.invalid_tokens:
                raise ApiError("invalid_auth")
            handler = getattr(self, "_m_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method", "req_method": method}, None
            if self.enforce_rate_limits:
                retry_after = self._rate_limited(method, args)
                if retry_after is not None:
                    return 429, {"ok": False, "error": "ratelimited"}, retry_after
            if fault is not None:
                raise ApiError(fault.error)
            self._check_required(method, args)
            with self._lock:
                result = handler(args)
            return 200, {"ok": True, **result}, None
        except ApiError as exc:
            return 200, exc.body(), None

    def _check_required(self, method: str, args: dict[str, Any]) -> None:
        spec = self.method_table.get(method, {})

        def missing(name: str) -> bool:
            return args.get(name) in (None, "", [], {})

        for name in spec.get("required", []):
            if missing(name):
                if name == "channel":
                    raise ApiError("channel_not_found")
                raise ApiError("invalid_arguments", messages=[f"[ERROR] missing required field: {name}"])
        for group in spec.get("one_of", []):
            if all(missing(name) for name in group):
                if "text" in group:
                    raise ApiError("no_text")
                raise ApiError("invalid_arguments",
                               messages=[f"[ERROR] missing required field: one of {', '.join(group)}"])

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            self._changed.notify_all()
        logger.debug("sim %s -> %s %s", call.method, call.status, call.error or "ok")

    # ------------------------------------------------------------------ Web API methods
    # Each `_m_<method>` runs under the world lock and returns the body without "ok" (the files.*
    # handlers live in bot/simulator_state.py).
    def _m_api_test(self, a: dict[str, Any]) -> dict[str, Any]:
        if a.get("error"):
            raise ApiError(str(a["error"]))
        return {"args": a} if a else {}

    def _m_apps_connections_open(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.socket_mode().new_url()}

    def _m_auth_test(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.workspace_url, "team": self.team_name, "user": self.bot_name,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _content(self, a: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
        blocks = validate_blocks(a["blocks"]) if a.get("blocks") else None
        attachments = a.get("attachments") or None
        if attachments is not None and not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        if attachments and len(attachments) > 100:
            raise ApiError("too_many_attachments")
        metadata = validate_metadata(a["metadata"]) if a.get("metadata") else None
        return a.get("text"), blocks, attachments, metadata

    def _m_chat_postMessage(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        ch = self._resolve(a["channel"])
        msg = self.bot_message(*self._content(a))
        self._store(ch.id, msg, thread_ts=a.get("thread_ts"), broadcast=flag(a.get("reply_broadcast")))
        return {"channel": ch.id, "ts": msg["ts"], "message": self.public_message(msg, True)}

    def _m_chat_update(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"])
        msg = self.find_message(ch.id, a["ts"])
        if msg.get("user") != self.bot_user_id:
            raise ApiError("cant_update_message")
        text, blocks, attachments, metadata = self._content(a)
        if "text" in a:
            msg["text"] = text or ""
        for key, value in (("blocks", blocks), ("attachments", attachments), ("metadata", metadata)):
            if value is not None:
                msg[key] = value
            elif key in a and key != "metadata":
                msg.pop(key, None)
        msg["edited"] = {"user": self.bot_user_id, "ts": self.next_ts()}
        self._changed.notify_all()
        return {"channel": ch.id, "ts": msg["ts"], "text": msg["text"],
                "message": self.public_message(msg, True)}

    def _m_chat_postEphemeral(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        ch = self._resolve(a["channel"])
        user = self.user(a["user"])
        if user.id not in ch.members:
            raise ApiError("user_not_in_channel")
        text, blocks, attachments, _ = self._content(a)
        msg = self.bot_message(text, blocks, attachments, None)
        if a.get("thread_ts"):
            msg["thread_ts"] = a["thread_ts"]
        self.ephemeral_messages.append({"channel": ch.id, "user": user.id, "message": msg})
        return {"message_ts": msg["ts"]}

    def _m_chat_delete(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"])
        msg = self.find_message(ch.id, a["ts"])
        if msg.get("user") != self.bot_user_id:
            raise ApiError("cant_delete_message")
        self._delete(ch.id, msg)
        return {"channel": ch.id, "ts": msg["ts"]}

    def _m_chat_getPermalink(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        ch = self._resolve(a["channel"], check_member=False)
        msg = self.find_message(ch.id, a["message_ts"])
        link = f"{self.workspace_url}archives/{ch.id}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") not in (None, msg["ts"]):
            link += f"?thread_ts={msg['thread_ts']}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _m_chat_scheduleMessage(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        ch = self._resolve(a["channel"])
        post_at, now = to_int(a["post_at"], 0, "invalid_time"), self.wall_clock()
        if post_at <= now:
            raise ApiError("time_in_past")
        if post_at > now + 120 * 86400:
            raise ApiError("time_too_far")
        msg = self.bot_message(*self._content(a))
        msg.update(type="delayed_message", subtype="bot_message")
        del msg["ts"]
        scheduled = {"id": self.new_id("Q"), "channel": ch.id, "post_at": post_at, "message": msg,
                     "thread_ts": a.get("thread_ts")}
        self.scheduled_messages.append(scheduled)
        return {"channel": ch.id, "scheduled_message_id": scheduled["id"], "post_at": str(post_at),
                "message": msg}

    def _m_conversations_members(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"], check_member=False)
        limit = to_int(a.get("limit"), 100, "invalid_limit") or 100
        if limit < 1:
            raise ApiError("invalid_limit")
        start = 0
        if a.get("cursor"):
            user_id = unb64(str(a["cursor"]), "{user_id: ")
            if user_id not in ch.members:
                raise ApiError("invalid_cursor")
            start = ch.members.index(user_id)
        rest = ch.members[start + min(limit, 1000):]
        return {"members": ch.members[start:start + min(limit, 1000)],
                "response_metadata": {"next_cursor": b64(f"{{user_id: {rest[0]}}}") if rest else ""}}

    def _m_conversations_info(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"], check_member=False, users_as_dm=False)
        return {"channel": self.channel_object(ch, num_members=flag(a.get("include_num_members")))}

    def _m_conversations_open(self, a: dict[str, Any]) -> dict[str, Any]:
        if a.get("channel"):
            ch = self.channels.get(str(a["channel"]))
            if ch is None or not (ch.is_im or ch.is_mpim):
                raise ApiError("channel_not_found" if ch is None else "method_not_supported_for_channel_type")
            existed = True
        else:
            ids = [u.strip() for u in str(a["users"]).split(",") if u.strip()]
            if len(ids) > 8:
                raise ApiError("too_many_users")
            for user_id in ids:
                if self.user(user_id).deleted:
                    raise ApiError("user_disabled")
            if len(ids) == 1:
                existed = self._dm_id(ids[0]) in self.channels
                ch = self._dm(ids[0])
            else:
                mpim_id = "G" + hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:10].upper()
                existed = mpim_id in self.channels
                if not existed:
                    name = "mpdm-" + "--".join(self.users[u].name for u in ids) + "-1"
                    self.channels[mpim_id] = SimChannel(mpim_id, name, [*ids, self.bot_user_id],
                                                        is_private=True, is_mpim=True)
                    self._messages.setdefault(mpim_id, [])
                ch = self.channels[mpim_id]
        full = flag(a.get("return_im"))
        out: dict[str, Any] = {"channel": self.channel_object(ch) if full else {"id": ch.id}}
        if existed:
            out.update(no_op=True, already_open=True)
        return out

    def _m_conversations_history(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"])
        limit = min(to_int(a.get("limit"), 100) or 100, 999)
        oldest = ts_key(a.get("oldest") or "0", "invalid_ts_oldest")
        latest = ts_key(a["latest"], "invalid_ts_latest") if a.get("latest") else None
        inclusive = flag(a.get("inclusive"))

        def in_range(msg: dict[str, Any]) -> bool:
            key = ts_key(msg["ts"])
            above = key >= oldest if inclusive else key > oldest
            return above and (latest is None or (key <= latest if inclusive else key < latest))

        msgs = [m for m in reversed(self._messages.get(ch.id, [])) if self.is_top_level(m) and in_range(m)]
        if a.get("cursor"):
            cut = ts_key(unb64(str(a["cursor"]), "next_ts:"), "invalid_cursor")
            msgs = [m for m in msgs if ts_key(m["ts"]) <= cut]
        page, rest = msgs[:limit], msgs[limit:]
        with_meta = flag(a.get("include_all_metadata"))
        out: dict[str, Any] = {"messages": [self.public_message(m, with_meta) for m in page],
                               "has_more": bool(rest), "pin_count": 0}
        if rest:
            out["response_metadata"] = {"next_cursor": b64("next_ts:" + rest[0]["ts"])}
        return out

    def _m_conversations_replies(self, a: dict[str, Any]) -> dict[str, Any]:
        ch = self._resolve(a["channel"])
        msg = self._msg_index.get((ch.id, str(a["ts"])))
        if msg is None:
            raise ApiError("thread_not_found")
        root_ts = msg.get("thread_ts") or msg["ts"]
        parent = self._msg_index.get((ch.id, root_ts), msg)
        replies = [m for m in self._messages[ch.id] if m.get("thread_ts") == root_ts and m is not parent]
        msgs = [parent, *replies]
        if a.get("cursor"):
            cut = ts_key(unb64(str(a["cursor"]), "next_ts:"), "invalid_cursor")
            msgs = [m for m in msgs if ts_key(m["ts"]) >= cut]
        limit = min(to_int(a.get("limit"), 1000) or 1000, 1000)
        page, rest = msgs[:limit], msgs[limit:]
        with_meta = flag(a.get("include_all_metadata"))
        out: dict[str, Any] = {"messages": [self.public_message(m, with_meta) for m in page],
                               "has_more": bool(rest)}
        if rest:
            out["response_metadata"] = {"next_cursor": b64("next_ts:" + rest[0]["ts"])}
        return out

    def _m_users_info(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"user": self.user_object(self.user(a["user"]), include_locale=flag(a.get("include_locale")))}

    def _m_users_list(self, a: dict[str, Any]) -> dict[str, Any]:
        """Every user (bots and deactivated ones included, as Slack does), a page of at most 1000."""
        limit = to_int(a.get("limit"), 0, "invalid_limit") or 1000
        users = sorted(self.users.values(), key=lambda u: u.id)
        start = 0
        if a.get("cursor"):
            user_id = unb64(str(a["cursor"]), "users:")
            start = next((i for i, u in enumerate(users) if u.id == user_id), -1)
            if start < 0:
                raise ApiError("invalid_cursor")
        page, rest = users[start:start + min(limit, 1000)], users[start + min(limit, 1000):]
        include_locale = flag(a.get("include_locale"))
        return {"members": [self.user_object(u, include_locale=include_locale) for u in page], "cache_ts": 1700000000,
                "response_metadata": {"next_cursor": b64("users:" + rest[0].id) if rest else ""}}

    def _m_users_lookupByEmail(self, a: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        email = str(a["email"]).lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise ApiError("users_not_found")
        return {"user": self.user_object(user)}

    def _m_users_profile_get(self, a: dict[str, Any]) -> dict[str, Any]:
        user = self.user(a.get("user") or self.bot_user_id)
        return {"profile": self.profile(user, fields=True, labels=flag(a.get("include_labels")))}

    def _m_team_profile_get(self, a: dict[str, Any]) -> dict[str, Any]:
        labels = list(dict.fromkeys(label for u in self.users.values() for label in u.profile_fields))
        fields = [{"id": field_id(label), "ordering": i, "field_name": None, "label": label, "hint": "",
                   "type": "text", "possible_values": None, "options": None, "is_hidden": False}
                  for i, label in enumerate(labels)]
        return {"profile": {"fields": fields, "sections": []}}

    def _open_view(self, a: dict[str, Any]) -> dict[str, Any]:
        view = self.check_view(a["view"], kind="modal")
        self.consume_trigger(str(a.get("trigger_id") or a.get("interactivity_pointer")))
        out = self.make_view(view)
        self._views[out["id"]] = out
        self.opened_views.append(copy.deepcopy(out))
        self._changed.notify_all()
        return {"view": copy.deepcopy(out)}

    def _m_views_open(self, a: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(a)

    def _m_views_push(self, a: dict[str, Any]) -> dict[str, Any]:
        return self._open_view(a)

    def _m_views_update(self, a: dict[str, Any]) -> dict[str, Any]:
        ext = a.get("external_id")
        target = self._views.get(str(a.get("view_id") or "")) or next(
            (v for v in self._views.values() if ext and v["external_id"] == ext), None)
        if target is None:
            raise ApiError("not_found")
        if a.get("hash") and a["hash"] != target["hash"]:
            raise ApiError("hash_conflict")
        view = self.check_view(a["view"], kind=target["type"], exclude=target["id"])
        view = {"external_id": target["external_id"], **view}
        new = self.make_view(view, view_id=target["id"], root_view_id=target["root_view_id"],
                             previous_view_id=target["previous_view_id"])
        self._views[new["id"]] = new
        for user_id, home in self.published_views.items():
            if home["id"] == new["id"]:
                self.published_views[user_id] = copy.deepcopy(new)
        self._changed.notify_all()
        return {"view": copy.deepcopy(new)}

    def _m_views_publish(self, a: dict[str, Any]) -> dict[str, Any]:
        if a["user_id"] not in self.users:
            raise ApiError("invalid_arguments", messages=["invalid `user_id`"])
        existing = self.published_views.get(a["user_id"])
        if a.get("hash") and existing and a["hash"] != existing["hash"]:
            raise ApiError("hash_conflict")
        view = self.check_view(a["view"], kind="home", exclude=existing["id"] if existing else None)
        new = self.make_view(view, view_id=existing["id"] if existing else None)
        self._views[new["id"]] = new
        self.published_views[a["user_id"]] = copy.deepcopy(new)
        self._changed.notify_all()
        return {"view": copy.deepcopy(new)}

    def _reaction(self, a: dict[str, Any]) -> tuple[dict[str, Any], str]:
        ch = self._resolve(a["channel"])
        msg = self.find_message(ch.id, a["timestamp"])
        name = str(a["name"]).strip(":")
        if not name or " " in name:
            raise ApiError("invalid_name")
        return msg, name

    def _m_reactions_add(self, a: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction(a)
        reactions = msg.setdefault("reactions", [])
        entry = next((r for r in reactions if r["name"] == name), None)
        if entry is None:
            entry = {"name": name, "users": [], "count": 0}
            reactions.append(entry)
        if self.bot_user_id in entry["users"]:
            raise ApiError("already_reacted")
        entry["users"].append(self.bot_user_id)
        entry["count"] += 1
        return {}

    def _m_reactions_remove(self, a: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction(a)
        entry = next((r for r in msg.get("reactions", []) if r["name"] == name), None)
        if entry is None or self.bot_user_id not in entry["users"]:
            raise ApiError("no_reaction")
        entry["users"].remove(self.bot_user_id)
        entry["count"] -= 1
        msg["reactions"] = [r for r in msg["reactions"] if r["count"] > 0]
        if not msg["reactions"]:
            del msg["reactions"]
        return {}
