"""Opening the database: `open_database(settings, migrate=...)` is the one way askdesk gets an engine.

Only `askdesk run` (unless `--no-migrate`) and `askdesk db upgrade` migrate; they do it under a lock
(a PostgreSQL advisory lock, or an exclusive lock on a file next to the SQLite database), so several
instances starting together apply each migration once. Every other command needs a database that
exists and is at the current schema, and says `askdesk db upgrade` otherwise: it never creates a
database file or changes a schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from functools import cache

from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.config import Settings, redact_url
from bot.runtime.logs import redact
from storage.engine import make_engine
from storage.migrate import alembic_config, current_revision, upgrade

log = logging.getLogger(__name__)
MIGRATION_LOCK_KEY = 0x61736B6D696772  # "askmigr"; the scheduler's leader lock uses another key
UPGRADE_HINT = "run `askdesk db upgrade`"


class DatabaseProblem(Exception):
    """The database is missing, unreachable or at another schema: a one-line message for the operator."""


@cache
def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def first_line(exc: BaseException) -> str:
    """The first line of an error (a database driver's, if wrapped), with secrets redacted."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return redact(first)


def open_database(settings: Settings, *, migrate: bool, verify: bool = True) -> Engine:
    """An engine for `settings.database_url`, checked to be reachable and at the current schema.

    With `migrate=True` the schema is first brought up to date (creating a SQLite file if needed);
    otherwise a missing database or an older schema is a `DatabaseProblem`. `verify=False` (a worker
    process whose supervisor has just checked) skips the checks: the engine connects when first used."""
    url = settings.database_url
    where = redact_url(url)
    path = _sqlite_file(url)
    if not migrate and path is not None and not os.path.exists(path):
        raise DatabaseProblem(f"database file {path} does not exist; {UPGRADE_HINT} to create it "
                              "(or set DATABASE_URL)")
    try:
        engine = make_engine(url)
    except ArgumentError as exc:
        raise DatabaseProblem(f"DATABASE_URL {where} is not a URL askdesk can use: {first_line(exc)}") from None
    if not verify and not migrate:
        return engine
    try:
        revision = current_revision(engine)
        if migrate and revision != head_revision():
            with _migration_lock(engine, path):
                upgrade(url)
            revision = current_revision(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise DatabaseProblem(f"cannot use the database {where}: {first_line(exc)}") from None
    if revision != head_revision():
        engine.dispose()
        if revision is None:
            raise DatabaseProblem(f"the database {where} has no askdesk tables yet; {UPGRADE_HINT}")
        raise DatabaseProblem(f"the database {where} is at schema revision {revision}, this askdesk needs "
                              f"{head_revision()}; {UPGRADE_HINT}")
    return engine


@contextlib.contextmanager
def _migration_lock(engine: Engine, sqlite_path: str | None) -> Iterator[None]:
    """Held while migrating, so that instances starting together migrate one after the other (the
    later ones then find the schema current and change nothing)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY}).scalar()
            if not got:
                log.info("another instance is migrating the database; waiting for it")
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
        return
    if sqlite_path is None:  # in-memory SQLite: nothing to share
        yield
        return
    fd = os.open(f"{sqlite_path}-migrate", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another instance is migrating the database; waiting for it")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
