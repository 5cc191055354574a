"""Batched hot-path writes: a group-commit batch of slash commands (and of post records) writes
each table with one statement (storage.db.MultiRow, GroupCommitter.run_batched), on the real
database of the run (SQLite file or PostgreSQL)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage import jobs
from storage import requests as queries
from storage.db import GroupCommitter, allocate_ids
from storage.models import Job, Request, RequestEvent
from tests.test_group_commit import in_one_batch

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
LEASE = ("instance-a", NOW + timedelta(seconds=15))


def _new(text: str, *, team: str = "finance", lease: tuple[str, datetime] = LEASE) -> queries.NewRequest:
    values = queries.request_values(team=team, origin_team=team, requester_id=f"U{text[:8]}", department="",
                                    summary=text[:40], text=text, category="Travel", urgency="high",
                                    source_channel="C0SRC", response_url="https://hooks.example/r",
                                    created_at=NOW, updated_at=NOW)
    return queries.NewRequest(values=values, detail={"urgency": "high"}, job_kind="post_request",
                              job_key=lambda rid: f"post:{rid}:0", lease=lease)


def _request(engine: Engine, request_id: int) -> Request | None:
    with Session(engine) as session:
        return session.get(Request, request_id)


def test_new_requests_are_stored_whole_with_their_events_and_leased_jobs(engine: Engine) -> None:
    items = [_new(f"question {i} ünïcode <!channel>") for i in range(13)]  # 8 + 4 + 1 rows per statement
    with engine.begin() as conn:
        out = queries.insert_new(conn, items)
    ids = [rid for rid, _ in out]
    assert ids == sorted(ids) and len(set(ids)) == 13
    with Session(engine) as session:
        for (rid, job_id), item in zip(out, items, strict=True):
            req = session.get(Request, rid)
            assert req is not None
            for name, value in item.values.items():
                assert getattr(req, name) == value, name  # every column as given (datetimes round-trip)
            events = session.exec(select(RequestEvent).where(RequestEvent.request_id == rid)).scalars().all()
            assert [(e.kind, e.actor_id, e.team, e.at, json.loads(e.detail or "{}")) for e in events] == [
                ("created", item.values["requester_id"], "finance", NOW, {"urgency": "high"})]
            job = session.get(Job, job_id)
            assert job is not None and job.key == f"post:{rid}:0" and json.loads(job.payload) == {"request_id": rid}
            assert (job.status, job.attempts, job.lease_owner, job.lease_until) == ("running", 1, *LEASE)


def test_a_job_key_that_exists_is_left_alone(engine: Engine) -> None:
    with engine.begin() as conn:
        nxt = allocate_ids(conn, Request.__table__, 1)[0]  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        nxt += 1  # that one was taken from the sequence; SQLite hands it out again (nothing was inserted)
    with engine.begin() as conn:  # a stale job holding the key the next request will want
        jobs.enqueue(conn, kind="post_request", key=f"post:{nxt}:0")
    with engine.begin() as conn:
        (rid, job_id), (rid2, job_id2) = queries.insert_new(conn, [_new("first"), _new("second")])
    assert rid == nxt and job_id is None  # the existing job wins, as with enqueue()
    assert job_id2 is not None and rid2 == nxt + 1


def test_ids_never_collide_with_rows_inserted_the_ordinary_way(engine: Engine) -> None:
    seen: set[int] = set()
    for round_ in range(3):
        with engine.begin() as conn:
            seen.update(rid for rid, _ in queries.insert_new(conn, [_new(f"batched {round_}-{i}") for i in range(3)]))
        with Session(engine) as session:  # an ORM insert lets the database pick the id
            req = Request(**queries.request_values(team="hr", origin_team="hr", requester_id="U1",
                                                   created_at=NOW, updated_at=NOW))
            session.add(req)
            session.commit()
            assert req.id not in seen
            seen.add(req.id)  # type: ignore[arg-type]
    assert len(seen) == 12


def test_concurrent_callers_each_get_their_own_rows(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    got: dict[str, tuple[int, int | None]] = {}
    lock = threading.Lock()

    def caller(n: int) -> None:
        for i in range(15):
            text = f"caller {n} question {i}"
            out = committer.run_batched(queries.insert_new, _new(text), urgent=bool(i % 2))
            with lock:
                got[text] = out

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert committer.units == 180 and committer.batches < 180  # batches were shared...
    with Session(engine) as session:  # ...and every caller got the ids of its own request and job
        for text, (rid, job_id) in got.items():
            req, job = session.get(Request, rid), session.get(Job, job_id)
            assert req is not None and req.text == text
            assert job is not None and job.key == f"post:{rid}:0"
    assert len({rid for rid, _ in got.values()}) == 180


def test_a_bad_item_fails_alone_and_the_rest_of_its_batch_commits(engine: Engine) -> None:
    committer = GroupCommitter(engine)
    bad = _new("bad")
    bad.values["team"] = None  # NOT NULL
    outcomes = in_one_batch(committer, {name: (lambda item=item: committer.run_batched(queries.insert_new, item))
                                        for name, item in (("a", _new("a")), ("bad", bad), ("b", _new("b")))})
    assert isinstance(outcomes["bad"], IntegrityError)
    for name in ("a", "b"):
        rid, _ = outcomes[name]  # type: ignore[misc]
        req = _request(engine, rid)
        assert req is not None and req.text == name


def test_post_records_store_messages_events_and_finish_jobs(engine: Engine) -> None:
    with engine.begin() as conn:
        (r1, j1), (r2, j2), (r3, j3) = queries.insert_new(conn, [_new("one"), _new("two"), _new("three")])
        conn.execute(insert(Request.__table__).values(  # type: ignore[attr-defined]
            **{**queries.request_values(team="hr", origin_team="hr", requester_id="U9", created_at=NOW,
                                        updated_at=NOW), "dm_channel": "D0OLD", "dm_ts": "1.0"}))
    later = NOW + timedelta(seconds=1)
    records = [
        queries.PostRecord(request_id=r1, department="Sales", channel="C0FIN", ts="10.1", dm=("D0U1", "10.2"),
                           new_post=True, at=later, job_id=j1, owner="instance-a"),  # type: ignore[arg-type]
        queries.PostRecord(request_id=999_999, department="X", channel="C0FIN", ts="10.3", dm=None,
                           new_post=True, at=later, job_id=j2, owner="instance-a"),  # type: ignore[arg-type]
        queries.PostRecord(request_id=r3, department="Ops", channel="C0FIN", ts="10.4", dm=None,
                           new_post=False, at=later, job_id=j3, owner="someone-else"),  # type: ignore[arg-type]
    ]
    with engine.begin() as conn:
        teams = queries.record_posts(conn, records)
    assert teams == ["finance", None, "finance"]  # None: the request is gone, nothing written for it
    with Session(engine) as session:
        one, three = session.get(Request, r1), session.get(Request, r3)
        assert one is not None and three is not None
        assert (one.department, one.triage_channel, one.triage_ts, one.dm_channel, one.dm_ts, one.post_state,
                one.response_url) == ("Sales", "C0FIN", "10.1", "D0U1", "10.2", "posted", None)
        assert (three.triage_ts, three.dm_channel, three.post_state) == ("10.4", None, "posted")
        kinds = {rid: [e.kind for e in session.exec(select(RequestEvent).where(RequestEvent.request_id == rid))
                       .scalars().all()] for rid in (r1, r2, r3)}
        assert kinds == {r1: ["created", "posted"], r2: ["created"], r3: ["created"]}  # posted: new posts only
        statuses = {j: session.get(Job, j).status for j in (j1, j2, j3)}  # type: ignore[union-attr]
        assert statuses == {j1: "done", j2: "running", j3: "running"}  # fenced by owner; gone: not finished


def test_a_post_record_keeps_a_known_dm(engine: Engine) -> None:
    with engine.begin() as conn:
        ((rid, job_id),) = queries.insert_new(conn, [_new("dm kept")])
        conn.execute(Request.__table__.update().where(Request.__table__.c.id == rid)  # type: ignore[attr-defined]
                     .values(dm_channel="D0KNOWN", dm_ts="5.5"))
        queries.record_posts(conn, [queries.PostRecord(
            request_id=rid, department="Other", channel="C0NEW", ts="6.6", dm=None, new_post=True, at=NOW,
            job_id=job_id, owner="instance-a")])  # type: ignore[arg-type]
    req = _request(engine, rid)
    assert req is not None and (req.triage_channel, req.triage_ts, req.dm_channel, req.dm_ts) == (
        "C0NEW", "6.6", "D0KNOWN", "5.5")


def test_as_request_reads_like_a_constructed_request() -> None:
    values = queries.request_values(team="finance", origin_team="finance", requester_id="U1", summary="s",
                                    text="t", created_at=NOW, updated_at=NOW)
    built, constructed = queries.as_request({**values, "id": 7}), Request(**values, id=7)
    for name in Request.model_fields:
        assert getattr(built, name) == getattr(constructed, name), name
    built.department = "Finance"  # attributes can be changed like any instance's
    assert built.department == "Finance"


def test_request_values_names_what_is_missing() -> None:
    with pytest.raises(TypeError, match="team"):
        queries.request_values(requester_id="U1", created_at=NOW, updated_at=NOW)
