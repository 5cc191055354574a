"""Is the database usable? `/healthz` and `askdesk status` ask by committing a real write, so a full
disk, a read-only database or a lock held elsewhere count as trouble, not only a server that cannot
be reached. The answer is kept for a quarter of a second, so a busy prober cannot add load of its own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from storage.session import write_problem

log = logging.getLogger(__name__)


class DatabaseHealth:
    def __init__(self, engine: Engine, *, keep: float = 0.25, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.keep, self.clock = engine, keep, clock
        self._lock = threading.Lock()
        self._checked = -1e9
        self._problem: str | None = None

    def problem(self) -> str | None:
        """None while a write commits; else why it does not (logged at ERROR when it starts, and
        when it ends at INFO)."""
        with self._lock:
            if self.clock() - self._checked < self.keep:
                return self._problem
            problem = write_problem(self.engine)
            if problem and not self._problem:
                log.error("database writes fail: %s", problem)
            elif self._problem and not problem:
                log.info("database writes work again")
            self._problem, self._checked = problem, self.clock()
            return problem
