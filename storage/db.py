"""Engine, sessions and schema migrations.

Who commits: `session_scope()` commits on success and rolls back on error; query functions only
flush. One session per unit of work (listener call, job run); never share one across threads.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


class WriterLock:
    """A lock held by one thread of one process at a time: a thread lock, plus an exclusive `flock`
    on `<database>-writer` when the database is a file (processes sharing it queue in the kernel,
    without polling). The lock file is never written; it only carries the lock."""

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

    def acquire(self) -> None:
        self._thread.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread.release()
            raise

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def release(self) -> None:
        try:
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


def make_engine(url: str, *, pool_size: int = 20) -> Engine:
    """Create an engine tuned for the URL's backend (SQLite WAL + busy timeout, or PostgreSQL pool)."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=4 * pool_size,
            pool_timeout=30,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            dbapi_conn.isolation_level = None  # let the "begin" hook below open transactions
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        # One writer at a time: SQLite's own busy handler sleeps in growing steps (up to 100 ms)
        # when writers collide, so writers queue on a lock instead (threads of this process, and
        # other processes on the same file: `askdesk run --workers N`), and each transaction takes
        # SQLite's write lock at BEGIN (no read-to-write upgrade failures).
        writer = WriterLock(make_url(url).database)

        def _release(info: dict) -> None:
            if info.pop("askdesk_writer", False):
                writer.release()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("askdesk_read_only"):
                conn.exec_driver_sql("BEGIN")  # a WAL snapshot: readers never wait for writers
                return
            writer.acquire()
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
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
    )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


Writer = Session | Connection  # what the hot-path write helpers accept


def connection_of(target: Writer) -> Connection:
    return target.connection() if isinstance(target, Session) else target


@contextmanager
def write_scope(engine: Engine) -> Iterator[Connection]:
    """A Core transaction (commit on success, rollback on error) for hot paths that only run
    prepared Core statements: no ORM session to set up and tear down."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only session for long reports (digests): on SQLite it reads a WAL snapshot without
    taking the write lock, so a digest over a million rows never blocks writers."""
    session = Session(engine.execution_options(askdesk_read_only=True), expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
