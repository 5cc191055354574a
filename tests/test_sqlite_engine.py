"""The SQLite engine (storage.engine): writers in several processes queue on the cross-process writer
lock, and a background thread checkpoints the WAL; on the real database of the run (the tests skip
on PostgreSQL, which needs neither)."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine, make_url

from storage.engine import WalCheckpointer, make_engine
from storage.models import ProcessedEvent

EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())


def _hammer(url: str, tag: str, n: int) -> None:
    engine = make_engine(url)
    try:
        for i in range(n):
            with engine.begin() as conn:  # a read then a write in one transaction, like the services
                conn.execute(select(func.count()).select_from(EVENTS)).scalar_one()
                conn.execute(insert(EVENTS).values(event_id=f"Ev{tag}-{i}", received_at=datetime.now(UTC)))
    finally:
        engine.dispose()


def test_sqlite_writers_in_several_processes_queue_on_the_lock(db_url: str, engine: Engine) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the flock writer lock is SQLite's; PostgreSQL locks rows itself")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(db_url, str(p), 150)) for p in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]  # no "database is locked" in any of them
    assert _count(engine) == 450


def in_database_file(path: str) -> int:
    """Rows in the main database file alone (the WAL ignored); -1 if it was being written."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
        try:
            return int(raw.execute("SELECT count(*) FROM processed_events").fetchone()[0])
        except sqlite3.DatabaseError:  # read while a checkpoint was writing the file: look again
            return -1


def test_sqlite_wal_is_checkpointed_in_the_background(db_url: str, engine: Engine) -> None:
    """Commits only append to the WAL (SQLite's automatic checkpoint is a backstop at 10,000 pages);
    a background thread moves committed pages into the database file."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL checkpoints on its own")
    path = make_url(db_url).database
    assert path
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
    with engine.begin() as conn:
        for i in range(200):
            conn.execute(insert(EVENTS).values(event_id=f"EvWal{i}", received_at=datetime.now(UTC)))

    for _ in range(300):  # the checkpointer runs every second: poll with a bound
        if in_database_file(path) == 200:
            break
        threading.Event().wait(0.02)
    assert in_database_file(path) == 200


def test_the_checkpointer_keeps_up_with_a_steady_stream_of_writes(db_url: str, engine: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """While writes go on it looks again every BUSY_INTERVAL, not every INTERVAL (planning a large SLA
    backlog left it behind at one look a second, and a COMMIT then had to copy 10,000 pages)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL checkpoints on its own")
    monkeypatch.setattr(WalCheckpointer, "INTERVAL", 3600.0)  # only the busy pace can show here
    monkeypatch.setattr(WalCheckpointer, "BUSY_INTERVAL", 0.02)
    streaming = make_engine(db_url)
    path = make_url(db_url).database
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set():
            with streaming.begin() as conn:
                conn.execute(insert(EVENTS).values(event_id=f"EvStream{i}", received_at=datetime.now(UTC)))
            i += 1
            stop.wait(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        seen: set[int] = set()
        for _ in range(500):  # bounded: the main file catches up again and again while writes go on
            seen.add(in_database_file(path))
            if len(seen - {-1, 0}) >= 3:
                break
            threading.Event().wait(0.01)
    finally:
        stop.set()
        writer.join()
        streaming.dispose()
    assert len(seen - {-1, 0}) >= 3
