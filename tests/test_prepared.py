"""storage.db.Prepared: hot-path statements run on the DB-API cursor, on the real database of the run,
behave like Connection.execute: same stored values, SQLAlchemy's exceptions, recovery after a lost
connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

from storage import jobs
from storage.db import Prepared
from storage.models import Job, ProcessedEvent

EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]
ADD = Prepared(insert(EVENTS).values(event_id=bindparam("event_id"), received_at=bindparam("at"))
               .returning(EVENTS.c.event_id))


def test_values_are_stored_as_connection_execute_stores_them(engine: Engine) -> None:
    at = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)
    with engine.begin() as conn:
        assert ADD.execute(conn, {"event_id": "EvPrepared", "at": at}) == [("EvPrepared",)]
        conn.execute(insert(EVENTS).values(event_id="EvCore", received_at=at))
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS.c.event_id, EVENTS.c.received_at).order_by(EVENTS.c.event_id)).all()
        raw = conn.execute(text("SELECT received_at FROM processed_events ORDER BY event_id")).scalars().all()
    assert [r.received_at for r in rows] == [at, at]  # read back through the column type, both alike
    assert raw[0] == raw[1]  # ...and stored byte for byte alike


def test_a_job_enqueued_through_it_reads_back_whole(engine: Engine) -> None:
    until = datetime.now(UTC) + timedelta(seconds=60)
    with engine.begin() as conn:
        job_id = jobs.enqueue(conn, kind="post_request", key="post:1:0", payload={"request_id": 1},
                              lease=("me", until))
        assert jobs.enqueue(conn, kind="post_request", key="post:1:0") is None  # same key: nothing new
    with engine.connect() as conn:
        job = conn.execute(select(Job.__table__).where(Job.__table__.c.id == job_id)).one()  # type: ignore[attr-defined]
    assert (job.status, job.attempts, job.lease_owner, job.payload) == ("running", 1, "me", '{"request_id":1}')
    assert job.lease_until == until
    with engine.begin() as conn:
        assert jobs.finish(conn, job_id=job_id, owner="someone else") is False  # fenced
        assert jobs.finish(conn, job_id=job_id, owner="me") is True


def test_driver_errors_come_out_as_sqlalchemy_errors(engine: Engine) -> None:
    at = datetime.now(UTC)
    with engine.begin() as conn:
        ADD.execute(conn, {"event_id": "EvTwice", "at": at})
    with pytest.raises(IntegrityError), engine.begin() as conn:
        ADD.execute(conn, {"event_id": "EvTwice", "at": at})
    with engine.begin() as conn:  # the pool hands out a working connection afterwards
        ADD.execute(conn, {"event_id": "EvAfter", "at": at})


def test_a_connection_killed_mid_transaction_is_invalidated(engine: Engine, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a server-side kill needs PostgreSQL")
    with pytest.raises(DBAPIError) as caught, engine.begin() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.commit()
        ADD.execute(conn, {"event_id": "EvLost", "at": datetime.now(UTC)})
    assert caught.value.connection_invalidated
    with engine.begin() as conn:  # the dead connection left the pool; the next one works
        ADD.execute(conn, {"event_id": "EvNext", "at": datetime.now(UTC)})


def test_the_lease_heartbeat_skips_a_job_being_finished_instead_of_waiting(engine: Engine, db_url: str) -> None:
    """A heartbeat locking many job rows must never wait on a batch that is finishing some of them
    (two such transactions deadlock on PostgreSQL): the row held elsewhere is skipped this beat."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    until = datetime.now(UTC) + timedelta(seconds=60)
    with engine.begin() as conn:
        held = jobs.enqueue(conn, kind="post_request", key="post:7:0", lease=("me", until))
        free = jobs.enqueue(conn, kind="post_request", key="post:8:0", lease=("me", until))
    assert held is not None and free is not None
    with engine.connect() as finisher:
        finisher.execute(text("SET lock_timeout = '5s'"))
        finisher.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": held})  # mid-finish
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))  # waiting would fail the test, not hang it
            later = until + timedelta(seconds=30)
            assert jobs.renew(conn, job_ids=[held, free], owner="me", until=later) == 1
        finisher.rollback()
    with engine.connect() as conn:
        leases = dict(conn.execute(text("SELECT id, lease_until FROM jobs")).all())
    assert leases[free] == later and leases[held] == until
