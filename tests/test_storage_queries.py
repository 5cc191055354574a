"""The write queries on every request's path (storage.requests, storage.jobs), on the real database of
the run (SQLite file or PostgreSQL): what they store, their uniques and their fencing."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.services.messages import shows
from storage import jobs
from storage import requests as queries
from storage.models import Job, Request, RequestEvent
from storage.session import session_scope

NOW = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)
LEASE = ("instance-a", NOW + timedelta(seconds=15))


def _values(text_: str, *, team: str = "finance") -> dict[str, object]:
    return dict(team=team, origin_team=team, requester_id=f"U{text_[:8]}", department="", summary=text_[:40],
                text=text_, category="Travel", urgency="high", source_channel="C0SRC",
                response_url="https://hooks.example/r", created_at=NOW, updated_at=NOW)


def _new(text_: str) -> queries.NewRequest:
    return queries.NewRequest(values=_values(text_), detail={"urgency": "high"}, job_kind="post_request",
                              job_key=lambda rid: f"post:{rid}:0", lease=LEASE)


def _new_request(engine: Engine, text_: str = "where is my refund?") -> tuple[int, int]:
    """A request with its leased post job, as the slash command stores them: (request id, job id)."""
    with session_scope(engine) as session:
        ((req, job_id),) = queries.insert_new(session, [_new(text_)])
    assert req.id is not None and job_id is not None
    return req.id, job_id


def _events(session: Session, request_id: int) -> list[RequestEvent]:
    return list(session.exec(select(RequestEvent).where(RequestEvent.request_id == request_id)
                             .order_by(RequestEvent.id)).all())  # type: ignore[arg-type]


def test_new_requests_are_stored_whole_with_their_events_and_leased_jobs(engine: Engine) -> None:
    items = [_new(f"question {i} ünïcode <!channel> 工资") for i in range(5)]
    with session_scope(engine) as session:
        made = queries.insert_new(session, items)
    assert len({req.id for req, _ in made}) == 5
    with Session(engine) as session:
        for (req, job_id), item in zip(made, items, strict=True):
            stored = session.get(Request, req.id)
            assert stored is not None
            for name in Request.model_fields:  # the returned object is what was stored, defaults included
                assert getattr(stored, name) == getattr(req, name), name
            for name, value in item.values.items():
                assert getattr(stored, name) == value, name  # datetimes round-trip, microseconds and zone
            assert (stored.status, stored.post_state, stored.resolution_count) == ("open", "pending", 0)
            assert [(e.kind, e.actor_id, e.team, e.at, json.loads(e.detail or "{}"))
                    for e in _events(session, stored.id)] == [  # type: ignore[arg-type]
                ("created", item.values["requester_id"], "finance", NOW, {"urgency": "high"})]
            job = session.get(Job, job_id)
            assert job is not None and job.key == f"post:{req.id}:0"
            assert (job.status, job.attempts, job.lease_owner, job.lease_until, json.loads(job.payload)) == (
                "running", 1, *LEASE, {"request_id": req.id})


def test_a_job_key_that_exists_is_left_alone(engine: Engine) -> None:
    rid, _ = _new_request(engine)
    with session_scope(engine) as session:  # a stale job holding the key the next request will want
        jobs.enqueue(session, kind="post_request", key=f"post:{rid + 1}:0")
    with session_scope(engine) as session:
        (first, first_job), (second, second_job) = queries.insert_new(session, [_new("first"), _new("second")])
    assert first.id == rid + 1 and first_job is None  # the existing job wins, as with enqueue()
    assert second.id == rid + 2 and second_job is not None


def test_a_job_key_is_unique_and_finishing_is_fenced(engine: Engine) -> None:
    rid, job_id = _new_request(engine)
    with session_scope(engine) as session:
        assert jobs.enqueue(session, kind="post_request", key=f"post:{rid}:0") is None  # same key: nothing new
    with session_scope(engine) as session:
        assert jobs.finish(session, job_id=job_id, owner="someone else") is False
        assert jobs.finish(session, job_id=job_id, owner="instance-a") is True
        assert jobs.finish(session, job_id=job_id, owner="instance-a") is False  # done already


def test_a_failing_unit_of_work_stores_nothing(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        queries.insert_new(session, [_new("half written")])
        raise RuntimeError("the process failed before its commit")
    with Session(engine) as session:
        assert session.exec(select(Request)).all() == []
        assert session.exec(select(RequestEvent)).all() == []
        assert session.exec(select(Job)).all() == []


def test_concurrent_writers_each_get_their_own_rows(engine: Engine) -> None:
    got: dict[str, tuple[int, int]] = {}
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                got[f"writer {n} question {i}"] = _new_request(engine, f"writer {n} question {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # no "database is locked", no deadlock
    assert len({rid for rid, _ in got.values()}) == 80
    with Session(engine) as session:
        for text_, (rid, job_id) in got.items():
            req, job = session.get(Request, rid), session.get(Job, job_id)
            assert req is not None and req.text == text_
            assert job is not None and job.key == f"post:{rid}:0"


def _record(request_id: int, job_id: int, **given: object) -> queries.PostRecord:
    args: dict[str, object] = dict(department="Sales", channel="C0FIN", ts="10.1", dm=("D0U1", "10.2"),
                                   new_post=True, at=NOW + timedelta(seconds=1), owner="instance-a")
    return queries.PostRecord(request_id=request_id, job_id=job_id, **{**args, **given})  # type: ignore[arg-type]


def test_a_post_record_stores_the_messages_an_event_and_finishes_the_job(engine: Engine) -> None:
    rid, job_id = _new_request(engine)
    with session_scope(engine) as session:
        [stored] = queries.record_posts(session, [_record(rid, job_id)])
    assert stored is not None and (stored["id"], stored["team"], stored["triage_ts"], stored["post_state"]) == (
        rid, "finance", "10.1", "posted")  # as stored: its poster compares it with what it showed
    with Session(engine) as session:
        req, job = session.get(Request, rid), session.get(Job, job_id)
        assert req is not None and job is not None
        assert (req.department, req.triage_channel, req.triage_ts, req.dm_channel, req.dm_ts, req.post_state,
                req.response_url) == ("Sales", "C0FIN", "10.1", "D0U1", "10.2", "posted", None)
        assert [(e.kind, e.at, json.loads(e.detail or "{}")) for e in _events(session, rid)] == [
            ("created", NOW, {"urgency": "high"}), ("posted", NOW + timedelta(seconds=1), {"channel": "C0FIN"})]
        assert job.status == "done"


def test_the_poster_sees_from_the_stored_row_whether_anything_it_shows_changed(engine: Engine) -> None:
    """After storing its post, the post job updates its messages only when the request as stored differs
    from what it rendered them from: a click meanwhile does, the SLA planner's bookkeeping does not."""
    with session_scope(engine) as session:
        ((req, job_id), (other, other_job)) = queries.insert_new(session, [_new("plain"), _new("clicked")])
    for posted in (req, other):  # what the post job sets on its copy while posting
        posted.department, posted.triage_channel, posted.triage_ts, posted.post_state = "Sales", "C0FIN", "10.1", \
            "posted"
    with session_scope(engine) as session:  # meanwhile: the planner plans one, a responder claims the other
        session.exec(text("UPDATE requests SET sla_plan = 'p1', sla_due_at = :due"), params={"due": NOW})
        session.exec(text("UPDATE requests SET status = 'claimed', assignee_id = 'U0ALICE' WHERE id = :id"),
                     params={"id": other.id})
    with session_scope(engine) as session:
        stored = queries.record_posts(session, [_record(req.id, job_id), _record(other.id, other_job)])  # type: ignore[arg-type]
    assert [shows(posted, row) for posted, row in zip((req, other), stored, strict=True)] == [True, False]  # type: ignore[arg-type]
    req.urgency = "low"  # any other column that differs counts
    assert not shows(req, stored[0])  # type: ignore[arg-type]


def test_a_post_record_keeps_a_known_dm_and_logs_only_new_posts(engine: Engine) -> None:
    rid, job_id = _new_request(engine)
    with session_scope(engine) as session:
        queries.record_posts(session, [_record(rid, job_id, dm=("D0KNOWN", "5.5"))])
    with session_scope(engine) as session:  # a retried post: same message found again, no new DM
        queries.record_posts(session, [_record(rid, job_id, channel="C0NEW", ts="6.6", dm=None, new_post=False)])
    with Session(engine) as session:
        req = session.get(Request, rid)
        assert req is not None
        assert (req.triage_channel, req.triage_ts, req.dm_channel, req.dm_ts) == ("C0NEW", "6.6", "D0KNOWN", "5.5")
        assert [e.kind for e in _events(session, rid)] == ["created", "posted"]


def test_post_records_of_gone_requests_and_other_owners_jobs(engine: Engine) -> None:
    (r1, j1), (r2, j2), (r3, j3) = (_new_request(engine, f"question {i}") for i in range(3))
    with session_scope(engine) as session:
        stored = queries.record_posts(session, [
            _record(r3, j3), _record(999_999, j2), _record(r1, j1, owner="someone-else")])
    assert [row and row["id"] for row in stored] == [r3, None, r1]  # in the items' order; None: the request is gone
    with Session(engine) as session:
        statuses = {j: session.get(Job, j).status for j in (j1, j2, j3)}  # type: ignore[union-attr]
        assert statuses == {j1: "running", j2: "running", j3: "done"}  # fenced by owner; gone: not finished
        assert {rid: [e.kind for e in _events(session, rid)] for rid in (r1, r2, r3)} == {
            r1: ["created", "posted"], r2: ["created"], r3: ["created", "posted"]}
        untouched = session.get(Request, r2)
        assert untouched is not None and untouched.post_state == "pending"


def test_the_lease_heartbeat_skips_a_job_being_finished_instead_of_waiting(engine: Engine, db_url: str) -> None:
    """A heartbeat locking many job rows must never wait on a transaction that is finishing some of
    them (two such transactions deadlock on PostgreSQL): the row held elsewhere is skipped this beat."""
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite has one writer at a time")
    until = datetime.now(UTC) + timedelta(seconds=60)
    with session_scope(engine) as session:
        held = jobs.enqueue(session, kind="post_request", key="post:7:0", lease=("me", until))
        free = jobs.enqueue(session, kind="post_request", key="post:8:0", lease=("me", until))
    assert held is not None and free is not None
    later = until + timedelta(seconds=30)
    with engine.connect() as finisher:
        finisher.execute(text("SET lock_timeout = '5s'"))
        finisher.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": held})  # mid-finish
        with session_scope(engine) as session:
            session.exec(text("SET LOCAL lock_timeout = '2s'"))  # type: ignore[call-overload] - waiting would fail, not hang
            assert jobs.renew(session, job_ids=[held, free], owner="me", until=later) == 1
        finisher.rollback()
    with engine.connect() as conn:
        leases = dict(conn.execute(text("SELECT id, lease_until FROM jobs")).all())
    assert leases[free] == later and leases[held] == until


def test_a_claim_takes_at_most_its_limit_oldest_first_and_two_claims_never_share_a_job(engine: Engine) -> None:
    """The running clock claims only as many due jobs as it has idle workers: more would wait leased
    in a queue. (On PostgreSQL, `id IN (locking subquery with LIMIT)` was once planned as a nested
    loop that ran the subquery per row and claimed all 21.)"""
    with session_scope(engine) as session:
        for i in range(21):
            jobs.enqueue(session, kind="x", key=f"burst:{i:02d}", due_at=NOW - timedelta(seconds=60 - i))
    with session_scope(engine) as session:
        first = jobs.claim_due(session, owner="a", lease=timedelta(seconds=15), limit=4, now=NOW)
    with session_scope(engine) as session:
        second = jobs.claim_due(session, owner="b", lease=timedelta(seconds=15), limit=4, now=NOW)
    assert sorted(j.key for j in first) == [f"burst:{i:02d}" for i in range(4)]
    assert sorted(j.key for j in second) == [f"burst:{i:02d}" for i in range(4, 8)]
    with session_scope(engine) as session:
        running = session.exec(select(Job).where(Job.status == "running")).all()
    assert sorted((j.key, j.lease_owner) for j in running) == [
        (f"burst:{i:02d}", "a" if i < 4 else "b") for i in range(8)]
