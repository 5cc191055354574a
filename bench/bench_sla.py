"""SLA reminders at scale: the scheduler's periodic work with a large open backlog, and a burst of
reminders falling due in the same minute.

    .venv/bin/python -m bench.bench_sla [--open 100000] [--burst 10000] [--channels 200] [--database-url URL]

1. ticks — `--open` open requests are stored with no timers planned yet (as after a migration or a
   config change); none of their timers falls due during the run. The scheduler's tick (`Clock.tick`:
   periodic housekeeping, SLA planning, claiming due jobs) runs back to back until every request is
   planned; then 100 ticks with nothing to do, and 100 ticks in which 20 requests change state (need
   re-planning) before each tick. Reported: wall-clock and CPU time per tick (median, p95, max) in each
   phase, and planning throughput.
2. burst — `--burst` posted requests spread over `--channels` triage channels, whose first-response
   reminders all fall due within the last minute, planned by the real planner. The real clock
   (APScheduler ticking `Clock.tick`) sends them to a Slack simulator in its own process that enforces
   Slack's rate limits (1 message per second per channel, short bursts allowed). Reported: time until
   every reminder is sent, reminders per channel per second at most, HTTP 429 answers, duplicates
   (from the simulator's own record of thread replies and their metadata).

Without `--database-url` (or ASKDESK_TEST_DATABASE_URL) each part uses a fresh SQLite file; with a
PostgreSQL URL the askdesk tables there are emptied first. Results: docs/runs/sla-<engine>.json
(the write-up is the "SLA reminders" section of docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Engine

from bench.common import ROOT, pct
from bot.config import Settings, parse_config
from slacksim.simulator import SlackSimulator
from storage.engine import make_engine
from storage.migrate import upgrade
from storage.models import Job, Request, RequestEvent

TABLES = ["request_events", "reactions", "surveys", "requests", "processed_events", "people", "digests", "jobs",
          "responders", "sla_policies"]


def config(channels: int, first_response: str = "30m") -> dict[str, Any]:
    teams = [{"slug": f"t{i:03d}", "name": f"Team {i}", "channel": f"C0T{i:05d}", "first_response_sla": first_response,
              "resolution_sla": "2d", "remind_at": "75%"} for i in range(channels)]
    for team in teams[::2]:  # half of them on a business clock (every day, all day: timers stay comparable)
        team.update({"sla_clock": "business", "hours": "00:00-24:00", "days": "mon-sun", "timezone": "Europe/Berlin",
                     "holidays": ["2027-01-01"]})
    return {"workspace": {"timezone": "UTC"}, "teams": teams,
            "surveys": {"working_hours": "00:00-23:59", "working_days": "mon-sun"},
            "digest": {"weekday": "mon", "time": "09:00", "catch_up": "1s"},
            "scheduler": {"tick": 0.5, "batch_size": 200, "workers": 16}}


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


def seed(engine: Engine, rows: list[dict[str, Any]], chunk: int = 5000) -> None:
    now = datetime.now(UTC)
    base = {"origin_team": "", "department": "Other", "text": "", "category": None, "urgency": "normal",
            "status": "open", "post_state": "posted", "updated_at": now, "sla_cycle": 0, "sla_paused_seconds": 0,
            "resolution_count": 0, "reopen_count": 0, "transfer_count": 0}
    for start in range(0, len(rows), chunk):
        with engine.begin() as conn:
            conn.execute(insert(Request), [{**base, "origin_team": r["team"], **r} for r in rows[start:start + chunk]])
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT setval(pg_get_serial_sequence('requests', 'id'), "
                              "(SELECT max(id) FROM requests))"))
            # statistics, as autovacuum keeps them on a live database (a table just filled in bulk has
            # none, and the planner's query for unplanned requests would then sort all 100,000)
            conn.execute(text("ANALYZE requests"))


def _deps(settings: Settings, engine: Engine) -> Any:
    from bot.runtime.jobs import build_deps  # the job kinds and periodic tasks, as `askdesk run` has them

    return build_deps(settings, engine)


def _count(engine: Engine, model: Any, where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(model).where(where)) or 0)


def _stats(ms: list[float], cpu: list[float]) -> dict[str, float]:
    """Wall-clock time per tick, and the CPU time of the thread that ran it (on a shared machine the
    wall clock also counts time spent waiting for a core)."""
    return {"ticks": len(ms), "median_ms": round(statistics.median(ms), 2), "p95_ms": round(pct(ms, 95), 2),
            "max_ms": round(max(ms), 2), "cpu_median_ms": round(statistics.median(cpu), 2),
            "cpu_p95_ms": round(pct(cpu, 95), 2), "cpu_max_ms": round(max(cpu), 2)}


def _timed_tick(clock: Any, wall: list[float], cpu: list[float]) -> None:
    t0, c0 = time.perf_counter(), time.thread_time()
    clock.tick()
    wall.append((time.perf_counter() - t0) * 1000)
    cpu.append((time.thread_time() - c0) * 1000)


# -- 1. ticks -----------------------------------------------------------------------------------
def ticks(n: int, channels: int, db_url: str) -> dict[str, Any]:
    from bot.runtime.deps import settle_heap
    from bot.runtime.scheduler import Clock

    sim = SlackSimulator().start()  # absorbs anything housekeeping posts (digests of empty weeks)
    try:
        settings = Settings(bot_token="xoxb-bench", signing_secret="s", slack_api_url=sim.base_url,
                            database_url=db_url, **parse_config("bench.toml", config(channels, "8h")))
        for team in settings.teams:
            sim.add_channel(team.channel, name=team.slug, members=["UBOT"])
        engine = make_engine(db_url)
        now, rnd = datetime.now(UTC), random.Random(15)
        rows = []
        for i in range(1, n + 1):
            # nothing falls due while this runs (8h first response, 2d resolution): what is measured is
            # the tick itself. 10 %: created in the last hour, not answered yet; the rest answered.
            fresh = i % 10 == 0
            created = now - timedelta(minutes=rnd.uniform(0, 60) if fresh else rnd.uniform(60, 24 * 60))
            rows.append({"id": i, "team": f"t{i % channels:03d}", "requester_id": f"U{i:07d}",
                         "summary": f"Bench request {i}", "created_at": created,
                         "sla_responded_at": None if fresh else created + timedelta(minutes=5),
                         "triage_channel": f"C0T{i % channels:05d}", "triage_ts": f"{1700000000 + i}.000100"})
        seed(engine, rows)
        del rows  # the benchmark's own 100,000 dicts are no part of the app: no tick should pay for them in GC
        deps = _deps(settings, engine)
        clock = Clock(deps)
        settle_heap()  # as `askdesk run` does once start-up is done
        result: dict[str, Any] = {"open_requests": n, "channels": channels, "database": engine.dialect.name}

        planning: list[float] = []
        planning_cpu: list[float] = []
        started = time.perf_counter()
        while True:
            _timed_tick(clock, planning, planning_cpu)
            if not _count(engine, Request, Request.sla_plan.is_(None)):  # type: ignore[union-attr]
                break
        total = time.perf_counter() - started
        pending = _count(engine, Job, Job.status == "pending")
        result["plan_from_scratch"] = {**_stats(planning, planning_cpu), "first_tick_ms": round(planning[0], 2),
                                       "seconds": round(total, 2), "requests_per_second": round(n / total),
                                       "pending_timer_jobs": int(pending)}

        idle: list[float] = []
        idle_cpu: list[float] = []
        for _ in range(100):
            _timed_tick(clock, idle, idle_cpu)
        result["idle"] = _stats(idle, idle_cpu)

        busy: list[float] = []
        busy_cpu: list[float] = []
        for _ in range(100):
            ids = [rnd.randint(1, n) for _ in range(20)]
            with engine.begin() as conn:  # 20 requests change state between ticks (a claim, an answer…)
                conn.execute(update(Request).where(Request.id.in_(ids)).values(sla_plan=None))  # type: ignore[union-attr]
            _timed_tick(clock, busy, busy_cpu)
        result["twenty_changes_per_tick"] = _stats(busy, busy_cpu)
        result["load_avg_1m"] = round(os.getloadavg()[0], 2)
        clock.stop(wait=False)
        deps.outbox.stop()
        engine.dispose()
        return result
    finally:
        sim.stop()


# -- 2. burst -----------------------------------------------------------------------------------
def _slack(channels: int, parents: list[tuple[str, str]], conn: Any) -> None:
    """The Slack simulator in its own process, with Slack's rate limits and the triage messages."""
    sim = SlackSimulator(enforce_rate_limits=True)
    for i in range(channels):
        sim.add_channel(f"C0T{i:05d}", name=f"t{i:03d}", members=["UBOT"])
    for channel, ts in parents:
        sim.add_message(channel, user="UBOT", text="request", ts=ts)
    conn.send(sim.start().base_url)
    conn.recv()  # the app is done: report what Slack saw
    refs: Counter[str] = Counter()
    per_second: dict[str, Counter[int]] = defaultdict(Counter)
    for call in sim.calls:
        if call.method == "chat.postMessage" and call.ok and call.args.get("thread_ts"):
            meta = call.args.get("metadata")
            meta = json.loads(meta) if isinstance(meta, str) else meta or {}
            refs[(meta.get("event_payload") or {}).get("ref", "?")] += 1
            per_second[str(call.args.get("channel"))][int(call.at)] += 1
    conn.send({"replies": sum(refs.values()), "unique": len(refs), "duplicates": sum(c - 1 for c in refs.values()),
               "http_429": sim.rate_limited_count,
               "max_per_channel_second": max((max(c.values()) for c in per_second.values()), default=0),
               "calls": dict(Counter(c.method for c in sim.calls))})
    sim.stop()


def burst(n: int, channels: int, db_url: str) -> dict[str, Any]:
    import multiprocessing

    from bot.runtime.scheduler import Clock
    from bot.services import sla

    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "tick skipped: still running" is expected
    now = datetime.now(UTC)
    rows, parents = [], []
    for i in range(1, n + 1):
        channel, ts = f"C0T{i % channels:05d}", f"{1700000000 + i}.000100"
        # 30 min SLA, reminder at 75 % (22.5 min): every reminder fell due during the last minute
        created = now - timedelta(minutes=22.5) - timedelta(seconds=60 * i / n)
        rows.append({"id": i, "team": f"t{i % channels:03d}", "requester_id": f"U{i:07d}",
                     "summary": f"Bench request {i}", "created_at": created, "triage_channel": channel,
                     "triage_ts": ts})
        parents.append((channel, ts))
    ours, theirs = multiprocessing.Pipe()
    slack = multiprocessing.get_context("fork").Process(target=_slack, args=(channels, parents, theirs), daemon=True)
    slack.start()
    base_url = ours.recv()
    settings = Settings(bot_token="xoxb-bench", signing_secret="s", slack_api_url=base_url, database_url=db_url,
                        **parse_config("bench.toml", config(channels)))
    engine = make_engine(db_url)
    seed(engine, rows)
    deps = _deps(settings, engine)
    while sla.plan_pending(deps, budget=5.0, batch=1000).requests:  # the timers, as the planner leaves them
        pass
    clock = Clock(deps)
    started = time.monotonic()
    clock.start()
    done_at, progress = None, []
    try:
        while time.monotonic() - started < 1800:
            sent = _count(engine, RequestEvent, RequestEvent.kind == "sla_reminder")
            progress.append((round(time.monotonic() - started, 1), int(sent)))
            if sent >= n:
                done_at = time.monotonic() - started
                break
            time.sleep(0.5)
    finally:
        clock.stop(wait=True)
        deps.outbox.stop()
    ours.send("report")
    seen = ours.recv()
    slack.join(timeout=30)
    with engine.connect() as conn:
        jobs = {f"{kind}:{status}": n for kind, status, n in conn.execute(
            select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))}
    engine.dispose()
    return {"reminders": n, "channels": channels, "database": engine.dialect.name,
            "load_avg_1m": round(os.getloadavg()[0], 2), "seconds": round(done_at or float("nan"), 1),
            "per_second": round(n / done_at, 1) if done_at else None,
            "floor_seconds": round(n / channels, 1),  # 1 message per second per channel
            "job_states": jobs, **seen, "progress": progress[:: max(1, len(progress) // 20)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get("ASKDESK_TEST_DATABASE_URL") or None)
    parser.add_argument("--skip", choices=["ticks", "burst"], action="append", default=[])
    parser.add_argument("--name", default=None, help="result file name (default sla-<engine>)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default docs/runs/<name>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    out: dict[str, Any] = {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                           "python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "ticks" not in args.skip:
            out["ticks"] = ticks(args.open, 10, fresh_database(args.database_url, workdir, "ticks"))
            print(json.dumps(out["ticks"], indent=2), flush=True)
        if "burst" not in args.skip:
            out["burst"] = burst(args.burst, args.channels, fresh_database(args.database_url, workdir, "burst"))
            print(json.dumps({k: v for k, v in out["burst"].items() if k != "progress"}, indent=2), flush=True)
    engine = "postgres" if args.database_url and args.database_url.startswith("postgres") else "sqlite"
    path = args.out or ROOT / "docs" / "runs" / f"{args.name or 'sla-' + engine}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
