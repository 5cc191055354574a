"""Two `askdesk run --http` instances on one database: every survey and digest exactly once, even
when the instance driving the scheduler is SIGKILLed while surveys are falling due."""

from __future__ import annotations

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from tests.conftest import BOT_TOKEN, FINANCE_CH, HR_CH, IT_CH, PG_URL, SIGNING_SECRET, TEST_CONFIG, write_config

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 200 if PG_URL else 80  # the 200 on PostgreSQL; fewer on SQLite (two writers, one file)
TEAMS = [("finance", FINANCE_CH, "U0ALICE"), ("it", IT_CH, "U0CAROL"), ("hr", HR_CH, "U0ADMIN")]


class Instance:
    def __init__(self, name: str, env: dict[str, str], cwd: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.name, self.lines = name, []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def drives_scheduler(self) -> bool:
        return any("drives the scheduler" in line for line in self.lines)

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False


def _config(tmp_path: Path) -> Path:
    today = datetime.now(ZoneInfo("Europe/Berlin")).strftime("%a").lower()
    return write_config(tmp_path / "askdesk.toml", {
        "workspace": {"timezone": "Europe/Berlin", "department_profile_field": "Department"},
        "surveys": {"delay": "4s", "working_hours": "00:00-23:59", "working_days": "mon-sun",
                    "min_days_between": 0, "expire_after": "1h"},
        "digest": {"weekday": today, "time": "00:00"},
        "scheduler": {"tick": 0.2, "lease": "5s"},
        "teams": TEST_CONFIG["teams"]})


def test_two_instances_kill_the_leader_every_survey_and_digest_once(sim: SlackSimulator, db_url: str,
                                                                     tmp_path: Path) -> None:
    requesters = [f"U0REQ{i:04d}" for i in range(REQUESTS)]
    for i, user in enumerate(requesters):
        sim.add_user(user, name=f"req{i}", tz="Europe/Berlin", profile_fields={"Department": f"Dept{i % 7}"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ASKDESK_", "DATABASE_"))}
    env.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=sim.base_url,
               DATABASE_URL=db_url, ASKDESK_CONFIG=str(_config(tmp_path)), LOG_LEVEL="INFO",
               PYTHONPATH=str(ROOT))
    instances = [Instance("a", env, tmp_path), Instance("b", env, tmp_path)]
    try:
        sim.wait_for(lambda: all(i.healthy() for i in instances), timeout=60)
        drivers = [SlackDriver(i.url, SIGNING_SECRET, sim) for i in instances]

        def ask(n: int) -> None:
            slug, _channel, _responder = TEAMS[n % 3]
            command = "/ask-people" if slug == "hr" else f"/ask-{slug}"
            resp = drivers[n % 2].slash(command, f"multi-instance request {n}", user_id=requesters[n])
            assert resp.status == 200, resp.body

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(ask, range(REQUESTS)))
        posted = sim.wait_for(lambda: _triage_posts(sim) if len(_triage_posts(sim)) >= REQUESTS else None,
                              timeout=120)

        def resolve(item: tuple[int, tuple[str, str]]) -> None:
            n, (channel, ts) = item
            responder = next(r for _s, c, r in TEAMS if c == channel)
            resp = drivers[(n + 1) % 2].block_action(user_id=responder, action_id="req_resolve",
                                                     value=posted[(channel, ts)], channel_id=channel, message_ts=ts)
            assert resp.status == 200

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(resolve, enumerate(posted)))
        # on PostgreSQL only one instance drives the scheduler (advisory lock); kill it while the surveys
        # are falling due. (On SQLite both clocks claim rows atomically; kill one of them.)
        if PG_URL:
            sim.wait_for(lambda: any(i.drives_scheduler() for i in instances), timeout=30)
            leaders = [i for i in instances if i.drives_scheduler()]
            assert len(leaders) == 1, [i.name for i in leaders]
            leader = leaders[0]
        else:
            leader = instances[0]
        leader.proc.send_signal(signal.SIGKILL)
        leader.proc.wait(timeout=10)
        survivor = next(i for i in instances if i is not leader)

        try:
            surveys = sim.wait_for(lambda: s if len(s := _survey_dms(sim)) >= REQUESTS else None, timeout=120)
        except TimeoutError:
            told = collections.Counter(str(p.body.get("text"))[:60] for p in sim.response_posts)
            raise AssertionError(_diagnose(db_url, instances) + f"\ntold={told}") from None
        digests = sim.wait_for(lambda: d if len(d := _digest_posts(sim)) >= 3 else None, timeout=60)
        # settle: a few more ticks must not add anything
        deadline = time.monotonic() + 3
        sim.wait_for(lambda: time.monotonic() > deadline, timeout=5)
        surveys, digests = _survey_dms(sim), _digest_posts(sim)
        duplicates = {ref: n for ref, n in surveys.items() if n > 1}
        assert not duplicates and len(surveys) == REQUESTS
        assert sorted(digests) == sorted(digests.keys()) and all(n == 1 for n in digests.values())
        assert len(digests) == 3, digests
        if PG_URL:
            assert survivor.drives_scheduler()
    finally:
        for inst in instances:
            if inst.proc.poll() is None:
                inst.proc.send_signal(signal.SIGTERM)
                try:
                    inst.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    inst.proc.kill()


def _triage_posts(sim: SlackSimulator) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for _slug, channel, _r in TEAMS:
        for msg in sim.messages(channel):
            meta = msg.get("metadata") or {}
            if meta.get("event_type") == "askdesk_request":
                found[(channel, msg["ts"])] = str(meta["event_payload"]["ref"]).split(":")[0]
    return found


def _survey_dms(sim: SlackSimulator) -> dict[str, int]:
    counts: dict[str, int] = collections.Counter()
    for call in sim.calls_to("chat.postMessage"):
        meta = call.args.get("metadata") or {}
        if call.ok and isinstance(meta, dict) and meta.get("event_type") == "askdesk_survey":
            counts[str(meta["event_payload"]["ref"])] += 1
    return dict(counts)


def _digest_posts(sim: SlackSimulator) -> dict[str, int]:
    counts: dict[str, int] = collections.Counter()
    for call in sim.calls_to("chat.postMessage"):
        meta = call.args.get("metadata") or {}
        if call.ok and isinstance(meta, dict) and meta.get("event_type") == "askdesk_digest":
            counts[str(meta["event_payload"]["ref"])] += 1
    return dict(counts)


def _diagnose(db_url: str, instances: list[Instance]) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        surveys = conn.execute(text("SELECT status, reason, count(*) FROM surveys GROUP BY status, reason")).all()
        jobs = conn.execute(text("SELECT kind, status, count(*), max(attempts), max(last_error) FROM jobs"
                                 " GROUP BY kind, status")).all()
    engine.dispose()
    tail = "".join(line for i in instances for line in i.lines[-15:])
    return f"surveys={surveys}\njobs={jobs}\nlogs:\n{tail}"


def test_a_stopping_leader_hands_the_scheduler_over_at_once(db_url: str) -> None:
    """On PostgreSQL, leadership is an advisory lock held on its own connection. Releasing it unlocks
    before closing the connection, so the next instance (or the next test's Clock) leads at its very next
    tick. Closing alone frees the lock only once the server has noticed: 5-10 of 300 hand-overs found it
    still held, and that tick did nothing (a test's single tick after another's then planned no SLA timer)."""
    from bot.runtime.scheduler import Leadership
    from storage.engine import make_engine

    if not PG_URL:
        pytest.skip("leadership is PostgreSQL's advisory lock; on SQLite one process drives its own clock")
    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        holder = Leadership(engines[0])
        assert holder.check()
        for n in range(300):
            other = Leadership(engines[(n + 1) % 2])
            assert not other.check()  # one leader at a time
            holder.release()
            assert other.check(), f"hand-over {n}: the lock was still held right after release"
            holder = other
        holder.release()
    finally:
        for engine in engines:
            engine.dispose()
