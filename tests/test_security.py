"""Security checks: the signing secret is required, every request is verified with no way around it,
secrets stay out of logs and messages, and forged clicks by people without the right change nothing."""

from __future__ import annotations

import io
import json
import logging
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

import storage.requests
from bot.render.ids import Action, Block, Callback
from bot.runtime.jobs import build_deps
from bot.runtime.logs import RedactingFilter
from bot.runtime.outbox import KICK_GRACE
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.models import Job, ProcessedEvent, Request, RequestEvent
from storage.session import session_scope
from tests.conftest import (
    ADMIN,
    ALICE,
    CAROL,
    DAVE,
    FINANCE_CH,
    GENERAL,
    MALLORY,
    Harness,
    make_settings,
    start_harness,
)
from tests.test_db_outage import Outage
from tests.test_request_loop import ask, button, load
from tests.test_status_purge import RunningServer, cli_env, run_cli

TOKEN = "xoxb-4242-SECRET-TOKEN-do-not-log"
SECRET = "signing-SECRET-7f3a9c1e55d0"
FORM = "application/x-www-form-urlencoded"


def state(h: Harness) -> dict[str, Any]:
    with session_scope(h.deps.engine) as s:
        return {
            "requests": [r.model_dump() for r in s.exec(select(Request).order_by(Request.id)).all()],
            "events": s.exec(select(func.count()).select_from(RequestEvent)).one(),
            "jobs": s.exec(select(func.count()).select_from(Job)).one(),
            "processed": s.exec(select(func.count()).select_from(ProcessedEvent)).one(),
        }


def settled_state(h: Harness, timeout: float = 10.0) -> dict[str, Any]:
    """`state` once background work (e.g. a survey planned after a resolve) has stopped changing it:
    no job a listener is about to run (due within KICK_GRACE) is left, and nothing changes for 0.2 s."""
    last, deadline = state(h), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = state(h)
        with session_scope(h.deps.engine) as s:
            soon = s.exec(select(func.count()).select_from(Job).where(
                Job.status.in_(("pending", "running")),  # type: ignore[attr-defined]
                Job.due_at <= h.deps.now() + KICK_GRACE)).one()
        if now == last and not soon:
            return now
        last = now
    raise AssertionError("the database kept changing")


# ---------------------------------------------------------------------------------------------
# the signing secret is required
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [None, ""])
def test_http_mode_refuses_to_start_without_a_signing_secret(db_url: str, tmp_path: Path,
                                                             secret: str | None) -> None:
    env = cli_env(tmp_path, db_url, SLACK_BOT_TOKEN=TOKEN)
    if secret is not None:
        env["SLACK_SIGNING_SECRET"] = secret
    out = run_cli(["run", "--http", "--host", "127.0.0.1", "--port", "9"], env, tmp_path)
    assert out.returncode == 2
    assert "SLACK_SIGNING_SECRET" in out.stderr and "required in HTTP mode" in out.stderr
    assert "Traceback" not in out.stderr and TOKEN not in out.stderr + out.stdout


# ---------------------------------------------------------------------------------------------
# no way around signature verification
# ---------------------------------------------------------------------------------------------
def _slash_body(text: str = "sneaky", **extra: str) -> bytes:
    fields = {"command": "/ask-finance", "text": text, "user_id": DAVE, "channel_id": GENERAL,
              "trigger_id": "1.2.3", "team_id": "T0001", **extra}
    return urllib.parse.urlencode(fields).encode()


def _post(h: Harness, body: bytes, headers: dict[str, str], query: str = "") -> Any:
    driver = SlackDriver(h.url + query, "unused", None) if query else h.driver
    return driver.send_raw(body, {"Content-Type": FORM, **headers})


def test_no_parameter_header_or_path_skips_verification(h: Harness) -> None:
    before, calls = state(h), len(h.sim.calls)
    now = str(int(time.time()))
    bad_sig = {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + "0" * 64}
    lazy = {"X-Slack-Bolt-Lazy-Only": "1", "X-Slack-Bolt-Lazy-Function-Name": "ask_lazy"}
    body = _slash_body()
    challenge = json.dumps({"type": "url_verification", "challenge": "echo-me", "token": "x"}).encode()
    attempts = [
        ("no headers", body, {}, ""),
        ("wrong signature", body, bad_sig, ""),
        ("v1 scheme", body, {**h.driver.sign(body), "X-Slack-Signature": "v1=" + "0" * 64}, ""),
        ("stale but valid", body, h.driver.sign(body, timestamp=int(time.time()) - 600), ""),
        ("from the future", body, h.driver.sign(body, timestamp=int(time.time()) + 600), ""),
        ("signed other body", body, h.driver.sign(_slash_body("other")), ""),
        ("retry header", body, {**bad_sig, "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "x"}, ""),
        ("lazy headers", body, {**bad_sig, **lazy}, ""),
        ("query string", body, bad_sig, "?ssl_check=0&payload=x"),
        ("url_verification", challenge, {"Content-Type": "application/json"}, ""),
    ]
    for name, raw, headers, query in attempts:
        resp = _post(h, raw, headers, query)
        assert resp.status == 401, (name, resp.status, resp.body)
        assert "echo-me" not in resp.body and "#" not in resp.body, name
    # Slack's ssl_check ping is answered (empty 200) before verification, but runs nothing
    ping = _post(h, _slash_body(ssl_check="1"), {})
    assert ping.status == 200 and ping.body == ""
    assert state(h) == before and len(h.sim.calls) == calls  # not a row, not one Slack call


def test_bolts_internal_lazy_headers_cannot_skip_the_ack(h: Harness) -> None:
    """Bolt's FaaS adapters mark their self-invocations with x-slack-bolt-lazy-* headers; from outside,
    even correctly signed, they are dropped: the request is handled normally, ack function included."""
    body = _slash_body("lazy trick")
    headers = {**h.driver.sign(body), "X-Slack-Bolt-Lazy-Only": "1",
               "X-Slack-Bolt-Lazy-Function-Name": "ask_lazy"}
    resp = _post(h, body, headers)
    assert resp.status == 200 and "#1" in resp.body  # the ack function ran and answered as usual
    assert h.wait(lambda: load(h, 1).post_state == "posted")


# ---------------------------------------------------------------------------------------------
# secrets stay out of logs, errors and messages
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def secret_harness(sim: SlackSimulator, db_url: str) -> Iterator[tuple[Harness, SlackDriver]]:
    harness, stop = start_harness(sim, make_settings(sim, db_url, bot_token=TOKEN, signing_secret=SECRET))
    yield harness, SlackDriver(harness.url, SECRET, sim)
    stop()


def test_secrets_never_reach_logs_errors_or_messages(secret_harness: tuple[Harness, SlackDriver],
                                                     caplog: pytest.LogCaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    h, driver = secret_harness
    shown = io.StringIO()
    handler = logging.StreamHandler(shown)  # what `askdesk run` writes: the redacting handler
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter((TOKEN, SECRET)))
    logging.getLogger().addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        answers = _drive_errors(h, driver, monkeypatch)
    finally:
        logging.getLogger().removeHandler(handler)
    raw = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in raw and SECRET not in raw  # no code path logs them in the first place
    assert "kaboom" in shown.getvalue()  # the listener failure was logged, with its traceback...
    assert TOKEN not in shown.getvalue() and SECRET not in shown.getvalue()  # ...redacted
    users_saw = answers + [str(p) for p in h.sim.response_posts] + [json.dumps(c.args) for c in h.sim.calls]
    for text in users_saw:
        assert TOKEN not in text and SECRET not in text and "Traceback" not in text
    for obj in (h.deps.settings, h.deps):
        assert TOKEN not in repr(obj) and SECRET not in repr(obj) and TOKEN not in str(obj)
    with_password = make_settings(h.sim, "postgresql+psycopg://askdesk:hunter2-db-pass@db:5432/askdesk")
    assert "hunter2-db-pass" not in repr(with_password)
    engine = make_engine(with_password.database_url)  # creating an engine does not connect
    assert "hunter2-db-pass" not in repr(build_deps(with_password, engine)) + repr(engine)


def _drive_errors(h: Harness, driver: SlackDriver, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A normal request, Slack saying invalid_auth, a database error, an exception in a listener and a
    badly signed request; returns what the app answered over HTTP."""
    answers = [driver.slash("/ask-finance", "first, all fine", user_id=DAVE).body]
    h.wait(lambda: load(h, 1).post_state == "posted")
    h.sim.fail_next("chat.postMessage", error="invalid_auth", channel=FINANCE_CH)
    answers.append(driver.slash("/ask-finance", "Slack refuses our token", user_id=DAVE).body)
    h.wait(lambda: load(h, 2).post_state == "failed")
    cut = Outage(h.deps.engine)
    cut.start()
    answers.append(driver.slash("/ask-finance", "database away", user_id=DAVE).body)
    answers.append(driver.event(driver.app_home_opened(ALICE), event_id="EvSECRET1").body)
    cut.close()

    def explode(*_args: Any, **_kwargs: Any) -> None:  # e.g. a library quoting its request headers
        raise RuntimeError(f"kaboom: Authorization: Bearer {TOKEN}; signing secret {SECRET}")

    monkeypatch.setattr(storage.requests, "get", explode)
    req = driver.block_action(user_id=ALICE, action_id=Action.CLAIM.value, value="1", channel_id=FINANCE_CH,
                              message_ts=load_ts(h))
    answers.append(req.body)
    h.wait(lambda: [p for p in h.sim.response_posts if "reference" in str(p)])
    monkeypatch.undo()
    answers.append(h.driver.slash("/ask-finance", "signed with the wrong secret", user_id=DAVE).body)
    return answers


def load_ts(h: Harness) -> str:
    with session_scope(h.deps.engine) as s:
        req = s.get(Request, 1)
        assert req is not None and req.triage_ts
        return req.triage_ts


def test_run_with_debug_logging_never_prints_secrets(sim: SlackSimulator, db_url: str,
                                                     tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url, SLACK_BOT_TOKEN=TOKEN, SLACK_SIGNING_SECRET=SECRET,
                  SLACK_API_URL=sim.base_url, LOG_LEVEL="DEBUG")
    with RunningServer(env, tmp_path) as server:
        server.wait_listening()
        driver = SlackDriver(server.url, SECRET, sim)
        assert "#1" in driver.slash("/ask-finance", "hello", user_id=DAVE).body
        sim.wait_for(lambda: sim.messages(FINANCE_CH), timeout=10)
        sim.fail_next("chat.postMessage", error="invalid_auth", channel=FINANCE_CH)
        assert "#2" in driver.slash("/ask-finance", "Slack refuses our token", user_id=DAVE).body
        sim.wait_for(lambda: [c for c in sim.calls_to("chat.postMessage") if c.error == "invalid_auth"],
                     timeout=10)
        assert driver.event({"type": "app_home_opened", "tab": "home"}).status == 200  # a listener fails
        assert SlackDriver(server.url, "wrong-secret", sim).slash("/ask-it", "x", user_id=DAVE).status == 401
        assert server.stop() == 0
    output = server.output
    assert "invalid_auth" in output and "DEBUG" in output  # the errors were logged, verbosely...
    assert TOKEN not in output and SECRET not in output  # ...and the secrets were not


# ---------------------------------------------------------------------------------------------
# forged clicks: a valid signature, but a user who is not allowed
# ---------------------------------------------------------------------------------------------
def _refusals(h: Harness) -> int:
    """Private "Only ... can ..." answers so far (through response_url, or a DM for modals)."""
    dms = h.sim.messages(h.sim.dm_channel_for(MALLORY)) + h.sim.messages(h.sim.dm_channel_for(CAROL))
    return len([m for m in [*h.sim.response_posts, *dms] if "Only" in str(m)])


def test_forged_clicks_by_people_without_the_right_change_nothing(h: Harness) -> None:
    req = ask(h, "Salary question")
    before, updates = settled_state(h), len(h.sim.calls_to("chat.update"))
    forged = [(MALLORY, Action.CLAIM), (MALLORY, Action.RESOLVE), (CAROL, Action.CLAIM),
              (CAROL, Action.RESOLVE), (MALLORY, Action.RETRY_POST), (CAROL, Action.TRANSFER)]
    for user, action in forged:
        seen = _refusals(h)
        button(h, req, action, user)
        h.wait(lambda seen=seen: _refusals(h) > seen)
    # a transfer modal submitted without ever being opened (private_metadata names the request)
    pick_it = {"type": "static_select", "selected_option": {"value": "it"}}
    values = {Block.TRANSFER_TEAM.value: {"value": pick_it}}
    seen = _refusals(h)
    resp = h.driver.view_submission(user_id=MALLORY, callback_id=Callback.TRANSFER_MODAL.value, values=values,
                                    private_metadata=str(req.id))
    assert resp.status == 200
    if "Only" not in resp.body:  # refused in the modal itself, or else privately afterwards
        h.wait(lambda: _refusals(h) > seen)
    assert state(h) == before and len(h.sim.calls_to("chat.update")) == updates
    assert not h.sim.opened_views  # nobody got the transfer modal either


def test_reopen_and_retry_are_for_the_requester_and_workspace_admins(h: Harness) -> None:
    req = ask(h, "Invoice question")
    button(h, req, Action.RESOLVE, ALICE)
    h.wait(lambda: load(h, req.id).status == "resolved")
    before = settled_state(h)
    button(h, req, Action.REOPEN, MALLORY, where="dm")
    h.wait(lambda: _refusals(h) > 0)
    assert state(h) == before
    button(h, req, Action.REOPEN, ADMIN, where="dm")  # [workspace] admins may
    h.wait(lambda: load(h, req.id).status != "resolved")
    assert load(h, req.id).reopen_count == 1
