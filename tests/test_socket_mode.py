"""`askdesk run` over Socket Mode for real: a subprocess with SLACK_APP_TOKEN (no --http, no signing
secret) opens its connection through the simulator's apps.connections.open (so SLACK_API_URL is
honoured) and takes slash commands, button clicks and events as envelopes from the simulator's
WebSocket server (bot/simulator_socket.py); a refused app-level token ends it with one clear line."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from sqlalchemy import text

from slacksim.driver import DriverResponse, SlackDriver
from slacksim.simulator import SlackSimulator
from slacksim.socket_mode import accept_key
from storage.engine import make_engine
from tests.conftest import ALICE, BOB, BOT_TOKEN, DAVE, FINANCE_CH, GENERAL, TEST_CONFIG
from tests.test_status_purge import cli_env, free_port, toml_text

T = TypeVar("T")
APP_TOKEN = "xapp-1-A0001-4242-socketmodetest"
ACK_WAIT = 15.0  # seconds; Slack itself gives up after 3, but CI machines can be slow
LEGAL_CH = "C0LEGAL"
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class PayloadBuilder(SlackDriver):
    """SlackDriver's payloads (slash command fields, interactive payloads, event_callback bodies), built
    but not POSTed: Socket Mode carries the same objects inside envelopes, unsigned."""

    def __init__(self, sim: SlackSimulator) -> None:
        super().__init__("socket-mode://", "", sim)

    def send_raw(self, body: bytes, headers: dict[str, str]) -> DriverResponse:
        return DriverResponse(0, "", None, {}, 0.0)


def socket_env(tmp_path: Path, sim: SlackSimulator, db_url: str, **extra: str) -> dict[str, str]:
    env = cli_env(tmp_path, db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=sim.base_url, LOG_LEVEL="INFO",
                  **extra)
    for name in PROXY_VARS:  # slack_sdk would tunnel the WebSocket through a proxy from the environment
        env.pop(name, None)
    return env


class SocketModeApp:
    """`askdesk run` in Socket Mode; its output goes to a file (readable while it runs, never a full pipe)."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str, log_name: str = "askdesk.log") -> None:
        self.log = cwd / log_name
        self._out = self.log.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", *args], env=env, cwd=cwd, stdout=self._out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def until(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
        """Poll `predicate` until truthy; fail early (with the log) if the process has exited."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if self.proc.poll() is not None:
                pytest.fail(f"askdesk exited ({self.proc.returncode}) waiting for {what}:\n{self.output()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what}:\n{self.output()[-4000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._out.close()


@pytest.fixture
def app_proc(sim: SlackSimulator, db_url: str, tmp_path: Path) -> Iterator[SocketModeApp]:
    proc = SocketModeApp(socket_env(tmp_path, sim, db_url, SLACK_APP_TOKEN=APP_TOKEN), tmp_path)
    yield proc
    proc.stop()


def rows(db_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


def test_socket_mode_requests_clicks_events_reconnect_and_sigterm(
        sim: SlackSimulator, db_url: str, app_proc: SocketModeApp) -> None:
    server = sim.socket_mode()
    conn = app_proc.until(lambda: server.active(), timeout=60, what="the Socket Mode connection")[-1]
    opened = sim.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].ok  # through SLACK_API_URL, with the xapp- token
    server.wait_for(lambda: conn.pings, timeout=5)  # the client pings on connect; the server answers
    build = PayloadBuilder(sim)

    # A slash command: the ack carries the ephemeral confirmation; the triage post follows.
    command = build.slash("/ask-finance", "Socket mode: where is my refund?", user_id=DAVE, channel_id=GENERAL).payload
    ack = server.wait_for_ack(server.send_envelope("slash_commands", command, accepts_response_payload=True), ACK_WAIT)
    assert ack.payload is not None and "#1" in ack.payload["text"], ack.raw
    posted = app_proc.until(lambda: [m for m in sim.messages(FINANCE_CH)
                                     if "where is my refund?" in json.dumps(m.get("blocks"))], what="triage post")
    [(request_id, triage_ts)] = app_proc.until(
        lambda: rows(db_url, "SELECT id, triage_ts FROM requests WHERE triage_ts IS NOT NULL"), what="post stored")
    assert triage_ts == posted[0]["ts"]

    # An Events API delivery and Slack's retry of it (same event_id): both acked, one effect.
    reply = build.message_event(BOB, FINANCE_CH, "Looking into it", thread_ts=triage_ts)
    body = build.event(reply, event_id="Ev0SOCKET0001").payload
    first = server.wait_for_ack(server.send_envelope("events_api", body), ACK_WAIT)
    assert first.payload is None

    def first_responses() -> list[tuple[Any, ...]]:
        return rows(db_url, "SELECT actor_id FROM request_events WHERE kind = 'first_response'")

    assert app_proc.until(first_responses, what="the first response") == [(BOB,)]
    retry_id = server.send_envelope("events_api", body, retry_attempt=1, retry_reason="timeout")
    retry = server.wait_for_ack(retry_id, ACK_WAIT)
    assert retry.payload is None
    app_proc.until(lambda: "duplicate delivery of Ev0SOCKET0001 ignored" in app_proc.output(), what="dedupe log")
    assert first_responses() == [(BOB,)]
    assert rows(db_url, "SELECT count(*) FROM processed_events WHERE event_id = 'Ev0SOCKET0001'") == [(1,)]

    # Alice clicks Claim on the triage post: the request is hers and the post is updated.
    click = build.block_action(user_id=ALICE, action_id="req_claim", value=str(request_id), channel_id=FINANCE_CH,
                               message_ts=triage_ts, button_text="Claim").payload
    assert server.wait_for_ack(server.send_envelope("interactive", click), ACK_WAIT).payload is None
    sim.wait_for_call("chat.update", lambda c: c.args.get("ts") == triage_ts and ALICE in json.dumps(c.args),
                      timeout=10)
    assert rows(db_url, "SELECT status, assignee_id FROM requests") == [("claimed", ALICE)]

    # Slack asks for a reconnect: a new URL from apps.connections.open, and envelopes flow again.
    server.disconnect("refresh_requested")
    second = server.wait_for_connection(timeout=20, count=2)
    assert second is not conn and len(sim.calls_to("apps.connections.open")) == 2
    command = build.slash("/ask-finance", "And after a reconnect?", user_id=DAVE, channel_id=GENERAL).payload
    ack = server.wait_for_ack(server.send_envelope("slash_commands", command, connection=second), ACK_WAIT)
    assert ack.connection == second.id and "#2" in ack.payload["text"], ack.raw

    # SIGTERM: a clean exit 0, the connection closed, no traceback, no token in the output.
    app_proc.proc.send_signal(signal.SIGTERM)
    assert app_proc.proc.wait(timeout=30) == 0, app_proc.output()[-4000:]
    server.wait_for(lambda: not server.active(), timeout=10)
    output = app_proc.output()
    assert "askdesk starting (Socket mode" in output and "askdesk stopped" in output
    assert "Traceback" not in output and APP_TOKEN not in output and BOT_TOKEN not in output, output[-4000:]


def test_sighup_in_socket_mode_reloads_a_valid_config_and_keeps_the_running_one_otherwise(
        sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    """A bad file keeps the running configuration and its connection; a good one opens a new
    connection, which takes the new team's commands, and closes the old one."""
    sim.add_channel(LEGAL_CH, name="legal-triage", members=[ALICE, "UBOT"])
    env = socket_env(tmp_path, sim, db_url, SLACK_APP_TOKEN=APP_TOKEN)
    config = Path(env["ASKDESK_CONFIG"])
    app_proc = SocketModeApp(env, tmp_path)
    try:
        server = sim.socket_mode()
        first = app_proc.until(lambda: server.active(), timeout=60, what="the Socket Mode connection")[-1]
        build = PayloadBuilder(sim)

        def ask(command: str, question: str, connection: Any) -> str:
            payload = build.slash(command, question, user_id=DAVE, channel_id=GENERAL).payload
            envelope = server.send_envelope("slash_commands", payload, accepts_response_payload=True,
                                            connection=connection)
            ack = server.wait_for_ack(envelope, ACK_WAIT)
            assert ack.payload is not None, ack.raw
            return str(ack.payload["text"])

        config.write_text(config.read_text().replace('slug = "it"', 'slugg = "it"'))  # a typo
        app_proc.proc.send_signal(signal.SIGHUP)
        app_proc.until(lambda: "configuration not reloaded" in app_proc.output(), timeout=30, what="the refusal")
        assert "key 'teams[1].slugg': unknown key; did you mean 'slug'?" in app_proc.output()
        assert server.active() == [first] and len(sim.calls_to("apps.connections.open")) == 1
        assert "#1" in ask("/ask-finance", "Still here after a bad reload?", first)

        config.write_text(toml_text({**TEST_CONFIG, "teams": [
            *TEST_CONFIG["teams"], {"slug": "legal", "name": "Legal", "channel": LEGAL_CH}]}))
        app_proc.proc.send_signal(signal.SIGHUP)
        app_proc.until(lambda: "configuration reloaded (4 teams)" in app_proc.output(), timeout=60,
                       what="the reload")
        second = server.wait_for_connection(timeout=20, count=2)
        assert second is not first and len(sim.calls_to("apps.connections.open")) == 2
        server.wait_for(lambda: not first.is_open, timeout=10)  # the old generation let go of its connection
        assert "#2" in ask("/ask-legal", "Can we sign this NDA?", second)
        app_proc.until(lambda: [m for m in sim.messages(LEGAL_CH) if "sign this NDA" in json.dumps(m.get("blocks"))],
                       what="the new team's triage post")
        app_proc.proc.send_signal(signal.SIGTERM)
        assert app_proc.proc.wait(timeout=30) == 0, app_proc.output()[-4000:]
        output = app_proc.output()
        assert "Traceback" not in output and APP_TOKEN not in output and BOT_TOKEN not in output, output[-4000:]
    finally:
        app_proc.stop()


@pytest.mark.parametrize("case", ["revoked app token", "bot token as app token", "Slack unreachable"])
def test_socket_mode_connection_failure_exits_with_one_clear_line(
        case: str, sim: SlackSimulator, db_url: str, tmp_path: Path) -> None:
    token, api_url, expected = APP_TOKEN, sim.base_url, "apps.connections.open answered invalid_auth"
    if case == "revoked app token":
        sim.invalid_tokens.add(APP_TOKEN)
    elif case == "bot token as app token":
        token, expected = BOT_TOKEN, "apps.connections.open answered not_allowed_token_type"
    else:
        api_url, expected = f"http://127.0.0.1:{free_port()}/api/", "cannot reach the Slack API"
    env = socket_env(tmp_path, sim, db_url, SLACK_APP_TOKEN=token)
    env["SLACK_API_URL"] = api_url
    out = subprocess.run([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=90, stdin=subprocess.DEVNULL)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("askdesk: ")]
    assert len(lines) == 1 and lines[0].startswith("askdesk: Socket Mode connection failed: "), out.stderr
    assert expected in lines[0], lines[0]
    output = out.stdout + out.stderr
    assert "Traceback" not in output and APP_TOKEN not in output and BOT_TOKEN not in output, output
    if case != "Slack unreachable":
        assert not sim.socket_mode().connections  # no WebSocket was ever opened


# ---------------------------------------------------------------------------------------------
# The WebSocket server itself
# ---------------------------------------------------------------------------------------------
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key


def ws_connect(url: str, *, version: str = "13") -> tuple[socket.socket, str]:
    """A raw client handshake; returns the socket and the server's answer head."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
    sock.sendall((f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.hostname}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: {version}\r\n\r\n")
                 .encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock, head.decode()


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "connection closed"
            data += chunk
        return data

    b1, b2 = exactly(2)
    assert not b2 & 0x80, "server frames are never masked"
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", exactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", exactly(8))
    return b1 & 0x0F, exactly(length)


def client_frame(opcode: int, data: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    key = os.urandom(4) if mask else b""
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(data) < 126:
        head += bytes([(0x80 if mask else 0) | len(data)])
    else:
        head += struct.pack("!BH", (0x80 if mask else 0) | 126, len(data))
    body = bytes(b ^ key[i % 4] for i, b in enumerate(data)) if mask else data
    return head + key + body


def test_server_handshake_frames_acks_and_refusals(sim: SlackSimulator) -> None:
    server = sim.socket_mode()
    url = server.new_url()
    sock, head = ws_connect(url)
    with sock:
        assert head.startswith("HTTP/1.1 101 ") and f"Sec-WebSocket-Accept: {accept_key(KEY)}" in head
        assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3
        opcode, hello = read_frame(sock)
        assert opcode == 0x1 and json.loads(hello) == {
            "type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0001"},
            "debug_info": json.loads(hello)["debug_info"]}
        sock.sendall(client_frame(0x9, b"are you there"))
        assert read_frame(sock) == (0xA, b"are you there")

        envelope_id = server.send_envelope("interactive", {"type": "block_actions", "actions": []})
        opcode, raw = read_frame(sock)
        envelope = json.loads(raw)
        assert opcode == 0x1 and envelope == {"envelope_id": envelope_id, "type": "interactive",
                                              "payload": {"type": "block_actions", "actions": []},
                                              "accepts_response_payload": False}
        ack = json.dumps({"envelope_id": envelope_id, "payload": {"text": "x" * 300}}).encode()
        sock.sendall(client_frame(0x1, ack[:100], fin=False) + client_frame(0x0, ack[100:]))  # fragmented
        assert server.wait_for_ack(envelope_id).payload == {"text": "x" * 300}

        retry_id = server.send_envelope("events_api", {"type": "event_callback"}, retry_attempt=2,
                                        retry_reason="timeout")
        retried = json.loads(read_frame(sock)[1])
        assert (retried["envelope_id"], retried["retry_attempt"], retried["retry_reason"]) == (retry_id, 2, "timeout")

        sock.sendall(client_frame(0x1, b'{"envelope_id": "x"}', mask=False))  # clients must mask
        opcode, data = read_frame(sock)
        assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1002
    server.wait_for(lambda: not server.active())

    for ticket_url, version, status in ((url, "13", "401"),  # a ticket works once
                                        (server.new_url(), "8", "426"),
                                        (url.replace("/link", "/other"), "13", "404")):
        sock, head = ws_connect(ticket_url, version=version)
        sock.close()
        assert head.startswith(f"HTTP/1.1 {status} "), head
    assert len(server.connections) == 1 and server.rejected_handshakes == 3


def test_slack_sdk_builtin_client_against_the_server(sim: SlackSimulator) -> None:
    """slack_sdk's own client: large frames both ways, and a close frame makes it fetch a new URL."""
    server = sim.socket_mode()
    client = SocketModeClient(app_token=APP_TOKEN, web_client=WebClient(token=BOT_TOKEN, base_url=sim.base_url),
                              ping_interval=1)  # its monitor reconnects within a second after a close frame

    def answer(c: SocketModeClient, req: SocketModeRequest) -> None:
        c.send_socket_mode_response(SocketModeResponse(req.envelope_id, {"echo": req.payload["blob"]}))

    client.socket_mode_request_listeners.append(answer)  # type: ignore[arg-type]
    try:
        client.connect()
        first = server.wait_for_connection()
        for size in (10, 1_000, 70_000):
            envelope_id = server.send_envelope("events_api", {"blob": "x" * size})
            assert server.wait_for_ack(envelope_id).payload == {"echo": "x" * size}
        server.close(1001, "going away", connection=first)
        second = server.wait_for_connection(count=2)
        assert second is not first and first.close_code == 1001
        assert [c.ok for c in sim.calls_to("apps.connections.open")] == [True, True]
        envelope_id = server.send_envelope("slash_commands", {"blob": "after"})
        assert server.wait_for_ack(envelope_id).connection == second.id
    finally:
        client.auto_reconnect_enabled = False
        for conn in server.active():
            conn.abort()  # the client's reader returns at once (else close() waits out its 3 s receive timeout)
        client.close()
