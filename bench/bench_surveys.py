"""Pulse surveys at scale: a burst of due surveys, and startup with a large backlog.

    .venv/bin/python -m bench.bench_surveys [--surveys 10000] [--pending 100000] [--database-url URL]

1. burst — `--surveys` surveys fall due in the same minute. Rows are seeded straight into the database
   (survey + request + `survey:{id}` job, as `survey_plan` would have left them), then the real clock
   (APScheduler ticking `Clock.tick`, which drains the `Outbox` on its worker pool) delivers them to the
   Slack simulator running with Slack's rate limits enforced. Reported: total time, throughput, 429
   answers, duplicate DMs (from the simulator's own record) and the final survey states.
2. startup — `--pending` scheduled surveys (with their pending jobs) are stored; `askdesk run --http` is
   started as a subprocess; we report the time until GET /healthz answers 200 and the process's RSS
   (VmRSS / VmHWM from /proc/<pid>/status) right then and after a few scheduler ticks.

Without `--database-url` (or ASKDESK_TEST_DATABASE_URL) each part uses a fresh SQLite file; with a
PostgreSQL URL the askdesk tables there are emptied first. Results go to docs/bench-surveys.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from bench.common import FINANCE_TOML, free_port, rss_mb, spawn, wait_http, write_result
from bot.config import Settings, parse_config
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.models import Job, Request, Survey
from storage.session import session_scope

CONFIG: dict[str, Any] = {
    "workspace": {"timezone": "UTC"},
    "teams": [{"slug": "finance", "name": "Finance", "channel": "C0FINANCE"}],
    "surveys": {"delay": "30m", "working_hours": "00:00-23:59", "working_days": "mon-sun", "min_days_between": 7},
    "scheduler": {"tick": 0.5, "batch_size": 200, "workers": 16},
}
TOML = FINANCE_TOML + '[surveys]\ndelay = "30m"\n'
TABLES = ["request_events", "reactions", "surveys", "requests", "processed_events", "people", "digests", "jobs"]


def fresh_database(url: str | None, workdir: Path, name: str) -> str:
    if not url:
        url = f"sqlite:///{workdir / f'{name}.db'}"
        upgrade(url)
        return url
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def seed(engine: Engine, n: int, *, due: list[datetime], user: str = "U{:06d}", chunk: int = 5000) -> None:
    """n resolved requests, each with a scheduled survey and its pending `survey:{id}` job."""
    now = datetime.now(UTC)
    for start in range(1, n + 1, chunk):
        ids = range(start, min(n, start + chunk - 1) + 1)
        with engine.begin() as conn:
            conn.execute(insert(Request), [
                {"id": i, "team": "finance", "origin_team": "finance", "requester_id": user.format(i),
                 "department": "Other", "summary": f"Bench request {i}", "text": f"Bench request {i}",
                 "status": "resolved", "post_state": "posted", "created_at": now, "updated_at": now,
                 "resolved_at": now, "resolution_count": 1, "urgency": "normal"} for i in ids])
            conn.execute(insert(Survey), [
                {"id": i, "request_id": i, "resolution_no": 1, "user_id": user.format(i), "team": "finance",
                 "department": "Other", "status": "scheduled", "due_at": due[i - 1], "created_at": now,
                 "comment_anonymous": True} for i in ids])
            conn.execute(insert(Job), [
                {"kind": "survey", "key": f"survey:{i}", "status": "pending", "due_at": due[i - 1],
                 "payload": json.dumps({"survey_id": i, "tz": "UTC"}), "attempts": 0, "created_at": now,
                 "updated_at": now} for i in ids])
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for table in ("requests", "surveys", "jobs"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"(SELECT max(id) FROM {table}))"))


def _slack(n: int, conn: Any) -> None:
    """The Slack simulator in its own process (real Slack does not share the app's CPU or GIL)."""
    sim = SlackSimulator(enforce_rate_limits=True)
    sim.add_channel("C0FINANCE", name="finance", members=["UBOT"])
    users = [f"U{i:06d}" for i in range(1, n + 1)]
    for uid in users:
        sim.add_user(uid, name=uid.lower(), tz="UTC")
    conn.send(sim.start().base_url)
    conn.recv()  # the app is done: report what Slack saw
    per_user = [sum(1 for m in sim.messages(uid) if (m.get("metadata") or {}).get("event_type") == "askdesk_survey")
                for uid in users]
    conn.send({"per_user": per_user, "http_429": sim.rate_limited_count,
               "calls": dict(Counter(c.method for c in sim.calls))})
    sim.stop()


def burst(n: int, db_url: str) -> dict[str, Any]:
    import logging
    import multiprocessing

    from bot.runtime.jobs import build_deps
    from bot.runtime.scheduler import Clock

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "tick skipped: still running" is expected
    ours, theirs = multiprocessing.Pipe()
    slack = multiprocessing.get_context("fork").Process(target=_slack, args=(n, theirs), daemon=True)
    slack.start()
    base_url = ours.recv()
    parsed = parse_config("bench.toml", CONFIG)
    settings = Settings(bot_token="xoxb-bench", signing_secret="s", slack_api_url=base_url,
                        database_url=db_url, **parsed)
    engine = make_engine(db_url)
    minute = datetime.now(UTC) - timedelta(minutes=1)  # all fell due during the last minute
    seed(engine, n, due=[minute + timedelta(seconds=60 * i / n) for i in range(n)])
    deps = build_deps(settings, engine)
    clock = Clock(deps)
    started = time.monotonic()
    clock.start()
    done_at, progress = None, []
    try:
        while time.monotonic() - started < 900:
            with session_scope(engine) as s:
                counts = dict(s.exec(select(Survey.status, func.count()).group_by(Survey.status)).all())
            finished = sum(v for k, v in counts.items() if k not in ("scheduled", "sending"))
            progress.append((round(time.monotonic() - started, 1), finished))
            if finished >= n:
                done_at = time.monotonic() - started
                break
            time.sleep(0.5)
    finally:
        clock.stop(wait=True)
        deps.outbox.stop()
    ours.send("report")
    seen = ours.recv()
    slack.join(timeout=30)
    with session_scope(engine) as s:
        jobs = dict(s.exec(select(Job.status, func.count()).group_by(Job.status)).all())
        retried = s.exec(select(func.count()).select_from(Job).where(Job.attempts > 1)).one()
        sent_times = sorted(s.exec(select(Survey.sent_at).where(col(Survey.sent_at).is_not(None))).all())
    spread = (sent_times[-1] - sent_times[0]).total_seconds() if len(sent_times) > 1 else float("nan")
    engine.dispose()
    per_user = seen["per_user"]
    return {
        "surveys": n, "database": engine.dialect.name, "load_avg_1m": round(os.getloadavg()[0], 2),
        "seconds": round(done_at or float("nan"), 1),
        "per_second": round(n / done_at, 1) if done_at else None, "first_to_last_dm_s": round(spread, 1),
        "survey_states": counts, "job_states": jobs, "jobs_retried": int(retried),
        "dms_delivered": sum(per_user), "users_with_duplicates": sum(1 for c in per_user if c > 1),
        "users_without_dm": sum(1 for c in per_user if c == 0), "http_429": seen["http_429"],
        "calls": seen["calls"], "progress": progress[:: max(1, len(progress) // 20)],
    }


def startup(n: int, db_url: str, workdir: Path) -> dict[str, Any]:
    engine = make_engine(db_url)
    if n:
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        seed(engine, n, due=[tomorrow + timedelta(seconds=i % 3600) for i in range(n)])
    with session_scope(engine) as s:
        pending = s.exec(select(func.count()).select_from(Job).where(Job.status == "pending")).one()
    engine.dispose()
    sim = SlackSimulator().start()
    config = workdir / "askdesk.toml"
    config.write_text(TOML)
    port = free_port()
    env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": "bench-secret", "SLACK_API_URL": sim.base_url,
           "DATABASE_URL": db_url, "ASKDESK_CONFIG": str(config), "LOG_LEVEL": "WARNING", "SLACK_APP_TOKEN": ""}
    proc = spawn(["-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", str(port)], env=env,
                 log=workdir / f"startup-{n}.log")
    try:
        ready = wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        rss_ready = rss_mb(proc.pid)
        time.sleep(5)  # several scheduler ticks, periodic housekeeping included
        rss_later, peak = rss_mb(proc.pid), _hwm(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sim.stop()
    return {"pending_surveys": n, "pending_jobs": int(pending), "load_avg_1m": round(os.getloadavg()[0], 2),
            "seconds_to_healthz": round(ready, 2),
            "rss_ready_mb": round(rss_ready, 1), "rss_after_5s_mb": round(rss_later, 1), "peak_rss_mb": round(peak, 1)}


def _hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report(args: argparse.Namespace, burst_result: dict[str, Any] | None, starts: list[dict[str, Any]]) -> str:
    lines = ["# bench_surveys: survey delivery at scale and startup with a backlog", "",
             f"Command: `.venv/bin/python -m bench.bench_surveys {' '.join(args.argv)}`  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.", ""]
    if burst_result:
        b = burst_result
        lines += [f"## 1. {b['surveys']:,} surveys due in the same minute ({b['database']})", "",
                  "| surveys | seconds | surveys/s | DMs delivered | duplicates | missing | HTTP 429 | retried jobs |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {b['surveys']:,} | {b['seconds']} | {b['per_second']} | {b['dms_delivered']:,} | "
                  f"{b['users_with_duplicates']} | {b['users_without_dm']} | {b['http_429']} | {b['jobs_retried']} |",
                  "", f"Survey states: `{b['survey_states']}`; job states: `{b['job_states']}`; "
                  f"Web API calls: `{b['calls']}`.", ""]
    if starts:
        lines += ["## 2. Startup with pending surveys stored", "",
                  "| pending surveys | database | run | s to /healthz | RSS at ready (MB) | RSS after 5 s (MB) "
                  "| peak RSS (MB) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {s['pending_surveys']:,} | {s['database']} | {s['run']} | {s['seconds_to_healthz']} | "
                  f"{s['rss_ready_mb']} | {s['rss_after_5s_mb']} | {s['peak_rss_mb']} |" for s in starts]
        lines.append("")
    lines.append("Targets: every survey delivered once, none twice, no 429 storm; with 100,000 pending surveys "
                 "serving within 5 s and under 300 MB RSS.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", type=int, default=10_000)
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("ASKDESK_TEST_DATABASE_URL") or None)
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="startups per backlog size")
    parser.add_argument("--out", default="bench-surveys")
    args = parser.parse_args()
    args.argv = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="askdesk-bench-") as tmp:
        workdir = Path(tmp)
        burst_result = None
        if not args.skip_burst:
            burst_result = burst(args.surveys, fresh_database(args.database_url, workdir, "burst"))
            print(json.dumps({k: v for k, v in burst_result.items() if k != "progress"}, indent=2))
        starts = []
        if not args.skip_startup:
            for n in (0, args.pending):
                url = fresh_database(args.database_url, workdir, f"startup{n}")
                for run in range(args.repeat):  # the same stored backlog, started `--repeat` times
                    result = {"database": url.split(":", 1)[0].split("+")[0], "run": run + 1,
                              **startup(n if run == 0 else 0, url, workdir)}
                    result["pending_surveys"] = n
                    print(json.dumps(result))
                    starts.append(result)
    path = write_result(args.out, report(args, burst_result, starts), {"burst": burst_result, "startup": starts})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
