"""Slack's side of Socket Mode for tests: a minimal RFC 6455 WebSocket server on 127.0.0.1 (stdlib only).

    server = sim.socket_mode()                 # started on first use; apps.connections.open hands out
    conn = server.wait_for_connection()        # its URLs (`ws://127.0.0.1:<port>/link?ticket=...`)
    envelope_id = server.send_envelope("slash_commands", payload, accepts_response_payload=True)
    ack = server.wait_for_ack(envelope_id)     # ack.payload: what the app answered (or None)

What it plays, as slack_sdk's built-in client (`slack_sdk/socket_mode/builtin/`) expects it:
- the handshake: `GET /link?ticket=...` with `Upgrade: websocket`, `Sec-WebSocket-Key` and version 13,
  answered `101 Switching Protocols` with `Sec-WebSocket-Accept`; a ticket works once (an unknown or
  used one gets 401, and the client asks apps.connections.open for a new URL);
- right after it, the `hello` message; then envelopes as unmasked text frames;
- client frames must be masked (close 1002 otherwise); pings are answered with pongs echoing the
  payload (the client pings on connect and every `ping_interval` and reconnects when pongs stop);
- a `{"type": "disconnect", "reason": ...}` message (`disconnect()`) makes the client open a new
  connection through apps.connections.open; a close frame (`close()`) does too (auto-reconnect);
- acks are text frames `{"envelope_id": ..., "payload": {...}?}`; each is recorded as an `Ack`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = ["Ack", "SocketConnection", "SocketModeServer"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE = 16 * 1024 * 1024
MAX_HANDSHAKE = 16 * 1024
ENVELOPE_TYPES = ("slash_commands", "interactive", "events_api")
# Interactive payloads whose ack may carry a response (errors / response_action, options); like Slack.
RESPONSE_PAYLOAD_TYPES = ("view_submission", "block_suggestion")


class _ProtocolError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclass
class Ack:
    """One acknowledgement sent by the app: `payload` is its response body, None for a bare ack."""

    envelope_id: str
    payload: dict[str, Any] | None
    at: float
    connection: int
    raw: dict[str, Any]
    elapsed: float | None = None  # seconds since the envelope was sent (None: unknown envelope id)


def _unmask(data: bytes, key: bytes) -> bytes:
    if not data:
        return data
    n = len(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def _frame(opcode: int, data: bytes) -> bytes:
    """An unmasked server frame (RFC 6455 §5.1: servers never mask)."""
    length = len(data)
    if length <= 125:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length <= 0xFFFF:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + data


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


@dataclass(eq=False)
class SocketConnection:
    """One WebSocket connection from the app (server side)."""

    id: int
    sock: socket.socket
    ticket: str
    opened_at: float
    server: SocketModeServer
    pings: list[bytes] = field(default_factory=list)  # payloads of pings received from the client
    pongs: list[bytes] = field(default_factory=list)  # payloads of pongs received from the client
    close_code: int | None = None  # set once closed (1006: the TCP connection just went away)
    _buffer: bytes = b""
    _send_lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: bool = False
    _open: bool = True

    @property
    def is_open(self) -> bool:
        return self._open

    # ------------------------------------------------------------------ sending
    def send_frame(self, opcode: int, data: bytes) -> None:
        with self._send_lock:
            if not self._open:
                raise ConnectionError(f"Socket Mode connection {self.id} is closed")
            self.sock.sendall(_frame(opcode, data))

    def send_json(self, message: dict[str, Any]) -> None:
        self.send_frame(OP_TEXT, json.dumps(message).encode())

    def ping(self, payload: bytes = b"") -> None:
        self.send_frame(OP_PING, payload[:125])

    def close(self, code: int = 1000, reason: str = "", *, wait: float = 2.0) -> None:
        """Send a close frame; the client answers or drops the connection (dropped by us after `wait` s)."""
        with self._send_lock:
            if not self._open or self._closing:
                return
            self._closing = True
            try:
                self.sock.sendall(_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123]))
            except OSError:
                pass
        self.close_code = code
        timer = threading.Timer(wait, self._shutdown)
        timer.daemon = True
        timer.start()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (as a network failure would)."""
        self._shutdown()

    def _shutdown(self) -> None:
        with self._send_lock:
            if not self._open:
                return
            self._open = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # ------------------------------------------------------------------ receiving
    def _read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = self.sock.recv(max(4096, n - len(self._buffer)))
            if not chunk:
                raise EOFError
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_frame(self) -> tuple[bool, int, bytes]:
        b1, b2 = self._read(2)
        fin, opcode, masked, length = bool(b1 & 0x80), b1 & 0x0F, bool(b2 & 0x80), b2 & 0x7F
        if b1 & 0x70:
            raise _ProtocolError(1002, "reserved bits set")
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8))
        if opcode >= 0x8 and (length > 125 or not fin):
            raise _ProtocolError(1002, "bad control frame")
        if not masked:
            raise _ProtocolError(1002, "client frames must be masked")
        if length > MAX_MESSAGE:
            raise _ProtocolError(1009, "message too big")
        key = self._read(4)
        return fin, opcode, _unmask(self._read(length), key)

    def _serve(self) -> None:
        parts: list[bytes] = []
        first_opcode = 0
        try:
            while True:
                fin, opcode, data = self._read_frame()
                if opcode == OP_PING:
                    self.pings.append(data)
                    self.send_frame(OP_PONG, data)
                elif opcode == OP_PONG:
                    self.pongs.append(data)
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    if not self._closing:  # echo the client's close
                        self.close(1000 if code == 1005 else code, wait=0.1)
                    self.close_code = code
                    break
                elif opcode in (OP_TEXT, OP_BINARY):
                    if parts:
                        raise _ProtocolError(1002, "new message inside a fragmented one")
                    if fin:
                        self._message(opcode, data)
                    else:
                        first_opcode, parts = opcode, [data]
                elif opcode == OP_CONT:
                    if not parts:
                        raise _ProtocolError(1002, "continuation without a message")
                    parts.append(data)
                    if sum(len(p) for p in parts) > MAX_MESSAGE:
                        raise _ProtocolError(1009, "message too big")
                    if fin:
                        self._message(first_opcode, b"".join(parts))
                        parts = []
                else:
                    raise _ProtocolError(1002, f"unknown opcode {opcode}")
        except _ProtocolError as exc:
            logger.warning("Socket Mode connection %s: protocol error: %s", self.id, exc.reason)
            self.close(exc.code, exc.reason, wait=0.1)
        except (EOFError, OSError):
            if self.close_code is None:
                self.close_code = 1006
        finally:
            self._shutdown()
            self.server._closed(self)

    def _message(self, opcode: int, data: bytes) -> None:
        if opcode == OP_BINARY:
            logger.warning("Socket Mode connection %s: ignored a binary message (%d bytes)", self.id, len(data))
            return
        try:
            message = json.loads(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise _ProtocolError(1007, "text frame is not UTF-8") from None
        except ValueError:
            logger.warning("Socket Mode connection %s: not JSON: %r", self.id, data[:200])
            return
        self.server._received(self, message)


class SocketModeServer:
    """Slack's Socket Mode endpoint: hands out one-use connection URLs, pushes envelopes, records acks."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, app_id: str = "A0001") -> None:
        self.host, self.port, self.app_id = host, port, app_id
        self.connections: list[SocketConnection] = []  # every connection that completed the handshake
        self.acks: list[Ack] = []
        self.received: list[dict[str, Any]] = []  # every JSON message from the app, acks included
        self.envelopes: list[dict[str, Any]] = []  # every envelope sent, in order
        self.rejected_handshakes = 0
        self._sent_at: dict[str, float] = {}
        self._tickets: dict[str, float] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conn_threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> SocketModeServer:
        if self._listener is not None:
            return self
        self._stopping.clear()
        listener = socket.create_server((self.host, self.port), backlog=64)
        listener.settimeout(0.05)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"slack-socket-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        logger.info("Socket Mode server listening on ws://%s:%s/link", self.host, self.port)
        return self

    def stop(self) -> None:
        if self._listener is None:
            return
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
        with self._cond:  # no handshake completes from here on (see _handle)
            conns, threads = list(self.connections), list(self._conn_threads)
        for conn in conns:
            conn.abort()
        for thread in threads:
            thread.join(timeout=5)
        self._listener.close()
        self._listener = self._accept_thread = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def new_url(self) -> str:
        """A fresh one-use connection URL (what apps.connections.open answers)."""
        ticket = str(uuid.uuid4())
        with self._cond:
            self._tickets[ticket] = time.monotonic()
        return f"ws://{self.host}:{self.port}/link?ticket={ticket}&app_id={self.app_id}"

    # ------------------------------------------------------------------ inspection
    def active(self) -> list[SocketConnection]:
        with self._cond:
            return [c for c in self.connections if c.is_open]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Poll `predicate` (woken by every connection change and received message) until truthy.
        The predicate runs without the server's lock, so it may look at the simulator too."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{predicate!r} not true within {timeout}s "
                                   f"({len(self.connections)} connections, {len(self.acks)} acks)")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def wait_for_connection(self, timeout: float = 10.0, *, count: int = 1) -> SocketConnection:
        """Wait until `count` connections have been made in all and one is open; return the newest open one."""

        def ready() -> SocketConnection | None:
            with self._cond:
                open_ = [c for c in self.connections if c.is_open]
                return open_[-1] if len(self.connections) >= count and open_ else None

        return self.wait_for(ready, timeout)

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> Ack:
        """The first ack of `envelope_id` (Slack waits 3 s for it; `Ack.elapsed` says how long it took)."""
        return self.wait_for(lambda: next(iter(self.acks_for(envelope_id)), None), timeout)

    def acks_for(self, envelope_id: str) -> list[Ack]:
        with self._cond:
            return [a for a in self.acks if a.envelope_id == envelope_id]

    # ------------------------------------------------------------------ pushing
    def _target(self, connection: SocketConnection | None) -> SocketConnection:
        if connection is not None:
            return connection
        open_ = self.active()
        if not open_:
            raise ConnectionError("no open Socket Mode connection")
        return open_[-1]

    def send_envelope(self, type: str, payload: dict[str, Any], *,  # noqa: A002 - Slack's field name
                      accepts_response_payload: bool | None = None, retry_attempt: int = 0, retry_reason: str = "",
                      envelope_id: str | None = None, connection: SocketConnection | None = None) -> str:
        """Push one envelope to the newest open connection (or `connection`); returns its envelope_id.

        `accepts_response_payload` defaults to Slack's choice: true for slash commands, view
        submissions and block suggestions. Events API envelopes carry `retry_attempt` / `retry_reason`.
        """
        if type not in ENVELOPE_TYPES:
            raise ValueError(f"envelope type must be one of {ENVELOPE_TYPES}, not {type!r}")
        if accepts_response_payload is None:
            accepts_response_payload = type == "slash_commands" or (
                type == "interactive" and payload.get("type") in RESPONSE_PAYLOAD_TYPES)
        envelope_id = envelope_id or str(uuid.uuid4())
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "payload": payload, "type": type,
                                    "accepts_response_payload": accepts_response_payload}
        if type == "events_api":
            envelope.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        conn = self._target(connection)
        with self._cond:
            self._sent_at[envelope_id] = time.monotonic()
            self.envelopes.append(envelope)
        conn.send_json(envelope)
        return envelope_id

    def disconnect(self, reason: str = "refresh_requested", connection: SocketConnection | None = None) -> None:
        """Slack's `disconnect` message (warning / refresh_requested / link_disabled): the client reconnects."""
        self._target(connection).send_json({"type": "disconnect", "reason": reason,
                                            "debug_info": {"host": f"applink-sim-{self.port}"}})

    def close(self, code: int = 1001, reason: str = "", connection: SocketConnection | None = None) -> None:
        self._target(connection).close(code, reason)

    # ------------------------------------------------------------------ internals
    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            thread = threading.Thread(target=self._handle, args=(sock,), name=f"slack-socket-conn-{self.port}",
                                      daemon=True)
            with self._cond:
                self._conn_threads = [t for t in self._conn_threads if t.is_alive()] + [thread]
            thread.start()

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(5.0)
        try:
            head, rest = self._read_handshake(sock)
            ticket, answer = self._check_handshake(head)
        except (OSError, ValueError) as exc:
            logger.debug("Socket Mode handshake failed: %s", exc)
            sock.close()
            return
        if not answer.startswith(b"HTTP/1.1 101 "):
            with self._cond:
                self.rejected_handshakes += 1
                self._cond.notify_all()
            try:
                sock.sendall(answer)
            except OSError:
                pass
            sock.close()
            return
        with self._cond:
            if self._stopping.is_set():
                sock.close()
                return
            try:
                sock.sendall(answer)
            except OSError:
                sock.close()
                return
            conn = SocketConnection(next(self._ids), sock, ticket, time.monotonic(), self, _buffer=rest)
            self.connections.append(conn)
            count = sum(1 for c in self.connections if c.is_open)
            self._cond.notify_all()
        sock.settimeout(None)
        try:
            conn.send_json({"type": "hello", "num_connections": count,
                            "debug_info": {"host": f"applink-sim-{self.port}", "build_number": 1,
                                           "approximate_connection_time": 18060},
                            "connection_info": {"app_id": self.app_id}})
        except (ConnectionError, OSError):
            pass
        logger.info("Socket Mode connection %s opened", conn.id)
        conn._serve()

    @staticmethod
    def _read_handshake(sock: socket.socket) -> tuple[bytes, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ValueError("connection closed during the handshake")
            data += chunk
            if len(data) > MAX_HANDSHAKE:
                raise ValueError("handshake too large")
        head, rest = data.split(b"\r\n\r\n", 1)
        return head, rest

    def _check_handshake(self, head: bytes) -> tuple[str, bytes]:
        """(ticket, the answer): `101 Switching Protocols` for a good upgrade request, else an HTTP error."""
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/1."):
            return "", _http(400, "Bad Request")
        url = urlsplit(parts[1])
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        if url.path != "/link":
            return ticket, _http(404, "Not Found")
        if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in {
                t.strip().lower() for t in headers.get("connection", "").split(",")}:
            return ticket, _http(400, "Bad Request")
        if headers.get("sec-websocket-version") != "13":
            return ticket, _http(426, "Upgrade Required", {"Sec-WebSocket-Version": "13"})
        key = headers.get("sec-websocket-key", "")
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid_key = False
        if not valid_key:
            return ticket, _http(400, "Bad Request")
        with self._cond:
            if self._tickets.pop(ticket, None) is None:  # unknown or already used
                return ticket, _http(401, "Unauthorized")
        return ticket, ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode()

    def _received(self, conn: SocketConnection, message: dict[str, Any]) -> None:
        with self._cond:
            self.received.append(message)
            if isinstance(message, dict) and isinstance(message.get("envelope_id"), str):
                envelope_id = message["envelope_id"]
                now = time.monotonic()
                sent = self._sent_at.get(envelope_id)
                payload = message.get("payload")
                self.acks.append(Ack(envelope_id, payload if isinstance(payload, dict) else None, now, conn.id,
                                     message, None if sent is None else now - sent))
            self._cond.notify_all()

    def _closed(self, conn: SocketConnection) -> None:
        logger.info("Socket Mode connection %s closed (%s)", conn.id, conn.close_code)
        with self._cond:
            self._cond.notify_all()


def _http(status: int, reason: str, headers: dict[str, str] | None = None) -> bytes:
    body = f"{status} {reason}\n".encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n").encode() + body

