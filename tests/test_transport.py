"""The keep-alive Slack transport (bot/slack/http.py: `WebClient.api_call` over urllib3's pools).

Connection reuse is counted where it shows, on the server: the TCP connections the loopback Slack
simulator or a small scripted server accepted. The rest checks that callers see what slack_sdk's
stock client gives them: the same requests, `SlackResponse` / `SlackApiError`, retry handlers run
for 429, 5xx and lost connections, and builtin network exceptions."""

from __future__ import annotations

import inspect
import json
import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers, handler
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler

from bot.slack.client import ShortRateLimitRetryHandler, build_client, slack_error
from bot.slack.http import KeepAliveWebClient
from slacksim.simulator import SlackSimulator


@pytest.fixture
def simulator() -> Iterator[SlackSimulator]:
    with SlackSimulator() as sim:
        sim.add_channel("C0FINANCE", name="finance", members=["UBOT"])
        yield sim


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The retry handlers' sleeps, recorded instead of slept (only their modules' `time` is replaced)."""
    sleeps: list[float] = []
    fake = SimpleNamespace(sleep=sleeps.append)
    monkeypatch.setattr(builtin_handlers, "time", fake)
    monkeypatch.setattr(handler, "time", fake)
    return sleeps


def test_api_call_keeps_webclients_signature() -> None:
    """Every Web API method calls `api_call`; a new argument in slack_sdk must not be dropped silently."""
    def shape(fn: object) -> list[tuple[str, object, object]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]  # type: ignore[arg-type]
    assert shape(KeepAliveWebClient.api_call) == shape(WebClient.api_call)


def test_calls_share_connections_where_the_stock_client_opens_one_each(simulator: SlackSimulator) -> None:
    stock = WebClient(token="xoxb-t", base_url=simulator.base_url)
    for i in range(10):
        stock.chat_postMessage(channel="C0FINANCE", text=f"stock {i}")
    assert simulator.connections == 10

    client = build_client("xoxb-t", simulator.base_url)
    before = simulator.connections
    threads = [threading.Thread(target=lambda n=n: [client.chat_postMessage(channel="C0FINANCE", text=f"{n}-{i}")
                                                    for i in range(10)]) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(simulator.messages("C0FINANCE")) == 50  # every message arrived, none twice
    assert simulator.connections - before <= 4  # at most one connection per concurrent caller


def test_errors_keep_slack_sdks_shapes(simulator: SlackSimulator, slept: list[float]) -> None:
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
    # a long 429 is left to the outbox by the safe client, with its Retry-After
    send = build_client("xoxb-t", simulator.base_url, safe_retries_only=True)
    simulator.rate_limit_next("chat.postMessage", retry_after=30)
    with pytest.raises(SlackApiError) as limited:
        send.chat_postMessage(channel="C0FINANCE", text="x")
    assert limited.value.response.status_code == 429 and limited.value.response.headers["Retry-After"] == "30"
    assert len(simulator.messages("C0FINANCE")) == 1  # only the call that succeeded posted


@pytest.mark.parametrize("retry_handler", [RateLimitErrorRetryHandler(max_retry_count=1),
                                           ShortRateLimitRetryHandler(max_wait=5)], ids=["builtin", "short"])
def test_a_429_is_retried_after_retry_after(simulator: SlackSimulator, slept: list[float],
                                            retry_handler: RateLimitErrorRetryHandler) -> None:
    client = KeepAliveWebClient(token="xoxb-t", base_url=simulator.base_url, retry_handlers=[retry_handler])
    simulator.rate_limit_next("chat.postMessage", retry_after=3)
    assert client.chat_postMessage(channel="C0FINANCE", text="after the limit")["ok"]
    assert [c.status for c in simulator.calls_to("chat.postMessage")] == [429, 200]
    assert len(slept) == 1 and 3 <= slept[0] < 4
    assert simulator.connections == 1  # a 429 does not cost the connection


def test_a_5xx_is_retried_as_often_as_the_handler_allows(simulator: SlackSimulator, slept: list[float]) -> None:
    client = KeepAliveWebClient(token="xoxb-t", base_url=simulator.base_url,
                                retry_handlers=[ServerErrorRetryHandler(max_retry_count=2)])
    simulator.http_error_next("chat.postMessage", status=500, count=2)
    assert client.chat_postMessage(channel="C0FINANCE", text="third time")["ok"]
    simulator.http_error_next("chat.postMessage", status=503, count=3)
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C0FINANCE", text="never")
    assert failed.value.response.status_code == 503 and slack_error(failed.value) == "service_unavailable"
    assert [c.status for c in simulator.calls_to("chat.postMessage")] == [500, 500, 200, 503, 503, 503]
    assert len(slept) == 4
    # the outbox's client retries no 5xx in place: the post may have gone through
    simulator.http_error_next("chat.postMessage", status=500)
    with pytest.raises(SlackApiError):
        build_client("xoxb-t", simulator.base_url, safe_retries_only=True).chat_postMessage(channel="C0FINANCE",
                                                                                           text="once")
    assert len(simulator.calls_to("chat.postMessage")) == 7


# ---------------------------------------------------------------------------------------------------
# A scripted server: each request gets the next scripted answer, byte for byte.

OK_JSON = b'{"ok": true, "ts": "1.0", "channel": "C0FINANCE"}'


def answer(body: bytes = OK_JSON, *, status: bytes = b"200 OK", headers: bytes = b"",
           ctype: bytes = b"application/json; charset=utf-8") -> bytes:
    return (b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s"
            % (status, ctype, len(body), headers, body))


class ScriptedServer:
    """Serves keep-alive connections; the n-th request (on any connection) gets the n-th answer:
    (raw bytes, close the connection afterwards); `None` bytes: never answer. Past the script: close."""

    def __init__(self, *script: tuple[bytes | None, bool], tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0  # TCP connections accepted
        self.closed = threading.Semaphore(0)  # released after each connection is closed
        self._lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

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
                conn.sendall(raw)
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
def serve() -> Iterator[type[ScriptedServer]]:
    servers: list[ScriptedServer] = []

    class Tracked(ScriptedServer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            servers.append(self)

    yield Tracked
    for server in servers:
        server.close()


def plain(base_url: str, **kwargs: object) -> KeepAliveWebClient:
    """A client without retry handlers: whatever works, works on the first attempt."""
    return KeepAliveWebClient(token="xoxb-t", base_url=base_url, retry_handlers=[], **kwargs)  # type: ignore[arg-type]


def fields_of(request: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    first, *lines = head.decode().split("\r\n")
    return first, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


def test_requests_carry_the_body_token_and_headers(serve: type[ScriptedServer]) -> None:
    server = serve(*[(answer(), False)] * 3)
    client = KeepAliveWebClient(token="xoxb-t", base_url=server.url(), team_id="T1", retry_handlers=[])
    assert client.api_call("users.info", params={"user": "U1", "include_locale": True, "skip": None})["ok"]
    assert client.chat_postMessage(channel="C0FINANCE", text="hé & co")["ok"]
    assert client.api_call("auth.test", params={"token": "xoxb-other"})["ok"]
    form, as_json, other = (fields_of(r) for r in server.requests)
    assert form[0] == "POST /api/users.info HTTP/1.1"
    assert form[1]["authorization"] == "Bearer xoxb-t" and "Python" in form[1]["user-agent"]
    assert form[1]["content-type"] == "application/x-www-form-urlencoded"
    # booleans as 1/0, no None, the client's team_id added
    assert dict(parse_qsl(form[2].decode())) == {"user": "U1", "include_locale": "1", "team_id": "T1"}
    assert as_json[1]["content-type"] == "application/json;charset=utf-8"
    assert json.loads(as_json[2]) == {"channel": "C0FINANCE", "text": "hé & co", "team_id": "T1"}
    assert other[1]["authorization"] == "Bearer xoxb-other" and b"token" not in other[2]
    assert server.connections == 1


def test_header_injection_is_refused(serve: type[ScriptedServer]) -> None:
    server = serve((answer(), False))
    with pytest.raises(ValueError):
        plain(server.url(), headers={"X-Note": "a\r\nX-Evil: 1"}).chat_postMessage(channel="C0FINANCE", text="x")
    assert server.requests == []


def test_error_statuses_and_odd_bodies(serve: type[ScriptedServer]) -> None:
    server = serve((answer(b'{"ok": false, "error": "invalid_auth"}', status=b"401 Unauthorized",
                           headers=b"X-Custom-Thing: 7\r\n"), False),
                   (answer(b"<html>Bad gateway</html>", status=b"502 Bad Gateway", ctype=b"text/html"), False),
                   (answer(b"\x1f\x8bgzip", ctype=b"application/gzip"), False))
    client = plain(server.url())
    with pytest.raises(SlackApiError) as failed:
        client.chat_postMessage(channel="C0FINANCE", text="a")
    assert failed.value.response.status_code == 401 and slack_error(failed.value) == "invalid_auth"
    assert failed.value.response.headers["X-Custom-Thing"] == "7"
    with pytest.raises(SlackApiError) as html:
        client.chat_postMessage(channel="C0FINANCE", text="b")
    assert html.value.response.status_code == 502 and "non-JSON" in html.value.response["error"]
    assert client.api_call("admin.analytics.getFile", params={"type": "member"}).data == b"\x1f\x8bgzip"
    assert server.connections == 1  # error statuses do not cost the connection


def client_fds(port: int) -> list[int]:
    """This process's descriptors of TCP connections to 127.0.0.1:port, found through /proc."""
    inodes = {fields[9] for fields in (line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:])
              if int(fields[2].split(":")[1], 16) == port}
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in {f"socket:[{inode}]" for inode in inodes}:
                found.append(int(fd))
        except OSError:
            continue
    return found


FD_ABOVE_1024 = """
import os, resource, sys
from bot.slack.http import KeepAliveWebClient
from tests.test_transport import client_fds

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < 2048:
    resource.setrlimit(resource.RLIMIT_NOFILE, (2048, hard))
while os.open(os.devnull, os.O_RDONLY) < 1100:  # each open takes the lowest free descriptor
    pass
client = KeepAliveWebClient(token="xoxb-t", base_url=sys.argv[1], retry_handlers=[])
for i in range(5):
    assert client.chat_postMessage(channel="C0FINANCE", text=f"m{i}")["ok"]
print(min(client_fds(int(sys.argv[2]))))
"""


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc to find the socket")
def test_keep_alive_works_on_descriptors_above_1024(serve: type[ScriptedServer]) -> None:
    """select() cannot watch a descriptor >= 1024 (FD_SETSIZE): the old transport then judged every
    idle connection dead and reconnected for each call. The client runs in a fresh process, where
    no other thread frees a low descriptor before its socket is made."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low")
    server = serve(*[(answer(), False)] * 5)
    child = subprocess.run([sys.executable, "-c", FD_ABOVE_1024, server.url(), str(server.port)],
                           cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) >= 1024  # the client's socket
    assert server.connections == 1 and len(server.requests) == 5


def test_a_connection_the_server_closed_is_replaced_transparently(serve: type[ScriptedServer]) -> None:
    # each answer is a keep-alive response after which the server closes the connection anyway: the
    # way a server whose idle timeout has passed leaves a pooled connection behind
    server = serve(*[(answer(), True)] * 3)
    client = plain(server.url())  # no retry handlers: the dead connection must be noticed before sending
    for i in range(3):
        assert client.chat_postMessage(channel="C0FINANCE", text=f"m{i}")["ok"]
        assert server.closed.acquire(timeout=5)  # the pooled connection is now closed on the server side
    assert server.connections == 3 and len(server.requests) == 3


def test_a_connection_lost_before_the_answer(serve: type[ScriptedServer], slept: list[float]) -> None:
    server = serve((b"", True), (b"", True), (answer(), False))
    with pytest.raises(ConnectionError) as lost:
        plain(server.url()).chat_postMessage(channel="C0FINANCE", text="a")
    assert slack_error(lost.value).startswith("network: ")
    assert build_client("xoxb-t", server.url()).chat_postMessage(channel="C0FINANCE", text="b")["ok"]  # retried
    assert server.connections == 3 and len(slept) == 1


def test_timeouts_and_refused_connections(serve: type[ScriptedServer]) -> None:
    server = serve((answer(), False), (None, False), (answer(), False))
    client = plain(server.url())
    assert client.chat_postMessage(channel="C0FINANCE", text="a")["ok"]
    quick = plain(server.url(), timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        quick.chat_postMessage(channel="C0FINANCE", text="b")  # on the connection `client` opened
    assert time.monotonic() - started < 3
    assert client.chat_postMessage(channel="C0FINANCE", text="c")["ok"]  # a new connection, default timeout
    assert server.connections == 2
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(ConnectionError) as refused:
        plain(f"http://127.0.0.1:{port}/api/").chat_postMessage(channel="C0FINANCE", text="d")
    assert slack_error(refused.value) == "network: ConnectionRefusedError"


def test_a_forked_worker_opens_its_own_connection(serve: type[ScriptedServer]) -> None:
    server = serve(*[(answer(), False)] * 3)
    client = plain(server.url())
    assert client.chat_postMessage(channel="C0FINANCE", text="parent, before the fork")["ok"]
    pid = os.fork()
    if pid == 0:  # the child must not write on the parent's pooled connection
        try:
            code = 0 if client.chat_postMessage(channel="C0FINANCE", text="child")["ok"] else 3
        except BaseException:  # noqa: BLE001
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.chat_postMessage(channel="C0FINANCE", text="parent, after")["ok"]  # its connection still works
    assert server.connections == 2 and len(server.requests) == 3


def test_files_take_webclients_own_path(serve: type[ScriptedServer]) -> None:
    server = serve((answer(), False))
    assert plain(server.url()).api_call("files.upload", files={"file": b"report"}, data={"channels": "C1"})["ok"]
    _, headers, body = fields_of(server.requests[0])
    assert headers["content-type"].startswith("multipart/form-data") and b"report" in body


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


def test_https_verifies_the_server_and_keeps_the_connection(serve: type[ScriptedServer],
                                                           certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = serve(*[(answer(), False)] * 2, tls=server_context)
    trusting = ssl.create_default_context(cafile=str(cert))
    client = plain(server.url("localhost"), ssl=trusting)
    assert client.chat_postMessage(channel="C0FINANCE", text="a")["ok"]
    assert client.chat_postMessage(channel="C0FINANCE", text="b")["ok"]
    assert server.connections == 1
    with pytest.raises(ssl.SSLCertVerificationError):  # the certificate does not name 127.0.0.1
        plain(server.url("127.0.0.1"), ssl=trusting).chat_postMessage(channel="C0FINANCE", text="c")
    with pytest.raises(ssl.SSLCertVerificationError):  # nor is it trusted by default
        plain(server.url("localhost")).chat_postMessage(channel="C0FINANCE", text="d")
