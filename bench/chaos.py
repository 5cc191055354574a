"""Chaos: requests, claims and resolutions through a misbehaving Slack while the server is SIGKILLed.

    .venv/bin/python -m bench.chaos [--requests 1000] [--kills 2] [--database-url URL] [--seed 14]

`askdesk run --http` runs as a subprocess against the loopback Slack simulator, which answers every
Web API call (auth.test aside) with a random fault: 10 % 429 (Retry-After 1-10 s), 5 % 5xx (half of
them after the message was stored), 5 % only after 15-30 s (half of those take effect at once and
only the answer is late, half take effect at the end of the wait). 24 simulated people send
`--requests` slash commands (three teams); a responder claims each request and the requester or
the responder resolves it a few seconds later; each resolution schedules a pulse survey 5 s later.
While the commands go out the server is SIGKILLed `--kills` times and started again at once; a
command or click that gets no answer meanwhile is sent again, as a person would.

After the last click the benchmark waits until the outbox is empty (quiescence) and then checks
what Slack shows against the database:
- requests lost: acknowledged with a number, but not stored or never posted to their team (must be 0);
- duplicated messages: more than one message in a channel or DM with the same metadata (must be 0);
- stale messages: a triage message or requester DM that does not show the request's stored state
  exactly (must be 0);
- time to quiescence, counted from the last click.
The result replaces the "## Chaos" section of docs/benchmarks.md; the raw figures go to
docs/runs/chaos-<engine>.json. Without `--database-url` a fresh SQLite file is used.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import re
import signal
import subprocess
import tempfile
import threading
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from bench.bench_surveys import fresh_database
from bench.common import ROOT, free_port, spawn, wait_http
from bot.services import sla
from slacksim.driver import SlackDriver
from slacksim.simulator import Chaos, SlackSimulator
from storage.engine import make_engine
from storage.models import Job, Request, Survey
from storage.session import read_scope, session_scope

SECRET, TOKEN = "chaos-signing-secret", "xoxb-chaos"
TEAMS = [("finance", "C0FINANCE", "U0RESP1", "/ask-finance"), ("it", "C0IT", "U0RESP2", "/ask-it"),
         ("hr", "C0HR", "U0RESP3", "/ask-hr")]
TOML = "".join(f'[[teams]]\nslug = "{slug}"\nname = "{slug.upper()}"\nchannel = "{channel}"\n\n'
               for slug, channel, _r, _c in TEAMS) + """
[workspace]
timezone = "UTC"

[surveys]
delay = "5s"
working_hours = "00:00-23:59"
working_days = "mon-sun"
min_days_between = 0

[scheduler]
tick = 0.5
lease = "10s"
"""
NUMBER = re.compile(r"\*#(\d+)\*")
HEADER = ("| database | acknowledged | lost | duplicated messages | stale messages | quiescence (s after the last "
          "click) | load (s) | commands / clicks sent again | stored, answer lost in a kill | faults drawn |\n"
          "|---|---|---|---|---|---|---|---|---|---|")


@dataclass
class Tally:
    acked: dict[int, str] = field(default_factory=dict)  # request number -> requester
    resent_commands: int = 0
    resent_clicks: int = 0
    clicks_without_effect: int = 0  # answered, but the request did not change: clicked again
    clicks: int = 0
    last_click: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Server:
    """The askdesk process: started, SIGKILLed, started again on the same port."""

    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env, self.workdir, self.port = env, workdir, free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        self.starts += 1
        self.proc = spawn(["-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", str(self.port)],
                          env=self.env, log=self.workdir / f"askdesk-{self.starts}.log")
        return wait_http(f"{self.url}/healthz", timeout=60)

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=60)


def world(requesters: list[str]) -> SlackSimulator:
    sim = SlackSimulator(keep_responses=False)
    for slug, channel, responder, _command in TEAMS:
        sim.add_user(responder, name=f"resp-{slug}", tz="UTC")
        sim.add_channel(channel, name=f"{slug}-triage", members=[responder, "UBOT"])
    for i, user in enumerate(requesters):
        sim.add_user(user, name=f"req{i}", tz="UTC")
    sim.add_channel("C0GENERAL", name="general", members=[*requesters, "UBOT"])
    return sim


def send(action: Any, tally: Tally, *, click: bool) -> Any:
    """Send until the app answers 200 (a person tries again when Slack shows an error)."""
    counted = False
    while True:
        try:
            resp = action()
            if resp.status == 200:
                return resp
        except OSError:
            pass
        if not counted:
            counted = True
            with tally.lock:
                if click:
                    tally.resent_clicks += 1
                else:
                    tally.resent_commands += 1
        time.sleep(0.5)


def status_of(engine: Any, number: int) -> str | None:
    with read_scope(engine) as s:
        req = s.get(Request, number)
        return req.status if req is not None else None


def person(n: int, driver: SlackDriver, tally: Tally, requesters: list[str], rnd: random.Random,
           engine: Any) -> None:
    slug, channel, responder, command = TEAMS[n % len(TEAMS)]
    requester = requesters[n % len(requesters)]
    resp = send(lambda: driver.slash(command, f"chaos request {n}: please help", user_id=requester,
                                     channel_id="C0GENERAL"), tally, click=False)
    found = NUMBER.search(resp.body)
    if found is None:
        raise RuntimeError(f"no request number in the answer: {resp.body[:200]}")
    number = int(found.group(1))
    with tally.lock:
        tally.acked[number] = requester
    time.sleep(rnd.uniform(0.0, 3.0))  # often while the triage post or the DM is still in flight
    clicks = [(responder, "req_claim", "claimed"), (rnd.choice([responder, requester]), "req_resolve", "resolved")]
    for user, action, becomes in clicks:
        while True:  # a person who is told "try again" (or sees nothing change) clicks again
            send(lambda u=user, a=action: driver.block_action(user_id=u, action_id=a, value=str(number),
                                                              channel_id=channel, message_ts="1.000000"),
                 tally, click=True)
            with tally.lock:
                tally.clicks += 1
                tally.last_click = time.monotonic()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and status_of(engine, number) != becomes:
                time.sleep(0.2)
            if status_of(engine, number) == becomes:
                break
            with tally.lock:
                tally.clicks_without_effect += 1
        time.sleep(rnd.uniform(0.5, 4.0))


def outstanding(engine: Any) -> int:
    """Jobs still to run: pending or running, SLA timers aside (the reminders of requests still open,
    whose commands were stored but answered too late for their sender, fall due hours later)."""
    with session_scope(engine) as s:
        return int(s.exec(select(func.count()).select_from(Job)
                          .where(col(Job.status).in_(["pending", "running"]),
                                 col(Job.kind).not_in(list(sla.KINDS.values())))).one())


def verify(sim: SlackSimulator, db_url: str, tally: Tally, requesters: list[str]) -> dict[str, Any]:
    """Compare what Slack shows with the database (see the module doc)."""
    from bot.config import Settings, parse_config
    from bot.runtime.jobs import build_deps
    from bot.services.messages import dm_view, triage_view

    settings = Settings(bot_token=TOKEN, signing_secret=SECRET, slack_api_url=sim.base_url, database_url=db_url,
                        **parse_config("askdesk.toml", tomllib.loads(TOML)))
    engine = make_engine(db_url)
    deps = build_deps(settings, engine)
    with session_scope(engine) as s:
        stored = {r.id: r for r in s.exec(select(Request)).all()}
        surveys = dict(s.exec(select(Survey.status, func.count()).group_by(Survey.status)).all())
        jobs = dict(s.exec(select(Job.status, func.count()).group_by(Job.status)).all())
        failed = [(j.key, j.last_error) for j in s.exec(select(Job).where(Job.status == "failed")).all()]
    lost = sorted(n for n in tally.acked if n not in stored or stored[n].post_state != "posted"
                  or not stored[n].triage_ts)
    copies: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for channel in [c for _s, c, _r, _x in TEAMS] + requesters:
        for msg in sim.messages(channel):
            meta = msg.get("metadata") or {}
            if meta.get("event_type"):
                copies[(channel, meta["event_type"], str((meta.get("event_payload") or {}).get("ref")))] += 1
    duplicates = {f"{k[0]} {k[1]} {k[2]}": n for k, n in copies.items() if n > 1}
    stale: list[str] = []
    for req in stored.values():
        team = settings.team(req.team)
        assert team is not None
        want = {"triage": (req.triage_channel, req.triage_ts, triage_view(deps, req, team)),
                "dm": (req.requester_id, req.dm_ts, dm_view(deps, req, team))}
        for what, (channel, ts, msg) in want.items():
            shown = [m for m in sim.messages(channel or "") if m["ts"] == ts] if ts else []
            if not shown or [shown[0].get("text"), shown[0].get("blocks")] != [msg.text, msg.as_dicts()]:
                seen = "nothing" if not shown else _status_of(shown[0])
                stale.append(f"#{req.id} {what}: shows {seen}, stored {req.status}")
    engine.dispose()
    return {"requests_acknowledged": len(tally.acked), "requests_stored": len(stored),
            "stored_without_answer": len(set(stored) - set(tally.acked)),
            "requests_lost": len(lost), "lost": lost[:20],
            "duplicated_messages": sum(n - 1 for n in duplicates.values()), "duplicates": dict(list(
                duplicates.items())[:20]),
            "stale_messages": len(stale), "stale": stale[:20],
            "requests_resolved": sum(1 for r in stored.values() if r.status == "resolved"),
            "survey_states": surveys, "job_states": jobs, "failed_jobs": failed[:20],
            "survey_dms": sum(n for k, n in copies.items() if k[1] == "askdesk_survey")}


def _status_of(message: dict[str, Any]) -> str:
    """The status a rendered request message shows (for the report of a stale one)."""
    shown = json.dumps(message.get("blocks") or []) + str(message.get("text"))
    return next((word for word in ("Resolved", "Claimed", "Open") if word in shown), "?")


def run(args: argparse.Namespace) -> dict[str, Any]:
    rnd = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="askdesk-chaos-"))
    db_url = fresh_database(args.database_url, workdir, "chaos")
    requesters = [f"U0REQ{i:04d}" for i in range(200)]
    sim = world(requesters).start()
    config = workdir / "askdesk.toml"
    config.write_text(TOML)
    server = Server({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": sim.base_url,
                     "DATABASE_URL": db_url, "ASKDESK_CONFIG": str(config), "LOG_LEVEL": "WARNING",
                     "SLACK_APP_TOKEN": ""}, workdir)
    server.start()
    chaos = Chaos(rate_limited=0.10, server_errors=0.05, stored_share=0.5, slow=0.05, slow_seconds=(15, 30),
                  slow_stored_share=0.5, retry_after=(1, 10), seed=args.seed)
    sim.set_chaos(chaos)
    driver = SlackDriver(f"{server.url}/slack/events", SECRET, sim, timeout=10)
    tally = Tally()
    engine = make_engine(db_url)
    kills_at = [round(args.requests * (k + 1) / (args.kills + 1)) for k in range(args.kills)]
    restarts: list[float] = []
    done = threading.Event()

    def killer() -> None:  # SIGKILL the server when that many requests have been acknowledged
        for at in kills_at:
            while len(tally.acked) < at and not done.wait(0.05):
                pass
            if done.is_set():
                return
            server.kill()
            restarts.append(round(server.start(), 2))

    watcher = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    watcher.start()
    with ThreadPoolExecutor(args.people) as pool:
        futures = []
        for n in range(args.requests):
            futures.append(pool.submit(person, n, driver, tally, requesters, random.Random(rnd.random()), engine))
            time.sleep(args.interval)
        for fut in futures:
            fut.result()
    done.set()
    watcher.join()
    load_done = time.monotonic()
    quiet_at = None
    while time.monotonic() - load_done < args.timeout:
        if outstanding(engine) == 0:
            quiet_at = time.monotonic()
            break
        time.sleep(1.0)
    engine.dispose()
    server.stop()
    sim.set_chaos(None)
    result = verify(sim, db_url, tally, requesters)
    calls = collections.Counter(c.method for c in sim.calls)
    sim.stop()
    result.update({
        "database": "postgresql" if db_url.startswith("postgresql") else "sqlite",
        "requests": args.requests, "kills": args.kills, "people": args.people, "seed": args.seed,
        "restart_seconds": restarts,
        "load_seconds": round(load_done - started, 1),
        "seconds_to_quiescence": round(quiet_at - tally.last_click, 1) if quiet_at else None,
        "commands_resent": tally.resent_commands, "clicks": tally.clicks, "clicks_resent": tally.resent_clicks,
        "clicks_without_effect": tally.clicks_without_effect,
        "faults_drawn": dict(chaos.drawn), "slack_calls": sum(calls.values()),
        "slack_calls_by_method": dict(calls.most_common()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_avg_1m": round(os.getloadavg()[0], 2),
    })
    return result


def verdict(results: list[dict[str, Any]]) -> str:
    """Met / not met for each target (every run must meet it)."""
    lines = []
    for key, what in (("requests_lost", "requests lost"), ("duplicated_messages", "messages duplicated"),
                      ("stale_messages", "messages not showing the final state after quiescence")):
        worst = max(r[key] for r in results)
        each = ", ".join(f"{r[key]} on {r['database']}" for r in results)
        lines.append(f"* 0 {what}: **{'met' if worst == 0 else 'not met'}** ({each}).")
    lines.append("* Time to quiescence (no target, reported): " + ", ".join(
        f"{r['seconds_to_quiescence']} s on {r['database']}" if r["seconds_to_quiescence"] is not None
        else f"not reached within the timeout on {r['database']}" for r in results) + ".")
    return "\n".join(lines)


def markdown(results: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| {r['database']} | {r['requests_acknowledged']} | {r['requests_lost']} | {r['duplicated_messages']} | "
        f"{r['stale_messages']} | {r['seconds_to_quiescence']} | {r['load_seconds']} | "
        f"{r['commands_resent']} / {r['clicks_resent']} | {r['stored_without_answer']} | "
        f"{sum(r['faults_drawn'].values())} of {r['slack_calls']} |" for r in results)
    first = results[0]
    drawn = ", ".join(f"{k} {v}" for k, v in sorted(first["faults_drawn"].items()))
    return f"""## Chaos

**Question.** Issue 14: with Slack misbehaving and the server killed mid-work, is any request lost,
any message posted twice, or any message left showing an old state once the app is quiet, and how
long does it take to get quiet?

**How it was measured.** `python -m bench.chaos` (see its docstring): {first['requests']} slash commands from
{first['people']} simulated people over three teams, each claimed and then resolved (by the responder or the
requester), through the Slack simulator answering 10 % of Web API calls 429 (Retry-After 1-10 s), 5 % 5xx
(half after storing the message) and 5 % only after 15-30 s (half stored at once, half at the end of the
wait), while `askdesk run --http` (defaults but a 0.5 s scheduler tick, a 10 s lease and surveys 5 s after
resolution) is SIGKILLed {first['kills']} times and started again at once. Commands and clicks that got no
answer during a restart are sent again, as a person would.

{HEADER}
{rows}

Lost: acknowledged with a number but not stored or never posted to the team. Duplicated: more
than one message with the same metadata in a channel or DM. Stale: a triage message or requester
DM not showing exactly what the stored request renders to. Quiescence: the outbox holds no pending
or running job (sweeps for late duplicates run 60 s after a retried post, so it is at least that).
Faults in the first run: {drawn}. Machine: {first['machine']}; load average at the end
{first['load_avg_1m']}. Raw figures: `docs/runs/chaos-<database>.json`.

Results against the targets:

{verdict(results)}
"""


def write_section(section: str) -> Path:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Chaos\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--people", type=int, default=24, help="simulated people acting at the same time")
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between two new commands")
    parser.add_argument("--database-url", default=os.environ.get("ASKDESK_TEST_DATABASE_URL"))
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=1800, help="longest wait for quiescence (s)")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md and docs/runs/")
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result, indent=2))
    if args.write:
        runs = ROOT / "docs" / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        (runs / f"chaos-{result['database']}.json").write_text(json.dumps(result, indent=2) + "\n")
        found = [json.loads(p.read_text()) for p in sorted(runs.glob("chaos-*.json"))]
        print(f"wrote {write_section(markdown(found))}")


if __name__ == "__main__":
    main()
