"""Test harness: the real Bolt app served by waitress on 127.0.0.1, a loopback Slack simulator,
signed requests, and a real database (SQLite files, or PostgreSQL when ASKDESK_TEST_DATABASE_URL
is set — `make test` runs the suite on both)."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bot.app import create_app
from bot.config import Settings, parse_config
from bot.runtime.deps import Deps
from bot.runtime.jobs import build_deps
from bot.runtime.scheduler import Clock
from bot.runtime.server import create_server
from bot.slack.client import ChannelPacer
from slacksim.driver import SlackDriver
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.migrate import upgrade

SIGNING_SECRET = "test-signing-secret-8f1e2d"
BOT_TOKEN = "xoxb-test-token"
PG_URL = os.environ.get("ASKDESK_TEST_DATABASE_URL", "")

# People and channels of the test workspace.
ALICE, BOB, CAROL, DAVE, ERIN = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN"
MALLORY, ADMIN = "U0MALLORY", "U0ADMIN"
FINANCE_CH, IT_CH, HR_CH, GENERAL = "C0FINANCE", "C0IT", "C0HR", "C0GENERAL"

TEST_CONFIG: dict[str, Any] = {
    "workspace": {"timezone": "Europe/Berlin", "admins": [ADMIN], "department_profile_field": "Department"},
    "teams": [
        {"slug": "finance", "name": "Finance", "channel": FINANCE_CH,
         "categories": ["Expenses", "Payroll", "Invoices"], "first_response_sla": "30m", "resolution_sla": "2d"},
        {"slug": "it", "name": "IT", "channel": IT_CH, "categories": ["Laptop", "Access"],
         "first_response_sla": "1h", "resolution_sla": "1d"},
        {"slug": "hr", "name": "People", "channel": HR_CH, "command": "/ask-people"},
    ],
    "scheduler": {"tick": "1s"},
}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a config dict (the shape of TEST_CONFIG) as the TOML file `askdesk` reads."""
    lines = []
    for section, body in config.items():
        for table in body if isinstance(body, list) else [body]:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def populate(sim: SlackSimulator) -> None:
    """Alice and Bob answer for Finance, Carol for IT, Dave is in Sales (profile field), Erin has none."""
    sim.add_user(ALICE, name="alice", tz="Europe/Berlin")
    sim.add_user(BOB, name="bob", tz="America/New_York")
    sim.add_user(CAROL, name="carol", tz="Asia/Shanghai")
    sim.add_user(DAVE, name="dave", tz="America/Los_Angeles", profile_fields={"Department": "Sales"})
    sim.add_user(ERIN, name="erin", tz="Europe/London")
    sim.add_user(MALLORY, name="mallory", tz="Europe/Berlin", profile_fields={"Department": "Marketing"})
    sim.add_user(ADMIN, name="admin", tz="Europe/Berlin")
    sim.add_channel(FINANCE_CH, name="finance-triage", members=[ALICE, BOB, "UBOT"])
    sim.add_channel(IT_CH, name="it-triage", members=[CAROL, "UBOT"])
    sim.add_channel(HR_CH, name="people-triage", members=[ADMIN, "UBOT"])
    sim.add_channel(GENERAL, name="general", members=[ALICE, BOB, CAROL, DAVE, ERIN, MALLORY, "UBOT"])


# --------------------------------------------------------------------------------------------
# databases
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test session (migrated once), or None on SQLite."""
    if not PG_URL:
        yield None
        return
    url = make_url(PG_URL)
    name = f"askdesk_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = url.set(database=name).render_as_string(hide_password=False)
    upgrade(test_url)
    yield test_url
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


TABLES = ["request_events", "reactions", "surveys", "requests", "processed_events", "people", "digests", "jobs",
          "needs_actions", "needs_themes", "needs_answers", "needs_invitations", "needs_rounds",
          "responders", "sla_policies"]


@pytest.fixture
def db_url(pg_database: str | None, sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty database for one test."""
    if pg_database:
        engine = create_engine(pg_database)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        engine.dispose()
        return pg_database
    path = tmp_path / "askdesk.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


# --------------------------------------------------------------------------------------------
# Slack simulator and app
# --------------------------------------------------------------------------------------------
@pytest.fixture
def sim() -> Iterator[SlackSimulator]:
    simulator = SlackSimulator()
    populate(simulator)
    simulator.start()
    yield simulator
    simulator.stop()


def make_settings(sim: SlackSimulator, db_url: str, config: dict[str, Any] | None = None, **overrides: Any) -> Settings:
    parsed = parse_config("test.toml", config or TEST_CONFIG)
    values = dict(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, slack_api_url=sim.base_url,
                  database_url=db_url, listener_threads=16, http_threads=16, **parsed)
    return Settings(**{**values, **overrides})


class FakeClock:
    """An injectable clock for services (the scheduler itself runs in real time with short ticks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, **kwargs: float) -> datetime:
        with self._lock:
            self.now += timedelta(**kwargs)
            return self.now

    def set(self, when: datetime) -> None:
        with self._lock:
            self.now = when


class PacerTime:
    """The pacer's monotonic clock in tests: real time plus every wait it was asked to sleep, which
    returns at once. Sends stay spaced as in production (the pacer's bookkeeping is the same), but no
    test spends real seconds waiting for a channel's next slot."""

    def __init__(self) -> None:
        self.slept = 0.0
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return time.monotonic() + self.slept

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept += max(0.0, seconds)


@dataclass
class Harness:
    sim: SlackSimulator
    deps: Deps
    app: Any
    url: str
    driver: SlackDriver
    clock: FakeClock
    scheduler: Clock | None = None
    manual_clock: Clock | None = None

    def tick(self) -> None:
        """Run one scheduler tick in this thread (deterministic alternative to the real clock).

        One Clock is reused: on PostgreSQL it holds the scheduler's advisory lock for the test."""
        if self.scheduler is not None:
            self.scheduler.tick()
            return
        if self.manual_clock is None:
            self.manual_clock = Clock(self.deps)
        self.manual_clock.tick()

    def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        return self.sim.wait_for(predicate, timeout=timeout)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        return self.sim.messages(channel)

    def triage(self, channel: str = FINANCE_CH) -> list[dict[str, Any]]:
        return [m for m in self.sim.messages(channel) if not m.get("thread_ts") or m.get("thread_ts") == m.get("ts")]


def start_harness(sim: SlackSimulator, settings: Settings, *, clock: FakeClock | None = None,
                  scheduler: bool = False) -> tuple[Harness, Callable[[], None]]:
    clock = clock or FakeClock()
    engine = make_engine(settings.database_url)
    deps = build_deps(settings, engine, now=clock, workers=4)
    pacer_time = PacerTime()
    deps.pacer = ChannelPacer(clock=pacer_time.clock, sleep=pacer_time.sleep)
    app = create_app(deps)
    server = create_server(app, engine, host="127.0.0.1", port=0, threads=settings.http_threads)
    closing = threading.Event()

    def serve() -> None:
        try:
            server.run()
        except OSError:  # close() from the test thread pulls the sockets from under waitress's select
            if not closing.is_set():
                raise

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/slack/events"
    driver = SlackDriver(url, SIGNING_SECRET, sim)
    clock_obj = Clock(deps).start() if scheduler else None
    harness = Harness(sim=sim, deps=deps, app=app, url=url, driver=driver, clock=clock, scheduler=clock_obj)

    def stop() -> None:
        if clock_obj:
            clock_obj.stop()
        if harness.manual_clock is not None:
            harness.manual_clock.leadership.release()
        closing.set()
        server.close()
        app.listener_runner.listener_executor.shutdown(wait=True)
        deps.outbox.stop()
        engine.dispose()

    return harness, stop


@pytest.fixture
def settings(sim: SlackSimulator, db_url: str) -> Settings:
    return make_settings(sim, db_url)


@pytest.fixture
def h(sim: SlackSimulator, settings: Settings) -> Iterator[Harness]:
    harness, stop = start_harness(sim, settings)
    yield harness
    stop()
