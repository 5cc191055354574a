"""Keep-alive HTTP for the Slack Web API.

slack_sdk's `WebClient` opens a new connection (and, against Slack, a new TLS session) for every
call. `KeepAliveWebClient` sends the same requests over pooled persistent connections instead:
everything above the transport (argument handling, retry handlers, errors) stays slack_sdk's own.
An idle connection is checked before reuse (a peer that closed it makes the socket readable) and
dropped after `IDLE_LIMIT`; a failed call never reuses its connection.
"""

from __future__ import annotations

import io
import os
import select
import threading
import time
from http.client import HTTPConnection, HTTPResponse, HTTPSConnection
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

IDLE_LIMIT = 20.0  # seconds; below common server keep-alive timeouts, so Slack rarely closes first
MAX_IDLE_PER_HOST = 64


class ConnectionPool:
    """Idle persistent connections per (scheme, host, port), most recently used first."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[tuple[float, HTTPConnection]]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str, int]) -> HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                since, conn = idle.pop()
            if time.monotonic() - since < IDLE_LIMIT and _still_open(conn):
                return conn
            conn.close()

    def give(self, key: tuple[str, str, int], conn: HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < MAX_IDLE_PER_HOST:
                idle.append((time.monotonic(), conn))
                return
        conn.close()

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


def _still_open(conn: HTTPConnection) -> bool:
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


class KeepAliveWebClient(WebClient):
    """A `WebClient` whose requests travel over pooled keep-alive connections (proxies: stock path)."""

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_urllib_http_request_internal(url, req)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port)
        conn = POOL.take(key)
        if conn is None:
            if parts.scheme == "https":
                conn = HTTPSConnection(parts.hostname, port, timeout=self.timeout, context=self.ssl)
            else:
                conn = HTTPConnection(parts.hostname, port, timeout=self.timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("POST", path, body=req.data, headers=dict(req.header_items()))
            resp: HTTPResponse = conn.getresponse()
            body = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            POOL.give(key, conn)
        if resp.status >= 400:  # the shape urllib gives slack_sdk's error and retry handling
            raise HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(body))
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.status, "headers": resp.headers, "body": body}
        charset = resp.headers.get_content_charset() or "utf-8"
        return {"status": resp.status, "headers": resp.headers, "body": body.decode(charset)}
