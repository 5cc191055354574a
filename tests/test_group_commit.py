"""Group commit (storage.group_commit), on the real database of the run (SQLite file or PostgreSQL):
the request path's own writes from many threads, batched, each caller getting its own result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage import requests as queries
from storage.group_commit import GroupCommitter, group_commit
from storage.models import Job, ProcessedEvent, Request

EVENTS = ProcessedEvent.__table__  # type: ignore[attr-defined]
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def add_events(session: Session, event_ids: list[str]) -> list[str]:
    """A group-commit op: one INSERT for every item of the batch."""
    session.exec(insert(EVENTS), params=[{"event_id": e, "received_at": NOW} for e in event_ids])  # type: ignore[call-overload]
    return event_ids


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(EVENTS)).scalar_one())


def _new(text: str) -> queries.NewRequest:
    values = dict(team="finance", origin_team="finance", requester_id="U1", summary=text, text=text,
                  created_at=NOW, updated_at=NOW)
    return queries.NewRequest(values=values, detail=None, job_kind="post_request",
                              job_key=lambda rid: f"post:{rid}:0", lease=("me", NOW + timedelta(seconds=15)))


def _wait_queued(committer: GroupCommitter, n: int) -> None:
    for _ in range(1000):
        if committer.queued() >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError("units were not queued")


def _blocked(committer: GroupCommitter) -> tuple[threading.Event, threading.Thread]:
    """Occupy the committer with a unit that waits, so the next units queue up into one batch."""
    release, started = threading.Event(), threading.Event()

    def hold(session: Session, items: list[object]) -> list[None]:
        started.set()
        release.wait(10)
        return [None] * len(items)

    runner = threading.Thread(target=committer.run, args=(hold, None))
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


def test_concurrent_requests_share_batches_and_each_caller_gets_its_own_rows(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    got: dict[str, tuple[Request, int | None]] = {}

    def caller(n: int) -> None:
        for i in range(15):
            text = f"caller {n} question {i}"
            got[text] = committer.run(queries.insert_new, _new(text), urgent=bool(i % 2))

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert committer.units == 180 and committer.batches < 180  # batches were shared...
    with Session(engine) as session:  # ...and every caller got its own request and job
        for text, (req, job_id) in got.items():
            stored, job = session.get(Request, req.id), session.get(Job, job_id)
            assert stored is not None and stored.text == req.text == text
            assert job is not None and job.key == f"post:{req.id}:0"
    assert len({req.id for req, _ in got.values()}) == 180


def test_one_batch_writes_each_table_once_and_a_bad_item_fails_alone(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    committer.run(add_events, "EvTaken")
    batches = committer.batches
    outcomes = in_one_batch(committer, {e: (lambda e=e: committer.run(add_events, e))  # type: ignore[misc]
                                        for e in ("EvA", "EvTaken", "EvB")})
    assert outcomes["EvA"] == "EvA" and outcomes["EvB"] == "EvB"
    assert isinstance(outcomes["EvTaken"], IntegrityError)  # the duplicate key, and only it
    assert _count(engine) == 3
    assert committer.batches - batches == 1 + 2  # the blocker's batch, then A and B alone after the failure


def test_a_batch_of_good_items_commits_together(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    outcomes = in_one_batch(committer, {e: (lambda e=e: committer.run(add_events, e))  # type: ignore[misc]
                                        for e in ("Ev1", "Ev2", "Ev3")})
    assert outcomes == {"Ev1": "Ev1", "Ev2": "Ev2", "Ev3": "Ev3"}
    assert (committer.batches, committer.units) == (2, 4)  # the blocker, then all three in one


def test_urgent_units_go_first(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    release, runner = _blocked(committer)
    order: list[str] = []

    def note(session: Session, names: list[str]) -> list[None]:
        order.extend(names)
        return [None] * len(names)

    def later(session: Session, names: list[str]) -> list[None]:
        return note(session, names)

    late = threading.Thread(target=committer.run, args=(later, "background"))
    late.start()
    _wait_queued(committer, 1)
    ack = threading.Thread(target=committer.run, args=(note, "ack"), kwargs={"urgent": True})
    ack.start()
    _wait_queued(committer, 2)
    release.set()
    for t in (runner, late, ack):
        t.join()
    assert order == ["ack", "background"]


def test_an_uncontended_write_runs_in_its_callers_thread(engine: Engine) -> None:
    seen: list[threading.Thread] = []

    def op(session: Session, items: list[None]) -> list[None]:
        seen.append(threading.current_thread())
        return items

    group_commit(engine, op, None)
    assert seen == [threading.current_thread()]  # no hand-off to another thread


def test_group_commit_inside_a_unit_is_refused(engine: Engine) -> None:
    committer = GroupCommitter(engine)

    def nested(session: Session, items: list[None]) -> list[None]:
        committer.run(add_events, "EvInner")
        return items

    with pytest.raises(RuntimeError, match="inside a unit"):
        committer.run(nested, None)
    committer.run(add_events, "EvAfter")  # the committer is still usable
    assert _count(engine) == 1
