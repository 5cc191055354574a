"""The keep-alive transport under slack_sdk (bot/slack_http.py), against the loopback Slack fake and
bare socket servers: connections are reused, a connection the server closed is never used again,
the response framings HTTP/1.1 allows are read (Content-Length, chunked, ended by close, interim
1xx), and errors keep the shapes slack_sdk's retry handlers and askdesk's error handling rely on."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.client import HTTPException, IncompleteRead, RemoteDisconnected
from pathlib import Path
from types import SimpleNamespace
from urllib.request import Request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.slack.client import build_client, slack_error
from bot.slack.http import POOL, KeepAliveWebClient, _host_header
from slacksim.simulator import SlackSimulator


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


def test_a_connection_the_server_closed_is_not_reused() -> None:
    POOL.clear()
    # each answer is a keep-alive response after which the server closes the connection anyway: the
    # way a server whose idle timeout has passed leaves a pooled connection behind
    server = ScriptedServer(*[(answer(), True)] * 3)
    try:
        # no retry handlers at all: a stale connection must be noticed before sending, not retried
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
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


# ---------------------------------------------------------------------------------------------------
# A scripted server: each request gets the next scripted answer, byte for byte.

OK_JSON = b'{"ok": true, "ts": "1.0", "channel": "C0FINANCE"}'


def answer(body: bytes = OK_JSON, *, head: bytes = b"HTTP/1.1 200 OK", headers: bytes = b"",
           length: bool = True) -> bytes:
    """A raw response: status line, a JSON Content-Type, Content-Length (unless `length` is off)."""
    lines = head + b"\r\nContent-Type: application/json; charset=utf-8\r\n" + headers
    if length:
        lines += b"Content-Length: %d\r\n" % len(body)
    return lines + b"\r\n" + body


def chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"


class ScriptedServer:
    """Serves keep-alive connections; the n-th request (on any connection) gets the n-th answer: the
    raw bytes (a list: pieces sent a moment apart, so the client reads them separately), whether to
    close the connection afterwards; `None` bytes: never answer. Past the script: close at once."""

    def __init__(self, *script: tuple[bytes | list[bytes] | None, bool], tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released after each connection is closed
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def url(self, host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/api/"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                with self._lock:
                    self.requests.append(head + b"\r\n\r\n" + buf[:length])
                    raw, close = self.script.pop(0) if self.script else (b"", True)
                buf = buf[length:]
                if raw is None:  # hang: the client's timeout has to end the call
                    conn.recv(1)
                    return
                for i, piece in enumerate(raw if isinstance(raw, list) else [raw]):
                    if i:
                        time.sleep(0.02)
                    conn.sendall(piece)
                if close:
                    return
        except OSError:
            return
        finally:
            conn.close()
            self.closed.release()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pool() -> Iterator[None]:
    POOL.clear()
    yield
    POOL.clear()


def pooled(server: ScriptedServer, scheme: str = "http", host: str = "127.0.0.1") -> int:
    return POOL.idle((scheme, host, server.port))


def test_requests_are_what_http_client_sent(pool: None) -> None:
    server = ScriptedServer((answer(), False), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        assert client.api_call("chat.postMessage", params={"channel": "C0FINANCE", "text": "hé & co"})["ok"]
        assert client.api_call("chat.postMessage?x=1", json={"channel": "C0FINANCE", "text": "j"})["ok"]
        assert server.connections == 1
        form, as_json = server.requests
        head, _, body = form.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        assert lines[0] == b"POST /api/chat.postMessage HTTP/1.1"
        fields = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
        assert fields[b"host"] == b"127.0.0.1:%d" % server.port
        assert fields[b"accept-encoding"] == b"identity"
        assert fields[b"authorization"] == b"Bearer xoxb-t"
        assert fields[b"content-type"] == b"application/x-www-form-urlencoded"
        assert int(fields[b"content-length"]) == len(body) and b"text=h%C3%A9+%26+co" in body
        head, _, body = as_json.partition(b"\r\n\r\n")
        assert head.startswith(b"POST /api/chat.postMessage?x=1 HTTP/1.1\r\n")
        assert json.loads(body) == {"channel": "C0FINANCE", "text": "j"}
    finally:
        server.close()


@pytest.mark.parametrize("scheme, host, port, header", [
    ("https", "slack.com", 443, "slack.com"), ("http", "127.0.0.1", 8080, "127.0.0.1:8080"),
    ("http", "::1", 80, "[::1]"), ("https", "bücher.example", 443, "xn--bcher-kva.example"),
])
def test_the_host_header_is_http_clients(scheme: str, host: str, port: int, header: str) -> None:
    assert _host_header(scheme, host, port) == header


def test_header_injection_is_refused(pool: None) -> None:
    server = ScriptedServer()
    try:
        client = KeepAliveWebClient(token="xoxb-t\r\nX-Evil: 1", base_url=server.url(), retry_handlers=[])
        with pytest.raises(ValueError):
            client.chat_postMessage(channel="C0FINANCE", text="x")
        assert server.connections == 0  # refused before connecting
    finally:
        server.close()


@pytest.mark.parametrize("size", [7, 65536])
def test_a_chunked_body_is_decoded_and_the_connection_kept(pool: None, size: int) -> None:
    payload = json.dumps({"ok": True, "blob": "x" * 300_000, "name": "café"}).encode()
    raw = answer(chunked(payload, size), headers=b"Transfer-Encoding: chunked\r\n", length=False)
    small = answer(chunked(OK_JSON, 7), headers=b"Transfer-Encoding: chunked\r\n", length=False)
    server = ScriptedServer(([small[:40], small[40:90], small[90:]], False), (raw, False), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        assert client.chat_postMessage(channel="C0FINANCE", text="a")["ts"] == "1.0"
        big = client.chat_postMessage(channel="C0FINANCE", text="b")
        assert len(big["blob"]) == 300_000 and big["name"] == "café"
        assert "X-Trailer" not in big.headers  # trailers are not headers
        assert client.chat_postMessage(channel="C0FINANCE", text="c")["ok"]  # nothing left over on the stream
        assert server.connections == 1 and pooled(server) == 1
    finally:
        server.close()


def test_a_large_body_with_content_length(pool: None) -> None:
    payload = json.dumps({"ok": True, "blob": "y" * 300_000}).encode()
    server = ScriptedServer((answer(payload), False), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        assert len(client.chat_postMessage(channel="C0FINANCE", text="z" * 300_000)["blob"]) == 300_000
        assert len(server.requests[0]) > 300_000  # and a large request went out whole
        assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
        assert server.connections == 1
    finally:
        server.close()


@pytest.mark.parametrize("raw", [
    answer(headers=b"Connection: close\r\n"),
    answer(head=b"HTTP/1.0 200 OK"),
    answer(length=False),  # ends at close
    answer(headers=b"Transfer-Encoding: identity\r\n", length=False),  # ends at close
    [answer(length=False)[:60], answer(length=False)[60:]],
    answer() + answer(),  # more than was asked for: used, then the connection is dropped
], ids=["connection-close", "http-1.0", "ends-at-close", "te-identity", "ends-at-close-in-pieces", "extra"])
def test_a_response_that_ends_the_connection_is_read_and_not_pooled(pool: None, raw: bytes | list[bytes]) -> None:
    server = ScriptedServer((raw, True), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        first = client.chat_postMessage(channel="C0FINANCE", text="a")
        assert first.data == json.loads(OK_JSON)
        assert pooled(server) == 0
        assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
        assert server.connections == 2 and pooled(server) == 1
    finally:
        server.close()


def test_interim_responses_are_skipped(pool: None) -> None:
    server = ScriptedServer(([b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                              + answer(headers=b"X-Final: yes\r\n")], False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        response = client.chat_postMessage(channel="C0FINANCE", text="a")
        assert response.status_code == 200 and response["ok"]
        assert response.headers["X-Final"] == "yes" and "Link" not in response.headers
        assert pooled(server) == 1
    finally:
        server.close()


def test_headers_charset_and_gzip(pool: None) -> None:
    latin = '{"ok": true, "name": "café"}'.encode("latin-1")
    gz = b"\x1f\x8b\x08\x00binary"
    server = ScriptedServer(
        (answer(latin, headers=b"X-Slack-Req-Id: abc\r\nx-lower-case: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n")
         .replace(b"charset=utf-8", b'charset="ISO-8859-1"'), False),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(gz), gz),
         False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        response = client.chat_postMessage(channel="C0FINANCE", text="a")
        assert response["name"] == "café"
        assert response.headers["X-Slack-Req-Id"] == "abc" and response.headers["x-lower-case"] == "1"
        assert response.headers["Set-Cookie"] == "a=1"  # the first, as dict(HTTPMessage) gives it
        raw = client._perform_urllib_http_request_internal(server.url() + "admin.analytics.getFile",
                                                           Request(server.url(), data=b"", method="POST"))
        assert raw["status"] == 200 and raw["body"] == gz
    finally:
        server.close()


def test_an_error_status_keeps_urllibs_shape(pool: None) -> None:
    body = b'{"ok": false, "error": "invalid_auth"}'
    server = ScriptedServer((answer(body, head=b"HTTP/1.1 401 Unauthorized", headers=b"X-Custom-Thing: 7\r\n"),
                             False), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        with pytest.raises(SlackApiError) as failed:
            client.chat_postMessage(channel="C0FINANCE", text="a")
        assert failed.value.response.status_code == 401
        assert failed.value.response["error"] == "invalid_auth"
        assert failed.value.response.headers["X-Custom-Thing"] == "7"
        assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
        assert server.connections == 1  # an error status does not cost the connection
    finally:
        server.close()


def test_a_429_is_retried_after_retry_after(simulator: SlackSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    client = KeepAliveWebClient(token="xoxb-t", base_url=simulator.base_url,
                                retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
    simulator.rate_limit_next("chat.postMessage", retry_after=7)
    assert client.chat_postMessage(channel="C0FINANCE", text="after the limit")["ok"]
    assert [c.status for c in simulator.calls_to("chat.postMessage")] == [429, 200]
    assert len(slept) == 1 and 7 <= slept[0] < 8
    assert simulator.connections == 1


@pytest.mark.parametrize("raw, error", [
    (b"", RemoteDisconnected),  # closed before answering: retried by the connection-error handler
    (b"HTTP/1.1 200 OK\r\nContent-", RemoteDisconnected),
    (answer()[:-5], IncompleteRead),
    (answer(chunked(OK_JSON, 9), headers=b"Transfer-Encoding: chunked\r\n", length=False)[:-20], IncompleteRead),
    (b"garbage\r\n\r\n", HTTPException),
], ids=["nothing", "half-head", "short-body", "short-chunked", "garbage"])
def test_a_broken_response_fails_the_call_and_drops_the_connection(
        pool: None, raw: bytes, error: type[Exception]) -> None:
    server = ScriptedServer((raw, True), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        with pytest.raises(error):
            client.chat_postMessage(channel="C0FINANCE", text="a")
        assert pooled(server) == 0
        assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
        assert server.connections == 2
    finally:
        server.close()


def test_a_connection_closed_unanswered_is_retried_on_a_new_one(pool: None) -> None:
    server = ScriptedServer((b"", True), (answer(), False))
    try:
        assert build_client("xoxb-t", server.url()).chat_postMessage(channel="C0FINANCE", text="a")["ok"]
        assert server.connections == 2 and len(server.requests) == 2
    finally:
        server.close()


def test_a_timeout_fails_the_call_and_drops_the_connection(pool: None) -> None:
    server = ScriptedServer((answer(), False), (None, False), (answer(), False))
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[])
        assert client.chat_postMessage(channel="C0FINANCE", text="a")["ok"]
        quick = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), retry_handlers=[], timeout=0.3)  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            quick.chat_postMessage(channel="C0FINANCE", text="b")  # on the connection `client` opened
        assert time.monotonic() - started < 5
        assert pooled(server) == 0
        assert client.chat_postMessage(channel="C0FINANCE", text="c")["ok"]
        assert POOL._idle[("http", "127.0.0.1", server.port)][0][1].sock.gettimeout() == client.timeout
    finally:
        server.close()


def test_a_proxy_takes_slack_sdks_own_path(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def stock(self: WebClient, url: str, req: Request) -> dict[str, object]:
        seen.append(url)
        return {"status": 200, "headers": {}, "body": '{"ok": true}'}

    monkeypatch.setattr(WebClient, "_perform_urllib_http_request_internal", stock)
    client = KeepAliveWebClient(token="xoxb-t", base_url="http://127.0.0.1:9/api/", proxy="http://proxy:3128",
                                retry_handlers=[])
    assert client.chat_postMessage(channel="C0FINANCE", text="a")["ok"]
    assert seen == ["http://127.0.0.1:9/api/chat.postMessage"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    return cert, key


def test_https_verifies_the_server_by_name_and_reuses_the_session(pool: None, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    server = ScriptedServer((answer(), False), (answer(), False), (answer(), False), tls=server_context)
    try:
        client = KeepAliveWebClient(token="xoxb-t", base_url=server.url("localhost"), retry_handlers=[],
                                    ssl=ssl.create_default_context(cafile=str(cert)))
        assert client.chat_postMessage(channel="C0FINANCE", text="a")["ok"]
        assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
        assert server.connections == 1 and names == ["localhost"]
        assert pooled(server, "https", "localhost") == 1
        head = server.requests[0].split(b"\r\n")
        assert b"Host: localhost:%d" % server.port in head
        # a server whose certificate does not name the host is refused
        untrusted = KeepAliveWebClient(token="xoxb-t", base_url=server.url("127.0.0.1"), retry_handlers=[],
                                       ssl=ssl.create_default_context(cafile=str(cert)))
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.chat_postMessage(channel="C0FINANCE", text="c")
    finally:
        server.close()
