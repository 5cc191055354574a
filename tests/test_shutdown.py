"""SIGTERM drains: `askdesk run --http` finishes what it acknowledged, then exits 0.

Slack answers slowly here (0.3 s per call), so when the signal arrives right after the acks the
posting work of every request is still in flight.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlmodel import select

from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.models import Job, Request
from storage.session import session_scope
from tests.conftest import BOT_TOKEN, FINANCE_CH, GENERAL, SIGNING_SECRET, populate
from tests.test_status_purge import RunningServer, cli_env

BURST = 12
DRAIN_BOUND = 30.0  # seconds from SIGTERM to exit; the work itself takes a few seconds


# One asker per request: two first requests of the same person at once race on caching that person's
# department (reported separately); this test is about the drain.
ASKERS = [f"U0BURST{n:02d}" for n in range(BURST)]


@pytest.fixture
def slow_sim() -> Iterator[SlackSimulator]:
    simulator = SlackSimulator(latency=0.3)
    populate(simulator)
    for n, user in enumerate(ASKERS):
        simulator.add_user(user, name=f"asker{n}", tz="Europe/Berlin", profile_fields={"Department": "Sales"})
    simulator.start()
    yield simulator
    simulator.stop()


def burst(server: RunningServer, sim: SlackSimulator) -> list[int]:
    """BURST signed slash commands at once; returns the request numbers their acks confirmed."""
    driver = SlackDriver(server.url, SIGNING_SECRET, sim)

    def one(n: int) -> int:
        resp = driver.slash("/ask-finance", f"burst request {n}", user_id=ASKERS[n], channel_id=GENERAL)
        assert resp.status == 200, resp.body
        found = re.search(r"#(\d+)", resp.body)
        assert found, resp.body
        return int(found.group(1))

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        return sorted(pool.map(one, range(BURST)))


def outcome(db_url: str) -> dict[int, tuple[str, list[str]]]:
    """Per request: its post state and the status of its post jobs."""
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            jobs = s.exec(select(Job).where(Job.kind == "post_request")).all()
            return {r.id: (r.post_state, [j.status for j in jobs if j.key.startswith(f"post:{r.id}:")])
                    for r in s.exec(select(Request)).all()}
    finally:
        engine.dispose()


def start(slow_sim: SlackSimulator, db_url: str, tmp_path: Path) -> RunningServer:
    env = cli_env(tmp_path, db_url, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                  SLACK_API_URL=slow_sim.base_url)
    server = RunningServer(env, tmp_path)
    server.wait_listening()
    return server


def check_nothing_lost(acked: list[int], db_url: str, sim: SlackSimulator) -> None:
    states = outcome(db_url)
    assert sorted(states) == acked  # every acknowledged request was saved, and nothing else
    for rid, (post_state, jobs) in states.items():
        # posted, or its job still waits in the outbox for the next start: never silently dropped
        kept = any(j in ("pending", "running") for j in jobs)
        assert post_state == "posted" or kept, (rid, post_state, jobs)
    triage = [m for m in sim.messages(FINANCE_CH) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    assert len(triage) == sum(1 for s, _ in states.values() if s == "posted")  # and none twice


def test_sigterm_right_after_the_acks_drains_and_exits_cleanly(slow_sim: SlackSimulator, db_url: str,
                                                              tmp_path: Path) -> None:
    with start(slow_sim, db_url, tmp_path) as server:
        acked = burst(server, slow_sim)
        assert acked == list(range(1, BURST + 1))
        stopped_at = time.monotonic()
        assert server.stop(timeout=DRAIN_BOUND) == 0
        took = time.monotonic() - stopped_at
    check_nothing_lost(acked, db_url, slow_sim)
    assert all(state == "posted" for state, _ in outcome(db_url).values())  # drained, not just kept
    assert "Traceback" not in server.output and "tick failed" not in server.output, server.output[-3000:]
    assert "draining" in server.output and "askdesk stopped" in server.output and took < DRAIN_BOUND


def test_a_second_sigterm_during_the_drain_does_not_cut_it_short(slow_sim: SlackSimulator, db_url: str,
                                                                tmp_path: Path) -> None:
    with start(slow_sim, db_url, tmp_path) as server:
        acked = burst(server, slow_sim)
        server.proc.send_signal(signal.SIGTERM)
        slow_sim.wait_for(lambda: "draining" in server.output, timeout=10)
        assert server.stop(timeout=DRAIN_BOUND) == 0  # the impatient second SIGTERM
    check_nothing_lost(acked, db_url, slow_sim)
    assert "Traceback" not in server.output, server.output[-3000:]
