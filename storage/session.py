"""Sessions. Who commits: `session_scope()` commits on success and rolls back on error; query
functions only flush. One session per unit of work (listener call, job run); never share one
across threads."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import ProcessedEvent


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


def reader(engine: Engine) -> Engine:
    """`engine` for reads only: on SQLite its transactions read a WAL snapshot and never wait for the
    write lock (see storage.engine)."""
    return engine.execution_options(askdesk_read_only=True)


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only session: on SQLite it reads a WAL snapshot without taking the write lock, so a
    digest over a million rows never blocks writers, nor a look-up waits behind them. The objects it
    loaded stay usable after it (closing ends the transaction without expiring them)."""
    session = Session(reader(engine), expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


def ping(engine: Engine) -> bool:
    """Whether the database answers a read (on SQLite without waiting for the write lock)."""
    try:
        with reader(engine).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def write_problem(engine: Engine) -> str | None:
    """Commit a real write (a row inserted and deleted in one transaction): None when it worked, else
    why not, in a few words (a full disk, a read-only database, a lock held elsewhere, no server)."""
    table = ProcessedEvent.__table__  # type: ignore[attr-defined]
    probe = f"askdesk-write-check-{os.getpid()}-{threading.get_ident()}"
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(event_id=probe, received_at=datetime.now(UTC)))
            conn.execute(table.delete().where(table.c.event_id == probe))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "writes fail"
        return describe(exc)


def describe(exc: BaseException) -> str:
    """A database error in a few words: the driver's exception name and the first line of its message."""
    orig = getattr(exc, "orig", None) or exc
    first = str(orig).splitlines()[0][:200] if str(orig) else ""
    return f"{type(orig).__name__}: {first}" if first else type(orig).__name__


def dialect_insert(session: Session) -> Any:
    """The `insert` of the session's database (PostgreSQL's or SQLite's), for `ON CONFLICT` clauses."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
