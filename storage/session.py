"""Sessions. Who commits: `session_scope()` commits on success and rolls back on error; query
functions only flush. One session per unit of work (listener call, job run); never share one
across threads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session


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


def dialect_insert(session: Session) -> Any:
    """The `insert` of the session's database (PostgreSQL's or SQLite's), for `ON CONFLICT` clauses."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
