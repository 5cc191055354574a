"""Keep-alive HTTP for the Slack Web API.

slack_sdk's `WebClient` opens a new connection (and, against Slack, a new TLS session) for every
call. `KeepAliveWebClient` sends the same requests over pooled persistent connections instead:
everything above the transport (argument handling, retry handlers, errors) stays slack_sdk's own.
An idle connection is checked before reuse (a peer that closed it makes the socket readable) and
dropped after `IDLE_LIMIT`; a failed call never reuses its connection.

The transport itself is deliberately small, because at hundreds of calls per second its CPU cost
matters: each request (head and body) goes out in one `sendall` on a plain (or TLS) socket, and
the response is read with `recv_into` and fed to httptools' C parser (llhttp), which handles
Content-Length, chunked bodies and keep-alive rules, instead of `http.client` (whose header
parsing goes through the `email` package). A response delimited by the server closing the
connection is accepted, interim 1xx responses are skipped, and the shapes handed to slack_sdk are
urllib's: `{"status", "headers", "body"}` for a success (headers as a plain dict, names as sent),
`urllib.error.HTTPError` with an `http.client.HTTPMessage` for a status >= 400. A connection lost
before a response raises `http.client.RemoteDisconnected` (a `ConnectionResetError`), one lost in
the middle of a body `http.client.IncompleteRead`, as `http.client` would; an unparsable response
raises `http.client.HTTPException`.
"""

from __future__ import annotations

import functools
import io
import os
import re
import select
import socket
import ssl
import threading
import time
from http.client import HTTPException, HTTPMessage, IncompleteRead, InvalidURL, RemoteDisconnected
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser
from slack_sdk import WebClient

IDLE_LIMIT = 20.0  # seconds; below common server keep-alive timeouts, so Slack rarely closes first
MAX_IDLE_PER_HOST = 64
RECV_SIZE = 16384  # per-connection receive buffer (Web API answers are a few KB; larger ones take more reads)

_DISALLOWED_PATH_CHAR = re.compile("[^\x21-\x7e]").search  # what http.client refuses, plus non-ASCII
_default_ssl: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    """What `HTTPSConnection` builds for each connection when given no context, built once."""
    global _default_ssl
    if _default_ssl is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])
        if context.post_handshake_auth is not None:
            context.post_handshake_auth = True
        _default_ssl = context
    return _default_ssl


class _Response:
    """httptools parser callbacks, collecting the response to one request on a connection."""

    __slots__ = ("parser", "status", "reason", "headers", "body", "complete", "keep_alive", "extra", "_fields")

    def __init__(self) -> None:
        self.parser: HttpResponseParser | None = None
        self.start()

    def start(self) -> None:
        self.status = 0  # set once the head is complete
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.extra = False
        self._fields: list[tuple[bytes, bytes]] = []

    def on_message_begin(self) -> None:
        if self.complete:  # the server sent more than the one response asked for: stop parsing there
            self.extra = True
            raise HttpParserError("data after the response")

    def on_status(self, reason: bytes) -> None:
        self.reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers, self._fields = self._fields, []  # later fields are chunked trailers: dropped
        self.status = self.parser.get_status_code()  # type: ignore[union-attr]

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # interim (100 Continue, 103 Early Hints): the answer follows
            self.start()
            return
        # asked here: once the callback returns, llhttp resets the flags this reads
        self.keep_alive = self.parser.should_keep_alive()  # type: ignore[union-attr]
        self.complete = True

    def ended_by_close(self) -> None:
        """The server closed the connection: that ends a body sent without Content-Length or chunking
        (HTTP/1.0 style); anything else is an incomplete response."""
        if not self.status:
            raise RemoteDisconnected("Remote end closed connection without response")
        for name, value in self.headers:
            name = name.lower()
            if name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
                raise IncompleteRead(b"".join(self.body))
        self.complete = True
        self.keep_alive = False


class _Connection:
    """A persistent socket to one (scheme, host, port), used by one call at a time."""

    __slots__ = ("sock", "timeout", "buffer", "view", "response", "parser")

    def __init__(self, sock: socket.socket, timeout: float | None) -> None:
        self.sock: socket.socket | None = sock
        self.timeout = timeout
        self.buffer = bytearray(RECV_SIZE)
        self.view = memoryview(self.buffer)
        self.response = _Response()
        self.parser = HttpResponseParser(self.response)  # one parser for the connection's responses
        self.response.parser = self.parser

    def exchange(self, request: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes, bool]:
        """Send a request, read its response: (status, reason, headers, body, connection reusable)."""
        sock = self.sock
        if sock is None:
            raise ConnectionError("connection already closed")
        response, parser, view = self.response, self.parser, self.view
        response.start()
        sock.sendall(request)
        while not response.complete:
            n = sock.recv_into(self.buffer)
            if not n:
                response.ended_by_close()
                break
            try:
                parser.feed_data(view[:n])
            except (HttpParserError, HttpParserUpgrade) as exc:
                if not response.complete:
                    raise HTTPException(f"invalid HTTP response: {exc}") from exc
                response.extra = True  # junk after a complete response: answer it, drop the connection
        chunks = response.body
        result = (response.status, response.reason, response.headers,
                  chunks[0] if len(chunks) == 1 else b"".join(chunks), response.keep_alive and not response.extra)
        response.body = []  # an idle connection keeps no body alive
        return result

    def close(self) -> None:
        sock, self.sock = self.sock, None
        self.response.parser = None  # break the parser <-> callbacks cycle
        if sock is not None:
            sock.close()


class ConnectionPool:
    """Idle persistent connections per (scheme, host, port), most recently used first."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[tuple[float, _Connection]]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str, int]) -> _Connection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                since, conn = idle.pop()
            if time.monotonic() - since < IDLE_LIMIT and _still_open(conn):
                return conn
            conn.close()

    def give(self, key: tuple[str, str, int], conn: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append((time.monotonic(), conn))
                return
        conn.close()

    def idle(self, key: tuple[str, str, int]) -> int:
        """How many idle connections to (scheme, host, port) the pool holds."""
        with self._lock:
            return len(self._idle.get(key, ()))

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's connections without touching its lock (another
        thread may have held it at the fork). Closing the child's copies of the sockets leaves the
        parent's connections open (no shutdown, no TLS close_notify)."""
        self._lock = threading.Lock()
        inherited, self._idle = self._idle, {}
        for idle in inherited.values():
            for _, conn in idle:
                conn.close()

    def clear(self) -> None:
        with self._lock:
            conns = [conn for idle in self._idle.values() for _, conn in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()


def _still_open(conn: _Connection) -> bool:
    """An idle keep-alive socket is readable only when the server closed it (or broke protocol)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


POOL = ConnectionPool()
# A forked worker must never share a parent's socket (two processes would interleave on one stream).
os.register_at_fork(after_in_child=POOL.forget_after_fork)


def _connect(scheme: str, host: str, port: int, timeout: float | None,
             context: ssl.SSLContext | None) -> _Connection:
    """A new connection, as `HTTPConnection` / `HTTPSConnection` would open it (TCP_NODELAY, SNI)."""
    sock = socket.create_connection((host, port), timeout)
    try:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not every OS has TCP_NODELAY
        if scheme == "https":
            sock = (context or _default_ssl_context()).wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise
    return _Connection(sock, timeout)


@functools.lru_cache(maxsize=64)
def _host_header(scheme: str, host: str, port: int) -> str:
    """The Host header `HTTPConnection` sends: the port only when not the scheme's default."""
    try:
        value = host.encode("ascii").decode()
    except UnicodeEncodeError:
        value = host.encode("idna").decode()
    if ":" in value:  # IPv6 literal
        value = f"[{value}]"
    return value if port == (443 if scheme == "https" else 80) else f"{value}:{port}"


def _request_bytes(host_header: str, path: str, req: Request, body: bytes) -> bytes:
    """The request head and body, as `HTTPConnection.request("POST", ...)` would write them."""
    if _DISALLOWED_PATH_CHAR(path):
        raise InvalidURL(f"URL can't contain control characters. {path!r}")
    headers = req.headers  # urllib capitalizes names: "Content-length", "Accept-encoding"
    lines = [f"POST {path} HTTP/1.1"]
    if "Host" not in headers and "Host" not in req.unredirected_hdrs:
        lines.append(f"Host: {host_header}")
    if "Accept-encoding" not in headers and "Accept-encoding" not in req.unredirected_hdrs:
        lines.append("Accept-Encoding: identity")  # no compressed bodies: they are not decoded here
    if "Content-length" not in headers and "Content-length" not in req.unredirected_hdrs:
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(f"{name}: {value}" for name, value in req.header_items())
    head = "\r\n".join(lines)
    # a CR or LF inside a name or value would smuggle in another header line (http.client refuses it)
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise ValueError("Invalid header name or value (contains CR or LF)")
    return (head + "\r\n\r\n").encode("latin-1") + body


@functools.lru_cache(maxsize=64)
def _content_type(value: str | None) -> tuple[str, str | None]:
    """`HTTPMessage.get_content_type()` and `.get_content_charset()` of a Content-Type value."""
    if value is None:
        return "text/plain", None
    main, *params = value.split(";")
    ctype = main.strip().lower()
    if ctype.count("/") != 1:
        ctype = "text/plain"
    for param in params:
        name, sep, charset = param.partition("=")
        if sep and name.strip().lower() == "charset":
            return ctype, charset.strip().strip('"').lower() or None
    return ctype, None


def _http_message(raw_headers: list[tuple[bytes, bytes]]) -> HTTPMessage:
    """The headers as `http.client` gives them (error path only: slack_sdk reads them from HTTPError)."""
    message = HTTPMessage()
    for name, value in raw_headers:
        message[name.decode("latin-1")] = value.decode("latin-1")  # appends; duplicates are kept
    return message


class KeepAliveWebClient(WebClient):
    """A `WebClient` whose requests travel over pooled keep-alive connections (proxies: stock path)."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        scheme, host, body = parts.scheme, parts.hostname, req.data
        if (self.proxy is not None or scheme not in ("http", "https") or not host
                or not (body is None or isinstance(body, bytes | bytearray))):
            return super()._perform_urllib_http_request_internal(url, req)
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        request = _request_bytes(_host_header(scheme, host, port), path, req, bytes(body or b""))
        key = (scheme, host, port)
        timeout = self.timeout
        conn = POOL.take(key)
        if conn is None:
            conn = _connect(scheme, host, port, timeout, self.ssl)
        try:
            if conn.timeout != timeout:  # pooled by a client with another timeout
                conn.sock.settimeout(timeout)  # type: ignore[union-attr]
                conn.timeout = timeout
            status, reason, raw_headers, content, reusable = conn.exchange(request)
        except BaseException:
            conn.close()
            raise
        if reusable:
            POOL.give(key, conn)
        else:
            conn.close()
        if status >= 400:  # the shape urllib gives slack_sdk's error and retry handling
            raise HTTPError(url, status, reason.decode("latin-1").strip(), _http_message(raw_headers),
                            io.BytesIO(content))
        headers: dict[str, str] = {}
        content_type = None
        for raw_name, raw_value in raw_headers:
            name = raw_name.decode("latin-1")
            if name not in headers:  # the first of repeated fields, like dict(HTTPMessage)
                headers[name] = raw_value.decode("latin-1")
                if content_type is None and len(name) == 12 and name.lower() == "content-type":
                    content_type = headers[name]
        ctype, charset = _content_type(content_type)
        if ctype == "application/gzip":
            return {"status": status, "headers": headers, "body": content}
        return {"status": status, "headers": headers, "body": content.decode(charset or "utf-8")}
