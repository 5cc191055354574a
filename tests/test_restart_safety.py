"""Restart safety: the real `askdesk run --http` process is SIGKILLed around a survey and started again.

The schedule lives in the database, so a survey planned before the crash is still sent after it —
exactly once, also when the process died in the middle of sending it (lease expiry, reclaim, and
reconciliation through the DM's history).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlmodel import Session, select

from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage import feedback as queries
from storage import jobs as job_queries
from storage.engine import make_engine
from storage.models import Job, Request, Survey
from storage.session import session_scope
from tests.conftest import ALICE, BOT_TOKEN, DAVE, FINANCE_CH, GENERAL, SIGNING_SECRET

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
World = tuple[SlackSimulator, str, Path]
CONFIG = """
[workspace]
timezone = "Europe/Berlin"
admins = ["U0ADMIN"]

[[teams]]
slug = "finance"
name = "Finance"
channel = "C0FINANCE"

[surveys]
delay = "{delay}"
working_hours = "00:00-23:59"
working_days = "mon-sun"
min_days_between = 0

[scheduler]
tick = 0.2
lease = "{lease}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """One `python -m bot run --http` process against the simulator and the test database."""

    def __init__(self, sim: SlackSimulator, db_url: str, config: Path, log: Path) -> None:
        self.sim, self.db_url, self.config, self.log = sim, db_url, config, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> SlackDriver:
        self.port = free_port()
        env = {**os.environ, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
               "SLACK_API_URL": self.sim.base_url, "DATABASE_URL": self.db_url,
               "ASKDESK_CONFIG": str(self.config), "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"}
        env.pop("SLACK_APP_TOKEN", None)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1",
                 "--port", str(self.port)],
                cwd=self.config.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.sim.wait_for(self._healthy, timeout=30)
        return SlackDriver(f"http://127.0.0.1:{self.port}/slack/events", SIGNING_SECRET, self.sim)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            tail = self.log.read_text()[-3000:]
            raise AssertionError(f"askdesk exited with {self.proc.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def world(sim: SlackSimulator, db_url: str, tmp_path: Path) -> Iterator[World]:
    sim.add_user("U0ADMIN", name="admin", tz="Europe/Berlin")
    yield sim, db_url, tmp_path


def make_app(world: World, *, delay: str, lease: str) -> App:
    sim, db_url, tmp_path = world
    config = tmp_path / "askdesk.toml"
    config.write_text(CONFIG.format(delay=delay, lease=lease), encoding="utf-8")
    return App(sim, db_url, config, tmp_path / "askdesk.log")


def read(db_url: str, fn: Callable[[Session], T]) -> T:
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            return fn(s)
    finally:
        engine.dispose()


def survey_dms(sim: SlackSimulator) -> list[dict]:
    return [m for m in sim.messages(DAVE) if (m.get("metadata") or {}).get("event_type") == "askdesk_survey"]


def create_and_resolve(sim: SlackSimulator, driver: SlackDriver, db_url: str,
                       before_resolve: Callable[[], None] | None = None) -> int:
    assert driver.slash("/ask-finance", "Restart-proof survey please", user_id=DAVE, channel_id=GENERAL).ok

    def posted() -> Request | None:
        req = read(db_url, lambda s: s.exec(select(Request)).first())
        return req if req is not None and req.dm_ts and req.triage_ts else None

    req = sim.wait_for(posted, timeout=20)
    if before_resolve:
        before_resolve()
    assert driver.block_action(user_id=ALICE, action_id="req_resolve", value=str(req.id),
                               channel_id=FINANCE_CH, message_ts=req.triage_ts).ok
    return sim.wait_for(lambda: read(db_url, lambda s: s.exec(select(Survey.id)).first()), timeout=20)


def assert_stays_one(sim: SlackSimulator, seconds: float = 1.5) -> None:
    with pytest.raises(TimeoutError):  # bounded look over several more ticks: never a second DM
        sim.wait_for(lambda: len(survey_dms(sim)) > 1, timeout=seconds)


def test_survey_scheduled_before_a_sigkill_is_sent_once_after_restart(world: World) -> None:
    sim, db_url, _ = world
    app = make_app(world, delay="3s", lease="60s")
    try:
        survey_id = create_and_resolve(sim, app.start(), db_url)
        sim.wait_for(lambda: read(db_url, lambda s: s.exec(select(Job.id).where(  # planned, not yet due
            Job.key == f"survey:{survey_id}", Job.status == "pending")).first()), timeout=20)
        app.kill()  # before the survey is due
        assert survey_dms(sim) == []
        app.start()
        sim.wait_for(lambda: len(survey_dms(sim)) == 1, timeout=30)
        sent = sim.wait_for(lambda: sent_survey(db_url, survey_id), timeout=10)
        assert sent.ts == survey_dms(sim)[0]["ts"]
        assert_stays_one(sim)
    finally:
        app.stop()


def test_survey_job_killed_while_sending_is_reclaimed_and_reconciled(world: World) -> None:
    sim, db_url, _ = world
    app = make_app(world, delay="2s", lease="2s")
    try:
        # the next chat.postMessage is the survey DM: Slack accepts it only after 3 s
        survey_id = create_and_resolve(sim, app.start(), db_url,
                                       before_resolve=lambda: sim.delay_next("chat.postMessage", seconds=3))
        sim.wait_for(lambda: not pending_faults(sim), timeout=30)  # the post has reached Slack...
        app.kill()  # ...and the process dies before it hears back
        sim.wait_for(lambda: len(survey_dms(sim)) == 1, timeout=10)  # Slack still delivers it
        stuck = read(db_url, lambda s: (queries.get_survey(s, survey_id),
                                        s.exec(select(Job).where(Job.key == f"survey:{survey_id}")).one()))
        assert stuck[0].status == "sending" and stuck[1].status == "running"
        app.start()
        sent = sim.wait_for(lambda: sent_survey(db_url, survey_id), timeout=30)
        job = sim.wait_for(lambda: (j := read(db_url, lambda s: s.exec(select(Job).where(
            Job.key == f"survey:{survey_id}")).one())).status == "done" and j, timeout=10)
        assert job.attempts == 2  # the dead process's attempt, then the reclaim
        assert sent.ts == survey_dms(sim)[0]["ts"] and sim.calls_to("conversations.history")
        assert_stays_one(sim)
    finally:
        app.stop()


def sent_survey(db_url: str, survey_id: int) -> Survey | None:
    found = read(db_url, lambda s: queries.get_survey(s, survey_id))
    return found if found is not None and found.status == "sent" else None


def pending_faults(sim: SlackSimulator) -> int:
    return sim.pending_faults()


def test_request_killed_while_posting_is_reclaimed_and_posted_once(world: World) -> None:
    """The post job is inserted already leased to the process that acked; if that process dies in
    the middle of the triage post, the job comes back when the lease ends and reconciles."""
    sim, db_url, _ = world
    app = make_app(world, delay="1h", lease="2s")
    try:
        driver = app.start()
        sim.delay_next("chat.postMessage", seconds=3)  # Slack takes the triage post only after 3 s
        resp = driver.slash("/ask-finance", "Posted exactly once", user_id=DAVE, channel_id=GENERAL)
        assert resp.status == 200 and "#1" in resp.body
        sim.wait_for(lambda: not pending_faults(sim), timeout=10)  # the post has reached Slack...
        app.kill()  # ...and the process dies before it hears back
        sim.wait_for(lambda: len(sim.messages(FINANCE_CH)) == 1, timeout=10)
        job = read(db_url, lambda s: s.exec(select(Job).where(Job.key == "post:1:0")).one())
        assert job.status == "running" and job.attempts == 1  # leased to the dead process
        app.start()

        def posted() -> Request | None:
            req = read(db_url, lambda s: s.get(Request, 1))
            return req if req is not None and req.post_state == "posted" and req.dm_ts else None

        req = sim.wait_for(posted, timeout=30)
        triage = sim.messages(FINANCE_CH)
        assert len(triage) == 1 and req.triage_ts == triage[0]["ts"]  # found, not posted again
        assert len(sim.messages(DAVE)) == 1  # one status DM
        job = read(db_url, lambda s: s.exec(select(Job).where(Job.key == "post:1:0")).one())
        assert job.status == "done" and job.attempts == 2
    finally:
        app.stop()


def test_a_post_slower_than_its_lease_is_renewed_not_claimed_twice(world: World) -> None:
    """While a job runs, its process renews the lease (every third of it), so a triage post that Slack
    takes four leases to answer is neither claimed by another worker nor run twice."""
    sim, db_url, _ = world
    app = make_app(world, delay="1h", lease="1s")

    def job() -> Job:
        return read(db_url, lambda s: s.exec(select(Job).where(Job.key == "post:1:0")).one())

    try:
        driver = app.start()
        sim.delay_next("chat.postMessage", seconds=4)
        assert driver.slash("/ask-finance", "Slack is slow today", user_id=DAVE, channel_id=GENERAL).ok
        first = sim.wait_for(job, timeout=10)
        sim.wait_for(lambda: job().lease_until > first.lease_until, timeout=10)  # renewed while Slack answers
        engine = make_engine(db_url)
        try:
            with session_scope(engine) as s:  # another worker looking for expired leases finds none
                assert job_queries.claim_due(s, owner="intruder", lease=timedelta(seconds=1), limit=10) == []
        finally:
            engine.dispose()
        still = job()
        assert (still.status, still.attempts, still.lease_owner) == ("running", 1, first.lease_owner)

        def posted() -> Request | None:
            req = read(db_url, lambda s: s.get(Request, 1))
            return req if req is not None and req.post_state == "posted" and req.dm_ts else None

        sim.wait_for(posted, timeout=20)
        assert len(sim.messages(FINANCE_CH)) == 1 and len(sim.messages(DAVE)) == 1
        done = job()
        assert (done.status, done.attempts, done.lease_owner) == ("done", 1, first.lease_owner)
    finally:
        app.stop()
