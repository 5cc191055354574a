"""The database goes away for a while: honest answers, nothing half-written, recovery by itself.

In-process outages (both engines): every new connection fails while the outage lasts and pooled
connections are dropped. On PostgreSQL also a real one: the app talks to the database through a
small TCP proxy on 127.0.0.1 that the test cuts (open connections reset, new ones refused) and
restores.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import select

from bot.render.ids import Action, Block, Callback
from bot.services.sealed import key_for, seal
from handlers.common import DB_DOWN
from slacksim.simulator import SlackSimulator
from storage.models import Job, Person, ProcessedEvent, Request, RequestEvent
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, FINANCE_CH, GENERAL, Harness, make_settings, start_harness
from tests.test_request_loop import ask, button, load

DOWN_WORDS = "can't reach its database"


class ConnectionFault:
    """A fault of the engine's new connections, switched on by `start()` (which also drops the pooled
    connections, so nothing keeps working by accident) and off by `stop()`; `_hook` runs on the engine
    event `EVENT` while it is on."""

    EVENT = "do_connect"

    def __init__(self, engine: Engine) -> None:
        self.engine, self.down = engine, False
        event.listen(engine, self.EVENT, self._listener)

    def _listener(self, dialect_or_conn: Any, *rest: Any) -> None:
        if self.down:
            self._hook(dialect_or_conn, *rest)

    def _hook(self, dialect_or_conn: Any, *rest: Any) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self.down = True
        self.engine.dispose()

    def stop(self) -> None:
        self.down = False
        self.engine.dispose()

    def close(self) -> None:
        self.down = False
        event.remove(self.engine, self.EVENT, self._listener)


class Outage(ConnectionFault):
    """While `down`, every new database connection fails like an unreachable server."""

    def _hook(self, dialect: Any, *_: Any) -> None:
        raise dialect.loaded_dbapi.OperationalError("simulated outage: the database is unreachable")


@pytest.fixture
def outage(h: Harness) -> Iterator[Outage]:
    cut = Outage(h.deps.engine)
    yield cut
    cut.close()


def healthz(h: Harness) -> int:
    try:
        with urllib.request.urlopen(h.url.replace("/slack/events", "/healthz"), timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def rows(h: Harness) -> dict[str, Any]:
    """Everything the app could have written, to compare before and after."""
    with session_scope(h.deps.engine) as s:
        return {
            "requests": [r.model_dump() for r in s.exec(select(Request).order_by(Request.id)).all()],
            "events": s.exec(select(func.count()).select_from(RequestEvent)).one(),
            "jobs": sorted((j.key, j.status) for j in s.exec(select(Job)).all()),
            "processed": s.exec(select(func.count()).select_from(ProcessedEvent)).one(),
        }


def check_whole(h: Harness) -> None:
    """Every request exists with its created event and its post job, or not at all."""
    with session_scope(h.deps.engine) as s:
        for req in s.exec(select(Request)).all():
            history = s.exec(select(RequestEvent).where(RequestEvent.request_id == req.id)).all()
            kinds = [e.kind for e in history]
            assert "created" in kinds, req.id
            assert s.exec(select(Job).where(Job.key == f"post:{req.id}:0")).first() is not None, req.id


def told(h: Harness, words: str) -> list[Any]:
    return [p for p in h.sim.response_posts if words in str(p)]


def request_modal_values(summary: str) -> dict[str, Any]:
    return {Block.SUMMARY.value: {"value": {"type": "plain_text_input", "value": summary}},
            Block.TEAM.value: {"value": {"type": "static_select", "selected_option": {"value": "finance"}}}}


# ---------------------------------------------------------------------------------------------
# in-process outage, both engines
# ---------------------------------------------------------------------------------------------
def test_outage_answers_honestly_writes_nothing_and_recovers(h: Harness, outage: Outage) -> None:
    req = ask(h, "asked before the outage")
    before = rows(h)
    outage.start()

    assert healthz(h) == 503
    resp = h.driver.slash("/ask-finance", "asked during the outage", user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200 and resp.body.startswith(DB_DOWN.msgid[:40]) and "try again" in resp.body
    # a modal submission stays open and says why (an empty ack would lose what was typed)
    form = seal(key_for(h.deps.settings), {"team": None, "channel": None, "permalink": None})
    sub = h.driver.view_submission(user_id=DAVE, callback_id=Callback.REQUEST_MODAL.value, private_metadata=form,
                                   values=request_modal_values("typed during the outage"))
    assert sub.status == 200 and sub.json["response_action"] == "errors"
    assert DOWN_WORDS in json.dumps(sub.json["errors"])
    # a click is acknowledged, and its user is told privately that nothing happened
    button(h, req, Action.CLAIM, ALICE)
    h.wait(lambda: told(h, "database"))
    # an Events API delivery gets a 503, so Slack delivers it again later; nobody gets a DM about it
    reply = h.driver.message_event(ALICE, FINANCE_CH, "looking into it", thread_ts=req.triage_ts)
    first = h.driver.event(reply, event_id="EvOUTAGE0001")
    assert first.status == 503 and "Traceback" not in first.body
    assert healthz(h) == 503

    outage.stop()
    h.wait(lambda: healthz(h) == 200, timeout=10)
    assert rows(h) == before  # nothing at all was written during the outage
    assert not [m for m in h.sim.messages(h.sim.dm_channel_for(ALICE)) if "database" in json.dumps(m)]
    # recovery without a restart: Slack's redelivery is processed, new requests work
    again = h.driver.event(reply, event_id="EvOUTAGE0001", retry_num=1, retry_reason="http_error")
    assert again.status == 200
    h.wait(lambda: load(h, req.id).first_response_at is not None)
    after = ask(h, "asked after the outage")
    assert after.post_state == "posted" and "during the outage" not in str(rows(h)["requests"])
    check_whole(h)


def test_a_job_cut_off_by_the_outage_is_retried_and_posts_once(h: Harness, outage: Outage) -> None:
    # the post job is in the middle of chat.postMessage when the database goes away
    h.sim.delay_next("chat.postMessage", seconds=1.0)
    resp = h.driver.slash("/ask-finance", "cut off mid-post", user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200 and "#1" in resp.body
    # the job has looked up the requester's department (its last database access before Slack)
    h.wait(lambda: _job(h, "post:1:0").status == "running" and _person_cached(h, DAVE), timeout=5)
    outage.start()
    # Slack takes the message, then recording it fails; the requester hears that confirmed work
    # goes through by itself (their request already has its number)
    h.wait(lambda: told(h, "lost its database connection"), timeout=10)
    assert h.sim.calls_to("chat.postMessage")
    assert healthz(h) == 503
    with pytest.raises(OperationalError):
        h.deps.outbox.tick()  # the scheduler's claim fails too; APScheduler logs it and ticks again
    outage.stop()
    h.wait(lambda: healthz(h) == 200, timeout=10)

    job = _job(h, "post:1:0")
    assert job.status in ("running", "pending")  # not lost: still owned by the outbox
    h.clock.advance(minutes=5)  # past the lease (or the backoff) of the interrupted attempt
    h.wait(lambda: (h.deps.outbox.tick(), load(h, 1).post_state == "posted")[1], timeout=10)
    assert _job(h, "post:1:0").status == "done"
    assert len(h.triage(FINANCE_CH)) == 1  # the retry found the first copy instead of posting again
    assert load(h, 1).triage_ts == h.triage(FINANCE_CH)[0]["ts"]
    check_whole(h)


def _person_cached(h: Harness, user_id: str) -> bool:
    """The person's department is cached (their language already is, from the ack)."""
    with session_scope(h.deps.engine) as s:
        person = s.get(Person, user_id)
        return person is not None and person.department is not None


def _job(h: Harness, key: str) -> Job:
    with session_scope(h.deps.engine) as s:
        job = s.exec(select(Job).where(Job.key == key)).first()
    assert job is not None
    return job


# ---------------------------------------------------------------------------------------------
# a real outage on PostgreSQL: the network path to the server is cut and restored
# ---------------------------------------------------------------------------------------------
class TcpProxy:
    """A loopback TCP proxy that can be cut (open connections reset, new ones refused) and restored."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._conns.discard(sock)
                _reset(sock)

    def cut(self) -> None:
        self.up.clear()
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for sock in conns:
            _reset(sock)

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


@pytest.fixture
def proxied(sim: SlackSimulator, db_url: str) -> Iterator[tuple[Harness, TcpProxy]]:
    if not db_url.startswith("postgresql"):
        pytest.skip("a real network outage needs PostgreSQL (ASKDESK_TEST_DATABASE_URL)")
    url = make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    harness, stop = start_harness(sim, make_settings(sim, via_proxy))
    yield harness, proxy
    proxy.restore()
    stop()
    proxy.close()


def test_real_postgres_outage_through_a_cut_proxy(proxied: tuple[Harness, TcpProxy]) -> None:
    h, proxy = proxied
    req = ask(h, "asked before the cut")
    before = rows(h)
    proxy.cut()
    assert healthz(h) == 503
    resp = h.driver.slash("/ask-finance", "asked while cut off", user_id=DAVE, channel_id=GENERAL)
    assert resp.status == 200 and DOWN_WORDS in resp.body and "try again" in resp.body
    button(h, req, Action.RESOLVE, DAVE, where="dm")
    h.wait(lambda: told(h, "database"))
    assert h.driver.event(h.driver.message_event(ALICE, FINANCE_CH, "hi", thread_ts=req.triage_ts),
                          event_id="EvCUT0001").status == 503
    proxy.restore()
    h.wait(lambda: healthz(h) == 200, timeout=15)
    assert rows(h) == before
    assert load(h, req.id).status == "open"
    after = ask(h, "asked after the restore")
    assert after.id == req.id + 1 and after.post_state == "posted"
    check_whole(h)
