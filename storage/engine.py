"""The database engine: SQLite tuned for many threads and processes (WAL, one writer at a time, a
background checkpointer), or a PostgreSQL pool."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import weakref

from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import create_engine

log = logging.getLogger(__name__)
# The longest any unit of work waits for the database before it fails (and a person is asked to try
# again): for a pooled connection, a new connection, the write lock (SQLite) or a row or table lock
# (PostgreSQL). Slack gives an acknowledgement 3 seconds.
DB_WAIT = 2.5


class WriterLock:
    """A lock held by one thread of one process at a time: a thread lock, plus an exclusive `flock`
    on `<database>-writer` when the database is a file (processes sharing it). Waiting for it is
    bounded (DB_WAIT). The lock file is never written; it only carries the lock."""

    def __init__(self, database: str | None) -> None:
        self._thread = threading.Lock()
        self._path = f"{database}-writer" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int | None:
        if self._path is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # opened anew after a fork: flock is per open file
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        return self._fd

    def acquire(self, timeout: float = DB_WAIT) -> bool:
        """Take the lock within `timeout` seconds; False when that did not happen."""
        deadline = time.monotonic() + timeout
        if not self._thread.acquire(timeout=timeout):
            return False
        try:
            fd, pause = self._file(), 0.0005
            while fd is not None:  # flock cannot time out: try, and wait a little longer each time
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        self._thread.release()
                        return False
                    time.sleep(pause)
                    pause = min(pause * 2, 0.004)
        except BaseException:
            self._thread.release()
            raise
        return True

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


class WalCheckpointer:
    """Checkpoints a SQLite WAL from a background thread, so that no commit has to.

    Left to itself, SQLite checkpoints inside the COMMIT that takes the WAL past 1,000 pages: with the
    write lock held, it copies the pages into the database file and syncs it, and every writer waits
    (under load, each slash command's ack with it: bursts of 100-200 ms every few seconds). Here
    commits only append; this thread runs a PASSIVE checkpoint (which never waits for readers or
    writers) every `INTERVAL` seconds, on its own connection, until the engine is gone; every
    `BUSY_INTERVAL` while writes go on (the WAL grew since the last look), so it keeps up with a steady stream of
    writes (planning a large SLA backlog: at 1 s it fell behind, the WAL passed the backstop and a
    planning COMMIT then copied some 10,000 pages itself, 50-80 ms). SQLite's own automatic
    checkpoint stays on at `BACKSTOP_PAGES` in case this thread cannot keep up."""

    INTERVAL = 1.0
    BUSY_INTERVAL = 0.1
    BACKSTOP_PAGES = 10_000

    def __init__(self, engine: Engine, path: str) -> None:
        self._engine = weakref.ref(engine)
        self.path = path
        # `engine.dispose()` closes this thread's connection too, before it returns: a file copied
        # right after (a test's template database) must not miss what is still in the WAL.
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._disposed = False
        event.listen(engine, "engine_disposed", self._close)
        threading.Thread(target=self._loop, name="askdesk-wal-checkpoint", daemon=True).start()

    def _close(self, *_: object) -> None:
        with self._lock:
            self._disposed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _loop(self) -> None:
        wait, seen = self.BUSY_INTERVAL, -1
        while True:
            time.sleep(wait)
            wait = self.INTERVAL
            with self._lock:
                if self._disposed or self._engine() is None or not os.path.exists(self.path):
                    self._disposed = True
                    if self._conn is not None:
                        self._conn.close()
                        self._conn = None
                    return
                try:
                    if self._conn is None:
                        self._conn = sqlite3.connect(self.path, timeout=1, isolation_level=None,
                                                     check_same_thread=False)
                    _busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames != seen or copied < frames:  # writes go on: come back soon
                        wait = self.BUSY_INTERVAL
                    seen = frames
                except sqlite3.Error as exc:  # busy, or the file went away: try again next time
                    log.debug("WAL checkpoint of %s skipped: %s", self.path, exc)


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    """Create an engine tuned for the URL's backend (SQLite WAL + busy timeout, or PostgreSQL pool)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": DB_WAIT},
            # the most recently used connection first: a SQLite connection drops its page cache when
            # another one wrote since its last transaction, so taking turns would keep every cache cold
            pool_use_lifo=True,
            pool_size=pool_size,
            max_overflow=4 * pool_size,
            pool_timeout=DB_WAIT,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(DB_WAIT * 1000)}")
            cur.execute(f"PRAGMA wal_autocheckpoint={WalCheckpointer.BACKSTOP_PAGES}")
            cur.close()

        # One writer at a time: SQLite's own busy handler sleeps in growing steps (up to 100 ms)
        # when writers collide, so writers queue on a lock instead (threads of this process, and
        # other processes on the same file: `askdesk run --workers N`), and each transaction takes
        # SQLite's write lock at BEGIN (no read-to-write upgrade failures).
        database = make_url(url).database
        writer = WriterLock(database)
        if database and database != ":memory:":
            WalCheckpointer(engine, database)

        def _release(info: dict) -> None:
            if info.pop("askdesk_writer", False):
                writer.release()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("askdesk_read_only"):
                conn.exec_driver_sql("BEGIN")  # a WAL snapshot: readers never wait for writers
                return
            if not writer.acquire():
                raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError(
                    f"database is locked (no write lock within {DB_WAIT} s)"))
            conn.info["askdesk_writer"] = True
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(conn.info)
                raise

        @event.listens_for(engine, "commit")
        def _sqlite_commit(conn) -> None:  # type: ignore[no-untyped-def]
            _release(conn.info)

        @event.listens_for(engine, "rollback")
        def _sqlite_rollback(conn) -> None:  # type: ignore[no-untyped-def]
            _release(conn.info)

        @event.listens_for(engine.pool, "reset")
        def _sqlite_reset(_dbapi_conn, record, _state) -> None:  # type: ignore[no-untyped-def]
            _release(record.info)

        @event.listens_for(engine.pool, "close")
        def _sqlite_close(_dbapi_conn, record) -> None:  # type: ignore[no-untyped-def]
            _release(record.info)

        return engine
    wait_ms = int(DB_WAIT * 1000)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=DB_WAIT,
        # fail fast instead of hanging: a server that does not answer (connect, data never acknowledged)
        # and locks another connection holds (lock_timeout)
        connect_args={"connect_timeout": max(2, round(DB_WAIT)), "tcp_user_timeout": wait_ms,
                      "options": f"-c lock_timeout={wait_ms}"},
    )
