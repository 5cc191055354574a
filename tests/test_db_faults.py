"""Database trouble is loud and quick (issue 14, item 4): a lock held elsewhere, a database that
refuses writes, a full disk. Every refused request is answered "try again" within Slack's 3 s and
logged at ERROR with the reference code the person sees; /healthz and `askdesk status` report writes
that fail, not only a server that cannot be reached; nothing is half-written; service resumes."""

from __future__ import annotations

import json
import logging
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.cli.status import print_status
from bot.render.ids import Action
from storage.engine import DB_WAIT
from tests.conftest import ALICE, DAVE, FINANCE_CH, GENERAL, Harness, make_settings, start_harness
from tests.test_db_outage import ConnectionFault, Outage, check_whole, rows
from tests.test_request_loop import ask, load

REF = re.compile(r"reference `([0-9a-f]{8})`")


def healthz(h: Harness) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(h.url.replace("/slack/events", "/healthz"), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def logged_refs(caplog: pytest.LogCaptureFixture) -> set[str]:
    return {m for r in caplog.records if r.levelno >= logging.ERROR for m in re.findall(r"ref ([0-9a-f]{8})",
                                                                                        r.getMessage())}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = fn()
    return result, time.monotonic() - started


@contextmanager
def write_lock_held_elsewhere(db_url: str) -> Iterator[None]:
    """Another connection (not askdesk's) holds the write lock: SQLite's, or on PostgreSQL an
    EXCLUSIVE lock on the tables (reads still work, writes wait)."""
    if db_url.startswith("sqlite"):
        other = sqlite3.connect(make_url(db_url).database or "", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = create_engine(db_url)
    with engine.connect() as conn:
        conn.execute(text("LOCK TABLE requests, request_events, jobs, processed_events IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    engine.dispose()


def test_a_write_lock_held_elsewhere_is_answered_in_time_and_logged(
        h: Harness, db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    req = ask(h, "asked before the lock")
    before = rows(h)
    with write_lock_held_elsewhere(db_url):
        resp, took = timed(lambda: h.driver.slash("/ask-finance", "asked while locked", user_id=DAVE,
                                                  channel_id=GENERAL))
        assert resp.status == 200 and "try again" in resp.body and took < DB_WAIT + 0.5, (took, resp.body)
        ref = REF.search(resp.body)
        assert ref and ref.group(1) in logged_refs(caplog)  # the person's reference is in the log, at ERROR

        click, took = timed(lambda: h.driver.block_action(user_id=ALICE, action_id=Action.CLAIM.value,
                                                          value=str(req.id), channel_id=FINANCE_CH,
                                                          message_ts=req.triage_ts))
        assert click.status == 200 and took < DB_WAIT + 0.5, took
        told = h.wait(lambda: [p for p in h.sim.response_posts if "reference" in json.dumps(p.body)])
        clicked_ref = REF.search(json.dumps(told[-1].body))
        assert clicked_ref and clicked_ref.group(1) in logged_refs(caplog)

        (status, body), took = timed(lambda: healthz(h))
        assert status == 503 and body["database"] == "reachable, not writable" and took < DB_WAIT + 1
    assert rows(h) == before  # nothing half-written
    h.wait(lambda: healthz(h)[0] == 200, timeout=5)
    after = ask(h, "asked after the lock")  # service resumes by itself
    assert after.id > req.id and load(h, req.id).status == "open"  # (PostgreSQL ids may skip the refused one)
    check_whole(h)


def test_status_exits_1_while_writes_fail(h: Harness, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with write_lock_held_elsewhere(db_url):
        assert print_status(h.deps.settings) == 1
    assert "database writes: FAILING" in capsys.readouterr().out
    assert print_status(h.deps.settings) == 0
    assert "database writes: ok" in capsys.readouterr().out


class ReadOnly(ConnectionFault):
    """New connections of the app's engine can read but not write (a read-only SQLite connection, a
    PostgreSQL session whose transactions are read-only: a standby, a database set read-only)."""

    EVENT = "connect"

    def _hook(self, dbapi_conn: Any, *_: Any) -> None:
        cur = dbapi_conn.cursor()
        if self.engine.dialect.name == "sqlite":
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_conn.commit()
        cur.close()


@pytest.fixture
def read_only(h: Harness) -> Iterator[ReadOnly]:
    cut = ReadOnly(h.deps.engine)
    yield cut
    cut.close()


def test_writes_refused_while_reads_work_is_unhealthy_and_refused_loudly(
        h: Harness, read_only: ReadOnly, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    req = ask(h, "asked before")
    before = rows(h)
    read_only.start()
    status, body = healthz(h)
    assert status == 503 and body["database"] == "reachable, not writable" and body["error"]
    resp = h.driver.slash("/ask-finance", "asked while read-only", user_id=DAVE, channel_id=GENERAL)
    ref = REF.search(resp.body)
    assert resp.status == 200 and "try again" in resp.body and ref and ref.group(1) in logged_refs(caplog)
    assert any("database writes fail" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    read_only.stop()
    h.wait(lambda: healthz(h)[0] == 200, timeout=5)
    assert rows(h) == before
    assert ask(h, "asked after").id > req.id
    check_whole(h)


def test_every_refusal_in_an_outage_is_logged_with_its_reference(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    outage = Outage(h.deps.engine)
    try:
        outage.start()
        bodies = [h.driver.slash("/ask-finance", f"refused {i}", user_id=DAVE, channel_id=GENERAL).body
                  for i in range(5)]
        refs = [m.group(1) for b in bodies if (m := REF.search(b))]
        assert len(set(refs)) == 5 and set(refs) <= logged_refs(caplog)
        event_resp = h.driver.event(h.driver.message_event(ALICE, FINANCE_CH, "hi"), event_id="EvREFUSED1")
        assert event_resp.status == 503
        assert len(logged_refs(caplog)) == 6  # the redelivered-later event is logged too
    finally:
        outage.close()


# -------------------------------------------------------------------------------------------------
# a full disk (SQLite on a small tmpfs; needs root and mount)
# -------------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_is_refused_loudly_and_resumes_when_space_is_back(
        db_url: str, sqlite_template: Path, small_disk: Path, sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a full disk under PostgreSQL is the server's; this runs on the SQLite leg")
    caplog.set_level(logging.INFO)
    path = small_disk / "askdesk.db"
    shutil.copy(sqlite_template, path)
    h, stop = start_harness(sim, make_settings(sim, f"sqlite:///{path}"))
    try:
        ask(h, "asked before the disk filled up")
        with sqlite3.connect(path) as conn:  # an empty write-ahead log: the next commit needs new space
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = small_disk / "filler"
        with filler.open("wb", buffering=0) as out, pytest.raises(OSError):
            while True:
                out.write(b"\0" * 65536)
        resp = h.driver.slash("/ask-finance", "asked on a full disk", user_id=DAVE, channel_id=GENERAL)
        ref = REF.search(resp.body)
        assert "try again" in resp.body and ref and ref.group(1) in logged_refs(caplog), resp.body
        status, body = healthz(h)
        assert status == 503 and "full" in body["error"]
        filler.unlink()
        h.wait(lambda: healthz(h)[0] == 200, timeout=5)
        assert ask(h, "asked after").post_state == "posted"
        check_whole(h)
    finally:
        stop()
