"""The clock: one APScheduler 3 interval job that claims due rows from our own tables.

APScheduler's job store cannot be shared between processes and drops late jobs, so the schedule
lives in askdesk's tables (jobs, surveys, digests) and APScheduler only ticks. On PostgreSQL only
the instance holding an advisory lock drives the clock; another takes over when it dies.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bot.runtime.deps import Deps

log = logging.getLogger(__name__)
LOCK_KEY = 0x61736B6465736B  # "askdesk"
# Seconds of a tick that time-boxed housekeeping (SLA planning) may fill, counted from the tick's
# start: what the other tasks took that tick is taken off it, so the tick stays under 50 ms.
TICK_BUDGET = 0.02


class Leadership:
    """Only one instance drives the clock: a session-level advisory lock on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self.is_leader = engine.dialect.name != "postgresql"

    def check(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001 - the lock went with the connection
                log.warning("lost the scheduler lock (database connection dropped)")
                self.release()
        try:
            conn = self.engine.connect()
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar()
            conn.commit()
        except Exception as exc:  # noqa: BLE001
            log.warning("scheduler lock unavailable: %s", type(exc).__name__)
            return False
        if got:
            self._conn, self.is_leader = conn, True
            log.info("this instance now drives the scheduler")
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:  # unlock first: closing alone frees the lock only once the server notices, a moment later
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                self._conn.commit()
            except Exception:  # noqa: BLE001 - the connection is gone, and the lock with it
                pass
            try:
                self._conn.invalidate()
            except Exception:  # noqa: BLE001
                pass
        self._conn, self.is_leader = None, self.engine.dialect.name != "postgresql"


class Clock:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.leadership = Leadership(deps.engine)
        self._last_run: dict[str, float] = {}
        self._busy = threading.Lock()
        tick = deps.settings.scheduler.tick.total_seconds()
        self.scheduler = BackgroundScheduler(timezone=UTC, job_defaults={
            "coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.scheduler.add_job(self.tick, "interval", seconds=tick, kwargs={"stream": True}, id="askdesk-clock",
                               replace_existing=True)
        self.scheduler.add_listener(self._job_error, EVENT_JOB_ERROR)

    def _job_error(self, event: JobExecutionEvent) -> None:
        log.error("scheduler tick failed: %r", event.exception)

    def start(self) -> Clock:
        self.scheduler.start()
        self.scheduler.modify_job("askdesk-clock", next_run_time=datetime.now(UTC))
        return self

    def tick(self, *, stream: bool = False) -> None:
        """One tick: if leader, run due housekeeping, then drain due jobs batch by batch (returning when
        they are done; the running clock `stream`s instead: it hands due jobs to idle workers and
        returns, and the next tick hands over more while slow ones are still running)."""
        started = time.monotonic()
        if not self._busy.acquire(blocking=False):
            return
        try:
            if not self.leadership.check():
                return
            self._housekeeping(started)
            batch = self.deps.settings.scheduler.batch_size
            if stream:
                self.deps.outbox.feed(limit=batch)
                return
            for _ in range(50):
                result = self.deps.outbox.tick(limit=batch)
                if result.claimed < batch:
                    break
        finally:
            self._busy.release()

    def _housekeeping(self, started: float) -> None:
        """The periodic tasks that are due; the time-boxed ones get what is left of TICK_BUDGET."""
        for item in self.deps.outbox.periodic:
            if started - self._last_run.get(item.name, -1e9) < item.every:
                continue
            self._last_run[item.name] = started
            try:
                if item.timeboxed:
                    item.run(self.deps, until=started + TICK_BUDGET)
                else:
                    item.run(self.deps)
            except Exception:  # noqa: BLE001 - keep ticking
                log.exception("periodic task %s failed", item.name)

    def stop(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self.leadership.release()
