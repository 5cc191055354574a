"""`askdesk run --http --workers N`: N gunicorn gthread workers accept on one listening socket, under
gunicorn's master process, which replaces a worker that dies.

A single CPython process is bound to one core by the GIL; on a machine with more cores, workers
multiply the CPU available to Bolt, SQLAlchemy and the Slack client. The master migrated the database
and checked Slack before starting them; each worker builds its own engine, app and scheduler clock
after the fork. Scheduled work does not run N times: on PostgreSQL only the clock holding the advisory
lock drives the schedule; on SQLite every clock claims due rows with one conditional UPDATE and
completes them fenced by its lease, and the periodic tasks only insert rows with unique keys.

`/healthz` answers 503 while fewer than N workers are booted (`WorkerBoard`). SIGHUP makes the master
validate the settings on disk first; if they work, new workers start on them and the old ones drain.
SIGTERM drains every worker (in-flight requests, listener work and jobs) and stops.

A worker that cannot start (its app fails to build: out of memory or threads, a SQLite file gone, ...)
logs why at ERROR and exits; the master logs at ERROR too and tries again after a backoff (1 s,
doubling up to a minute, back to 1 s once every worker is up) while the other workers keep serving.
It never gives up: service resumes by itself once the cause is gone, and `/healthz` answers 503
meanwhile. (Plain gunicorn would stop the whole server, healthy workers included, at the first
worker that fails to boot.)
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import socket
import sys
import time
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.glogging import Logger

from bot.config import Settings

log = logging.getLogger("askdesk")
GRACEFUL_TIMEOUT = 90  # seconds a worker has to drain on SIGTERM / SIGHUP before it is killed
BOOT_FAILED = 75  # a worker's exit code when its app could not be built (EX_TEMPFAIL; gunicorn's own
# boot error code, 3, would make its master stop every worker)
MAX_BOOT_BACKOFF = 60.0  # seconds between tries at most, while workers fail to start


class WorkerBoard:
    """Which workers are booted, in memory shared by the master and its workers, written without
    locks: the master reserves a slot before forking a worker and clears it when it reaps the
    worker; the worker marks its own slot once its app is built."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.slots = multiprocessing.RawArray(ctypes.c_int, 4 * expected + 4)  # old and new workers on reload
        self._free = list(range(len(self.slots)))  # master only

    def reserve(self) -> int:
        slot = self._free.pop(0) if self._free else len(self.slots) - 1
        self.slots[slot] = 0
        return slot

    def mark_ready(self, slot: int, pid: int) -> None:
        self.slots[slot] = pid

    def release(self, slot: int) -> None:
        self.slots[slot] = 0
        if slot not in self._free:
            self._free.append(slot)

    def missing(self) -> int:
        return max(0, self.expected - sum(1 for pid in self.slots if pid))

    def booted(self, slot: int) -> bool:
        return bool(self.slots[slot])


class BootBackoff:
    """When the master may start the next worker, after workers failed to start (master only)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock, self.failures, self.next_try = clock, 0, 0.0

    def failed(self) -> float:
        """A worker failed to start: seconds until the next may."""
        self.failures += 1
        delay = min(MAX_BOOT_BACKOFF, 2.0 ** (self.failures - 1))
        self.next_try = self.clock() + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.next_try = 0, 0.0

    def may_start(self) -> bool:
        return self.clock() >= self.next_try


class AskdeskApplication(BaseApplication):
    """Gunicorn's view of askdesk: its settings, hooks, and the WSGI app each worker builds."""

    def __init__(self, settings: Settings, listener: socket.socket, *, workers: int, migrate: bool) -> None:
        self.settings, self.listener, self.workers, self.migrate = settings, listener, workers, migrate
        self.board = WorkerBoard(workers)
        self.backoff = BootBackoff()
        self.generation: Any = None  # in a worker: what it serves
        super().__init__()

    def load_config(self) -> None:
        options = {
            "bind": [f"fd://{self.listener.fileno()}"], "workers": self.workers, "worker_class": "gthread",
            "threads": self.settings.http_threads, "graceful_timeout": GRACEFUL_TIMEOUT, "timeout": 60,
            "keepalive": 5, "proc_name": "askdesk", "loglevel": self.settings.log_level.lower(),
            "logger_class": GunicornLogs, "control_socket_disable": True,
            "pre_fork": self._pre_fork, "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit, "child_exit": self._child_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In a worker, after the fork: build the app on the settings the master validated."""
        from bot.runtime.database import open_database
        from bot.runtime.serving import Generation

        try:
            engine = open_database(self.settings, migrate=False, verify=False)  # the master checked the schema
            generation = Generation(self.settings, engine, workers_missing=self.board.missing)
            generation.start()
        except Exception as exc:  # noqa: BLE001 - any reason: the master tries again later
            log.error("worker %d could not start: %s", os.getpid(), _cause(exc))
            sys.exit(BOOT_FAILED)  # nothing to drain: it has served nothing
        self.generation = generation
        return generation.wsgi

    # gunicorn hooks ---------------------------------------------------------------------------
    def _pre_fork(self, server: Any, worker: Any) -> None:  # master
        worker.askdesk_slot = self.board.reserve()

    def _post_worker_init(self, worker: Any) -> None:  # worker, app built
        self.board.mark_ready(worker.askdesk_slot, worker.pid)

    def _child_exit(self, server: Any, worker: Any) -> None:  # master, worker reaped
        if not self.board.booted(worker.askdesk_slot):
            delay = self.backoff.failed()
            log.error("a worker failed to start (%d in a row); %d of %d workers running; next try in %.0f s",
                      self.backoff.failures, len(server.WORKERS), self.workers, delay)
        self.board.release(worker.askdesk_slot)

    def _worker_exit(self, server: Any, worker: Any) -> None:  # worker, after it stopped serving
        if self.generation is not None:
            self.generation.stop()


class GunicornLogs(Logger):
    """gunicorn's own messages (workers booting, exiting, killed) go through askdesk's logging: one
    format, secrets redacted."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True


class Supervisor(Arbiter):
    """gunicorn's master, with SIGHUP validating the settings before any worker is replaced, and
    workers that fail to start tried again after a backoff (see the module doc)."""

    app: AskdeskApplication

    def manage_workers(self) -> None:
        if len(self.WORKERS) < self.num_workers and not self.app.backoff.may_start():
            return  # the next try waits; the running workers keep serving
        if self.app.board.missing() == 0:
            self.app.backoff.succeeded()
        super().manage_workers()

    def handle_hup(self) -> None:
        from bot.runtime.serving import validated_settings

        settings = validated_settings(socket_mode=False, migrate=self.app.migrate)
        if settings is None:
            return
        self.app.settings = settings
        log.info("SIGHUP: configuration valid; starting workers on it, draining the old ones")
        super().handle_hup()


def _cause(exc: BaseException) -> str:
    from bot.runtime.logs import redact

    return redact(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": "))


def serve_workers(settings: Settings, listener: socket.socket, *, workers: int, migrate: bool) -> int:
    import bot.app  # noqa: F401 - imported once here, shared by the forked workers
    import bot.runtime.jobs  # noqa: F401

    host, port = listener.getsockname()[:2]
    print(f"askdesk listening on http://{host}:{port} with {workers} workers", flush=True)
    master = os.getpid()
    try:
        Supervisor(AskdeskApplication(settings, listener, workers=workers, migrate=migrate)).run()
    except SystemExit as exit:  # gunicorn ends its master, and each worker, with sys.exit
        code = exit.code if isinstance(exit.code, int) else 1
        if os.getpid() != master:  # a worker: leave now, never unwind through the master's frames
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        return code
    finally:
        if os.getpid() == master:
            listener.detach()  # gunicorn closed the descriptor when it stopped listening
    return 0
