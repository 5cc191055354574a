"""The keep-alive transport under slack_sdk (bot/slack_http.py), against the loopback Slack fake and
a bare socket server: connections are reused, a connection the server closed is never used again,
and errors keep the shapes slack_sdk's retry handlers and askdesk's error handling rely on."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.simulator import SlackSimulator
from bot.slack import build_client, slack_error
from bot.slack_http import POOL, KeepAliveWebClient


@pytest.fixture
def simulator() -> Iterator[SlackSimulator]:
    POOL.clear()
    with SlackSimulator() as sim:
        sim.add_channel("C0FINANCE", name="finance", members=["UBOT"])
        yield sim
    POOL.clear()


def test_calls_share_connections_where_the_stock_client_opens_one_each(simulator: SlackSimulator) -> None:
    stock = WebClient(token="xoxb-t", base_url=simulator.base_url)
    for i in range(10):
        stock.chat_postMessage(channel="C0FINANCE", text=f"stock {i}")
    assert simulator.connections == 10

    client = build_client("xoxb-t", simulator.base_url)
    assert isinstance(client, KeepAliveWebClient)
    before = simulator.connections
    threads = [threading.Thread(target=lambda n=n: [client.chat_postMessage(channel="C0FINANCE", text=f"{n}-{i}")
                                                    for i in range(10)]) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(simulator.messages("C0FINANCE")) == 50  # every message arrived, none twice
    assert simulator.connections - before <= 4  # at most one connection per concurrent caller


def test_errors_keep_slack_sdks_shapes(simulator: SlackSimulator) -> None:
    client = build_client("xoxb-t", simulator.base_url)
    simulator.fail_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C0FINANCE", text="x")
    assert slack_error(failed.value) == "channel_not_found"
    # a 5xx and a reset connection are retried by the handlers, over a fresh connection
    simulator.http_error_next("chat.postMessage", status=503)
    simulator.reset_connection_next("chat.postMessage")
    assert client.chat_postMessage(channel="C0FINANCE", text="after faults")["ok"]
    assert [c.status for c in simulator.calls_to("chat.postMessage")][-3:] == [503, 0, 200]
    # a 429 keeps its Retry-After for the rate-limit handler (and, past it, for the outbox)
    send = build_client("xoxb-t", simulator.base_url, safe_retries_only=True)
    simulator.rate_limit_next("chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as limited:
        send.chat_postMessage(channel="C0FINANCE", text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers.get("Retry-After") in ("30", ["30"])
    assert len(simulator.messages("C0FINANCE")) == 1  # only the call that succeeded posted


class OneShotServer:
    """Answers one HTTP request per connection with a keep-alive response, then closes it — the way a
    server whose idle timeout has passed leaves a pooled connection behind."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released after each connection is closed
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/api/"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                payload = b'{"ok": true, "ts": "1.0", "channel": "C0FINANCE"}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
            self.closed.release()

    def close(self) -> None:
        self.sock.close()


def test_a_connection_the_server_closed_is_not_reused() -> None:
    POOL.clear()
    server = OneShotServer()
    try:
        # no retry handlers at all: a stale connection must be noticed before sending, not retried
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url, retry_handlers=[])
        for i in range(3):
            assert client.chat_postMessage(channel="C0FINANCE", text=f"m{i}")["ok"]
            assert server.closed.acquire(timeout=5)  # the pooled connection is now dead on the server side
        assert server.connections == 3
    finally:
        server.close()
        POOL.clear()


def test_a_forked_worker_does_not_inherit_pooled_connections(simulator: SlackSimulator) -> None:
    import os

    client = build_client("xoxb-t", simulator.base_url)
    client.chat_postMessage(channel="C0FINANCE", text="parent, before the fork")
    key = ("http", "127.0.0.1", simulator.port)
    assert POOL._idle.get(key)  # the parent keeps one idle connection
    pid = os.fork()
    if pid == 0:  # the child: an empty pool, and its own connection for its own call
        code = 0 if not POOL._idle.get(key) else 3
        try:
            client.chat_postMessage(channel="C0FINANCE", text="child")
        except Exception:  # noqa: BLE001
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.chat_postMessage(channel="C0FINANCE", text="parent, after")["ok"]  # its connection still works
    assert len(simulator.messages("C0FINANCE")) == 3
