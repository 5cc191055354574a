"""`askdesk status` and `askdesk purge`, run as the operator runs them: subprocesses on a seeded database.

Also home of the small helpers other test files use to run the CLI (config file, environment).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.services.purge import PurgeReport, purge
from storage.models import Job, ProcessedEvent, Reaction, Request, RequestEvent, Survey
from storage.session import session_scope
from tests.conftest import ALICE, DAVE, ERIN, TEST_CONFIG

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=30)


# ---------------------------------------------------------------------------------------------
# helpers for running the CLI (used by test_security.py and test_shutdown.py too)
# ---------------------------------------------------------------------------------------------
def toml_text(config: dict[str, Any]) -> str:
    """A TOML document for a config dict shaped like TEST_CONFIG (tables, arrays of tables, scalars)."""
    lines: list[str] = []
    for section, value in config.items():
        tables = value if isinstance(value, list) else [value]
        for table in tables:
            lines.append(f"[[{section}]]" if isinstance(value, list) else f"[{section}]")
            lines += [f"{key} = {json.dumps(item)}" for key, item in table.items()]
            lines.append("")
    return "\n".join(lines)


def cli_env(tmp_path: Path, db_url: str, config: dict[str, Any] | None = None,
            **extra: str) -> dict[str, str]:
    """Environment for an `askdesk` subprocess: no Slack/askdesk variables leak in from outside."""
    config_file = tmp_path / "askdesk.toml"
    config_file.write_text(toml_text(config or TEST_CONFIG), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "ASKDESK_", "DATABASE_URL", "PORT", "LOG_LEVEL"))}
    env.update(ASKDESK_CONFIG=str(config_file), DATABASE_URL=db_url, PYTHONUNBUFFERED="1", **extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `askdesk ARGS` (as `python -m bot`) in `cwd` (a temp dir, so no stray .env is read)."""
    return subprocess.run([sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    """`askdesk run --http` in a subprocess; a thread collects its output (stdout and stderr), so a
    chatty log can never fill a pipe and stall the server."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/slack/events"
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1",
                                      "--port", str(self.port)], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any("listening on" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"askdesk did not start:\n{self.output[-3000:]}")
            time.sleep(0.02)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (the output is complete afterwards)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


# ---------------------------------------------------------------------------------------------
# seeding
# ---------------------------------------------------------------------------------------------
def add_request(engine: Engine, *, created: datetime, team: str = "finance", text: str = "Refund?",
                **values: Any) -> int:
    values = {"requester_id": DAVE, "department": "Sales", "category": "Expenses", "post_state": "posted",
              "response_url": "https://hooks.example/x", **values}
    with session_scope(engine) as s:
        req = Request(team=team, origin_team=team, summary=text.splitlines()[0], text=text,
                      created_at=created, updated_at=created, **values)
        s.add(req)
        s.flush()
        assert req.id is not None
        return req.id


def add_job(engine: Engine, *, key: str, status: str, at: datetime, kind: str = "post_request",
            error: str | None = None, payload: dict[str, Any] | None = None) -> None:
    with session_scope(engine) as s:
        s.add(Job(kind=kind, key=key, status=status, due_at=at, attempts=1 if status != "pending" else 0,
                  last_error=error, payload=json.dumps(payload or {}), created_at=at, updated_at=at))


def seed_history(engine: Engine) -> dict[str, int]:
    """Two old requests (one transferred with a note, surveyed with a comment) and one recent one."""
    old_a = add_request(engine, created=OLD, text="My salary IBAN DE89 3704 is wrong\nplease fix",
                        category="Payroll", status="resolved", resolved_at=OLD + timedelta(hours=5),
                        first_response_at=OLD + timedelta(minutes=20), transfer_count=1, resolution_count=1)
    old_b = add_request(engine, created=OLD + timedelta(days=1), team="it", text="Laptop stolen at home",
                        category="Laptop", department="Marketing", requester_id=ERIN)
    recent = add_request(engine, created=RECENT, text="Recent expense question")
    with session_scope(engine) as s:
        for rid, kind, at, detail in [
            (old_a, "created", OLD, {"category": "Payroll", "urgency": "normal"}),
            (old_a, "transferred", OLD + timedelta(minutes=5), {"from": "it", "to": "finance",
                                                                "note": "Dave's IBAN is DE89 3704"}),
            (old_a, "claimed", OLD + timedelta(minutes=20), None),
            (old_a, "resolved", OLD + timedelta(hours=5), None),
            (old_b, "created", OLD + timedelta(days=1), {"category": "Laptop", "urgency": "high"}),
            (recent, "transferred", RECENT, {"from": "it", "to": "finance", "note": "recent note stays"}),
        ]:
            s.add(RequestEvent(request_id=rid, kind=kind, team="finance", actor_id=ALICE, at=at,
                               detail=json.dumps(detail) if detail else None))
        s.add(Survey(request_id=old_a, user_id=DAVE, team="finance", department="Sales", status="answered",
                     due_at=OLD, created_at=OLD + timedelta(hours=5), answered_at=OLD + timedelta(hours=6),
                     score=4, clarity=5, support=3, comment="Bob was rude to me"))
        s.add(Survey(request_id=recent, user_id=DAVE, team="finance", department="Sales", status="answered",
                     due_at=RECENT, answered_at=RECENT, score=5, comment="great, recent"))
        s.add(Reaction(request_id=old_a, team="finance", user_id=DAVE, emoji="+1", score=5, is_requester=True,
                       created_at=OLD))
        s.add(ProcessedEvent(event_id="EvOLD", received_at=OLD))
        s.add(ProcessedEvent(event_id="EvNEW", received_at=RECENT))
    add_job(engine, key="post:old:done", status="done", at=OLD, payload={"note": "Dave's IBAN"})
    add_job(engine, key="post:old:failed", status="failed", at=OLD, error="channel_not_found")
    add_job(engine, key="post:old:pending", status="pending", at=OLD)
    add_job(engine, key="post:new:done", status="done", at=RECENT)
    return {"old_a": old_a, "old_b": old_b, "recent": recent}


def aggregates(engine: Engine) -> dict[str, Any]:
    """What digests and statistics are computed from: everything except what people wrote."""
    with session_scope(engine) as s:
        conn = s.connection()
        reqs = conn.execute(select(Request.team, Request.department, Request.category, Request.status,
                                   Request.created_at, Request.first_response_at, Request.resolved_at,
                                   Request.requester_id).order_by(Request.id)).all()
        events = conn.execute(select(RequestEvent.kind, RequestEvent.at, RequestEvent.actor_id,
                                     RequestEvent.detail).order_by(RequestEvent.id)).all()
        transfers = [(d.get("from"), d.get("to")) for *_, raw in events if raw and (d := json.loads(raw))
                     and "from" in d]
        surveys = conn.execute(select(func.count(), func.sum(Survey.score), func.sum(Survey.clarity),
                                      func.sum(Survey.support))).one()
        ratings = conn.execute(select(func.count(), func.sum(Reaction.score))).one()
    return {"requests": [tuple(r) for r in reqs], "events": [tuple(e[:3]) for e in events],
            "transfers": transfers, "surveys": tuple(surveys), "ratings": tuple(ratings)}


def table_state(engine: Engine) -> dict[str, Any]:
    queries = {
        "requests": select(Request.id, Request.text, Request.summary, Request.purged_at).order_by(Request.id),
        "details": select(RequestEvent.id, RequestEvent.detail).order_by(RequestEvent.id),
        "comments": select(Survey.id, Survey.comment).order_by(Survey.id),
        "processed": select(ProcessedEvent.event_id).order_by(ProcessedEvent.event_id),
        "jobs": select(Job.key).order_by(Job.key),
    }
    with session_scope(engine) as s:
        return {name: s.connection().execute(stmt).all() for name, stmt in queries.items()}


# ---------------------------------------------------------------------------------------------
# purge
# ---------------------------------------------------------------------------------------------
def test_purge_removes_old_text_and_keeps_the_numbers(engine: Engine) -> None:
    ids = seed_history(engine)
    before = aggregates(engine)
    report = purge(engine, older_than=timedelta(days=365), now=NOW, batch_size=1)  # batch 1: many batches
    assert report == PurgeReport(requests=2, survey_comments=1, history_notes=1, processed_events=1,
                                 finished_jobs=2)
    state = table_state(engine)
    by_id = {r.id: r for r in state["requests"]}
    for rid in (ids["old_a"], ids["old_b"]):
        assert by_id[rid].text == "" and by_id[rid].summary == "" and by_id[rid].purged_at is not None
    assert by_id[ids["recent"]].text == "Recent expense question" and by_id[ids["recent"]].purged_at is None
    dump = json.dumps([list(map(str, row)) for rows in state.values() for row in rows])
    for secret in ("IBAN", "DE89", "rude", "stolen"):
        assert secret not in dump, secret
    assert "recent note stays" in dump and "great, recent" in dump
    assert [p.event_id for p in state["processed"]] == ["EvNEW"]
    assert [j.key for j in state["jobs"]] == ["post:new:done", "post:old:pending"]
    assert aggregates(engine) == before  # counts, scores, kinds, timestamps, transfers: unchanged
    with session_scope(engine) as s:
        old = s.get(Request, ids["old_a"])
        assert old is not None and old.response_url is None
    # a second run finds nothing left to do and changes nothing
    assert purge(engine, older_than=timedelta(days=365), now=NOW) == PurgeReport()
    assert table_state(engine) == state


def test_dry_run_counts_and_changes_nothing(engine: Engine) -> None:
    seed_history(engine)
    state = table_state(engine)
    report = purge(engine, older_than=timedelta(days=365), now=NOW, dry_run=True)
    assert report == PurgeReport(requests=2, survey_comments=1, history_notes=1, processed_events=1,
                                 finished_jobs=2)
    assert table_state(engine) == state
    with pytest.raises(ValueError, match="at least 1 day"):
        purge(engine, older_than=timedelta(hours=23), now=NOW)


def test_purge_command_line(engine: Engine, db_url: str, tmp_path: Path) -> None:
    seed_history(engine)
    state = table_state(engine)
    env = cli_env(tmp_path, db_url)
    dry = run_cli(["purge", "--older-than", "365d", "--dry-run"], env, tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "would purge data older than 365d" in dry.stdout and "requests: 2" in dry.stdout
    assert "nothing was changed" in dry.stdout
    assert table_state(engine) == state
    real = run_cli(["purge", "--older-than", "52w"], env, tmp_path)
    assert real.returncode == 0, real.stderr
    assert "purged data older than 52w" in real.stdout and "requests: 2" in real.stdout
    assert "survey comments: 1" in real.stdout and "history notes: 1" in real.stdout
    again = run_cli(["purge", "--older-than", "365d"], env, tmp_path)
    assert again.returncode == 0 and "requests: 0" in again.stdout and "finished jobs: 0" in again.stdout


@pytest.mark.parametrize(("value", "message"), [
    ("12h", "shorter than 1d"), ("0d", "shorter than 1d"), ("forever", "is not a duration"),
    ("-5d", "is not a duration"), ("", "is not a duration"),
])
def test_purge_refuses_bad_durations(engine: Engine, db_url: str, tmp_path: Path, value: str,
                                     message: str) -> None:
    seed_history(engine)
    state = table_state(engine)
    result = run_cli(["purge", f"--older-than={value}"], cli_env(tmp_path, db_url), tmp_path)
    assert result.returncode == 2
    assert "--older-than" in result.stderr and message in result.stderr
    assert "Traceback" not in result.stderr
    assert table_state(engine) == state


# ---------------------------------------------------------------------------------------------
# status
# ---------------------------------------------------------------------------------------------
def test_status_lists_failures_and_pending_work(engine: Engine, db_url: str, tmp_path: Path) -> None:
    failed_req = add_request(engine, created=RECENT, post_state="failed",
                             post_error="the triage channel was not found")
    add_request(engine, created=RECENT, post_state="pending")
    add_job(engine, key=f"post:{failed_req}:0", status="failed", at=RECENT, error="channel_not_found")
    add_job(engine, key="render:2:abc", kind="render", status="pending", at=NOW + timedelta(minutes=5))
    add_job(engine, key="post:2:0", status="pending", at=NOW + timedelta(minutes=1))
    add_job(engine, key="render:1:old", kind="render", status="done", at=RECENT)
    result = run_cli(["status"], cli_env(tmp_path, db_url), tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "failed jobs: 1" in out and f"post:{failed_req}:0" in out and "channel_not_found" in out
    assert "requests not posted to their team: 1" in out
    assert f"request #{failed_req} (finance): the triage channel was not found" in out
    assert "post_request: failed=1, pending=1" in out and "render: done=1, pending=1" in out
    assert f"next due: {(NOW + timedelta(minutes=1)).isoformat()}" in out


def test_status_is_clean_on_an_empty_or_healthy_database(engine: Engine, db_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path, db_url)
    empty = run_cli(["status"], env, tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert "(empty)" in empty.stdout and "failed jobs: 0" in empty.stdout and "next due: —" in empty.stdout
    add_request(engine, created=RECENT)
    add_job(engine, key="post:1:0", status="done", at=RECENT)
    add_job(engine, key="render:1:x", kind="render", status="pending", at=NOW)
    healthy = run_cli(["status"], env, tmp_path)
    assert healthy.returncode == 0, healthy.stdout
    assert "render: pending=1" in healthy.stdout and "requests not posted to their team: 0" in healthy.stdout
