"""Group commit (storage.db.GroupCommitter) and the cross-process SQLite writer lock, on the real
database of the run (SQLite file or PostgreSQL)."""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError

from storage.db import GroupCommitter
from storage.engine import make_engine
from storage.models import ProcessedEvent

EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]


def _add(event_id: str) -> object:
    def work(conn: Connection) -> str:
        conn.execute(insert(EVENTS).values(event_id=event_id, received_at=datetime.now(UTC)))
        return event_id
    return work


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())


def test_many_threads_share_transactions_and_all_commit(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    results: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(25):
            done = committer.run(_add(f"Ev{n}-{i}"))  # type: ignore[arg-type]
            with lock:
                results.append(done)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 400 and _count(engine) == 400  # each caller returned after its commit
    assert committer.units == 400 and committer.batches < 400  # ...and commits were shared


def _blocked(committer: GroupCommitter) -> tuple[threading.Event, threading.Thread]:
    """Occupy the committer with a unit that waits, so the next units queue up into one batch."""
    release, started = threading.Event(), threading.Event()

    def hold(conn: Connection) -> None:
        started.set()
        release.wait(10)

    runner = threading.Thread(target=committer.run, args=(hold,))
    runner.start()
    assert started.wait(10)  # the committer is inside this unit's transaction now
    return release, runner


def in_one_batch(committer: GroupCommitter, calls: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run each call in its own thread so that all their units land in one batch; what each call
    returned, or the exception it raised, by name."""
    release, runner = _blocked(committer)
    outcomes: dict[str, object] = {}

    def submit(name: str) -> None:
        try:
            outcomes[name] = calls[name]()
        except Exception as exc:  # noqa: BLE001
            outcomes[name] = exc

    threads = [threading.Thread(target=submit, args=(name,)) for name in calls]
    for t in threads:
        t.start()
    _wait_queued(committer, len(calls))
    release.set()
    for t in [runner, *threads]:
        t.join()
    return outcomes


def _wait_queued(committer: GroupCommitter, n: int) -> None:
    for _ in range(500):
        if len(committer._queue) + len(committer._urgent) >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError("units were not queued")


def test_a_failing_unit_fails_alone(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    committer.run(_add("EvTaken"))  # type: ignore[arg-type]
    outcomes = in_one_batch(committer, {e: (lambda e=e: committer.run(_add(e)))  # type: ignore[misc]
                                        for e in ("EvA", "EvTaken", "EvB")})
    assert outcomes["EvA"] == "EvA" and outcomes["EvB"] == "EvB"
    assert isinstance(outcomes["EvTaken"], IntegrityError)  # the duplicate key, and only it
    assert _count(engine) == 3


def test_urgent_units_go_first(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    release, runner = _blocked(committer)
    order: list[str] = []

    def unit(name: str) -> object:
        def work(conn: Connection) -> None:
            order.append(name)
        return work

    late = threading.Thread(target=committer.run, args=(unit("background"),))
    late.start()
    _wait_queued(committer, 1)
    ack = threading.Thread(target=lambda: committer.run(unit("ack"), urgent=True))  # type: ignore[arg-type]
    ack.start()
    _wait_queued(committer, 2)
    release.set()
    for t in (runner, late, ack):
        t.join()
    assert order == ["ack", "background"]


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


def test_an_uncontended_write_runs_in_its_callers_thread(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    seen: list[threading.Thread] = []

    def work(conn: Connection) -> None:
        seen.append(threading.current_thread())

    committer.run(work)
    assert seen == [threading.current_thread()]  # no hand-off to another thread


def test_group_commit_inside_a_unit_is_refused(engine: Engine) -> None:
    committer = GroupCommitter(engine)

    def nested(conn: Connection) -> None:
        committer.run(_add("EvInner"))  # type: ignore[arg-type]

    with pytest.raises(RuntimeError, match="inside a unit"):
        committer.run(nested)
    committer.run(_add("EvAfter"))  # type: ignore[arg-type] - the committer is still usable
    assert _count(engine) == 1


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

    def in_database_file() -> int:  # the main file alone, WAL ignored
        with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as raw:
            return int(raw.execute("SELECT count(*) FROM processed_events").fetchone()[0])

    for _ in range(300):  # the checkpointer runs every second: poll with a bound
        if in_database_file() == 200:
            break
        threading.Event().wait(0.02)
    assert in_database_file() == 200
