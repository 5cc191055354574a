"""Acknowledgement latency and throughput of `askdesk run --http` against a bare Bolt app.

    .venv/bin/python -m bench.bench_ack [--requests 2000] [--rounds 5] [--concurrency 32] [--latency 0.2]
                                        [--workers N] [--floor] [--bare-keepalive] [--fake-in-process]
                                        [--database-url URL] [--name NAME]

Both apps run as subprocesses with the same server setup (Bolt's WSGI adapter under waitress);
the Slack simulator answers every Web API call after `--latency` seconds. Each app has its own
simulator, in a process of its own (bench/slack_fake.py; `--fake-in-process` puts it in this one,
beside the load generator, as before). 32 client threads in this process send
signed `/ask-finance` commands; we measure ack latency, throughput (acks/s and fully handled
requests/s: ack and triage post both done), and each request's delay from ack to triage post.
All apps are started first and then take turns (`--rounds`), so a machine whose speed drifts
(a shared host) slows them alike; the ratio is given over all rounds and round by round. After its
round each app is left to finish its post-ack work (until it uses no more CPU) before the next starts.
`--floor` adds a third app between the two: the bare app plus the least any intake must do (one
raw INSERT before the ack, a second plain post after it; see bench/bare_app.py).
Results go to docs/<NAME>.md (default docs/bench-ack.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import FINANCE_TOML, free_port, pct, rss_mb, spawn, stop, wait_http, write_result
from bench.slack_fake import LocalFake, RemoteFake
from slacksim.driver import SlackDriver

SECRET = "bench-signing-secret"
CONFIG = FINANCE_TOML


def start_target(kind: str, api_url: str, workdir: Path, workers: int = 1,
                 database_url: str | None = None) -> tuple[Any, str, int]:
    port = free_port()
    if kind in ("bare", "bare-keepalive", "floor"):
        floor = ["--floor", database_url or f"sqlite:///{workdir / 'floor.db'}"] if kind == "floor" else []
        floor += ["--keepalive"] if kind == "bare-keepalive" else []
        proc = spawn(["-m", "bench.bare_app", "--port", str(port), "--api", api_url, "--secret", SECRET,
                      "--workers", str(workers), *floor], log=workdir / f"{kind}.log")
    else:
        config = workdir / "askdesk.toml"
        config.write_text(CONFIG)
        env = {"SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": api_url,
               "DATABASE_URL": database_url or f"sqlite:///{workdir / 'bench.db'}", "ASKDESK_CONFIG": str(config),
               "LOG_LEVEL": "WARNING", "SLACK_APP_TOKEN": ""}
        proc = spawn(["-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", str(port),
                      "--workers", str(workers)], env=env,
                     log=workdir / "askdesk.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/healthz")
    return proc, base + "/slack/events", proc.pid


def run_load(fake: LocalFake | RemoteFake, url: str, n: int, concurrency: int, tag: str,
             users: int = 5000) -> dict[str, Any]:
    """`n` signed commands from `concurrency` clients; raw timings (see `summarize`)."""
    driver = SlackDriver(url, SECRET, fake.world)
    acks: dict[int, tuple[float, float]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        user = f"U0B{i % users:05d}"
        start = time.monotonic()
        resp = driver.slash("/ask-finance", f"{tag}-{i} where is my refund?", user_id=user)
        end = time.monotonic()
        with lock:
            if resp.status != 200:
                errors.append(f"{resp.status}")
            acks[i] = (start, end)

    t0 = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    t_acked = time.monotonic()
    # wait (bounded) until every triage post arrived
    deadline = time.monotonic() + 120
    posts: dict[int, float] = {}
    while time.monotonic() < deadline:
        posts = fake.posts(tag)
        if len(posts) >= n:
            break
        time.sleep(0.1)
    t_done = max(posts.values()) if posts else time.monotonic()
    return {"n": n, "errors": len(errors), "latencies": [(e - s) * 1000 for s, e in acks.values()],
            "post_delays": [posts[i] - acks[i][1] for i in posts if i in acks], "posts": len(posts),
            "ack_s": t_acked - t0, "done_s": t_done - t0}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU time of a process plus its worker children, from /proc."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid] + ([int(c) for c in children.read_text().split()] if children.exists() else [])
    user = system = 0
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def total_rss(pid: int) -> float:
    """RSS of a process plus its worker children (MB)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    return rss_mb(pid) + sum(rss_mb(k) for k in kids)


class Target:
    """One app under test, started once and loaded in turns with the others."""

    def __init__(self, kind: str, args: argparse.Namespace, workdir: Path) -> None:
        self.kind, self.users = kind, args.users
        self.fake = (LocalFake if args.fake_in_process else RemoteFake)(args.latency, max(args.users, 5000))
        self.proc, self.url, self.pid = start_target(kind, self.fake.base_url, workdir, args.workers,
                                                     args.database_url)
        self.rounds: list[dict[str, Any]] = []
        time.sleep(1.0)
        self.idle_rss = total_rss(self.pid)

    def warm(self, concurrency: int) -> None:
        run_load(self.fake, self.url, 64, concurrency, "warm")
        deadline = time.monotonic() + 30  # let the warm-up's posts land before the first measured round
        while self.fake.count("chat.postMessage") < 64 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)

    def settle(self, quiet: float = 0.3, limit: float = 10.0) -> None:
        """Wait until this app has stopped using CPU (its last DMs and records done, its WAL
        checkpointed), so that it does not run on into the next app's round."""
        deadline = time.monotonic() + limit
        last = sum(cpu_seconds(self.pid))
        while time.monotonic() < deadline:
            time.sleep(quiet)
            now = sum(cpu_seconds(self.pid))
            if now - last < 0.01:  # less than one clock tick of CPU in the last `quiet` seconds
                return
            last = now

    def round(self, n: int, concurrency: int, tag: str) -> dict[str, Any]:
        self.fake.reset()
        remote = self.fake.pid != os.getpid()
        cpu_before, own_before = cpu_seconds(self.pid), time.process_time()
        fake_before = sum(cpu_seconds(self.fake.pid)) if remote else 0.0
        result = run_load(self.fake, self.url, n, concurrency, tag, self.users)
        user, system = (after - before for after, before in zip(cpu_seconds(self.pid), cpu_before, strict=True))
        fake_cpu = sum(cpu_seconds(self.fake.pid)) - fake_before if remote else None  # in ours: bench_cpu
        result.update(cpu_s=user + system, sys_s=system, bench_cpu_s=time.process_time() - own_before,
                      fake_cpu_s=fake_cpu)
        self.rounds.append(result)
        self.settle()
        return result

    def close(self) -> None:
        self.rss_after = total_rss(self.pid)
        stop(self.proc)
        self.fake.stop()

    def summary(self) -> dict[str, Any]:
        rounds = self.rounds
        n = sum(r["n"] for r in rounds)
        lat = [x for r in rounds for x in r["latencies"]]
        delays = [x for r in rounds for x in r["post_delays"]]
        return {
            "target": self.kind, "requests": n, "rounds": len(rounds), "errors": sum(r["errors"] for r in rounds),
            "ack_p50_ms": round(pct(lat, 50), 1), "ack_p95_ms": round(pct(lat, 95), 1),
            "ack_p99_ms": round(pct(lat, 99), 1), "ack_max_ms": round(max(lat), 1),
            "acks_per_s": round(n / sum(r["ack_s"] for r in rounds), 1),
            "handled_per_s": round(sum(r["posts"] for r in rounds) / sum(r["done_s"] for r in rounds), 1),
            "triage_posts": sum(r["posts"] for r in rounds),
            "post_delay_p50_s": round(pct(delays, 50), 2), "post_delay_p99_s": round(pct(delays, 99), 2),
            "post_delay_max_s": round(max(delays or [0]), 2),
            "cpu_ms_per_request": round(sum(r["cpu_s"] for r in rounds) / n * 1000, 2),
            "cpu_sys_ms_per_request": round(sum(r["sys_s"] for r in rounds) / n * 1000, 2),
            # this process: the 32 clients (and the Slack fake with --fake-in-process), and the fake in its
            # own process: the harness shares the same 2 cores with the app
            "bench_cpu_ms_per_request": round(sum(r["bench_cpu_s"] for r in rounds) / n * 1000, 2),
            "fake_cpu_ms_per_request": None if rounds[0]["fake_cpu_s"] is None else
            round(sum(r["fake_cpu_s"] for r in rounds) / n * 1000, 2),
            "idle_rss_mb": round(self.idle_rss, 1), "rss_after_mb": round(self.rss_after, 1),
            "round_handled_per_s": [round(r["posts"] / r["done_s"], 1) for r in rounds],
        }


def median(values: list[float]) -> float:
    return pct(values, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per app, over all rounds")
    parser.add_argument("--rounds", type=int, default=5,
                        help="the apps take turns, ROUNDS times each, so that drift in the machine's speed "
                             "hits them alike")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--users", type=int, default=5000,
                        help="distinct requesters the commands come from (5000: nearly every request is a "
                             "person's first, whose language askdesk must look up; fewer: repeat requesters)")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=1, help="worker processes for EVERY app")
    parser.add_argument("--database-url", default=None,
                        help="askdesk's database (default: a fresh SQLite file); e.g. $ASKDESK_TEST_DATABASE_URL")
    parser.add_argument("--name", default="bench-ack", help="result file name under docs/")
    parser.add_argument("--floor", action="store_true",
                        help="also run the intake floor: bare + one raw INSERT before the ack + a second post")
    parser.add_argument("--fake-in-process", action="store_true",
                        help="run the Slack fake in this process, beside the load generator (as before it had "
                             "a process of its own), instead of in a child process")
    parser.add_argument("--bare-keepalive", action="store_true",
                        help="also run the bare app posting over askdesk's pooled transport instead of Bolt's client")
    args = parser.parse_args()
    kinds = ["bare", *(["bare-keepalive"] if args.bare_keepalive else []), *(["floor"] if args.floor else []),
             "askdesk"]
    per_round = max(1, args.requests // args.rounds)
    load = os.getloadavg()  # the machine is shared: how busy it was when the run started
    with tempfile.TemporaryDirectory() as tmp:
        targets = []
        try:
            for kind in kinds:
                targets.append(Target(kind, args, Path(tmp)))
            for target in targets:
                target.warm(args.concurrency)
                target.settle()
            for r in range(args.rounds):
                for target in targets:
                    target.round(per_round, args.concurrency, f"run{r}")
        finally:
            for target in targets:
                target.close()
        results = [t.summary() for t in targets]
    bare, ours = results[0], results[-1]

    def ratios(other: dict[str, Any]) -> list[float]:
        return [o / b for o, b in zip(other["round_handled_per_s"], bare["round_handled_per_s"], strict=True)]

    ratio = ours["handled_per_s"] / bare["handled_per_s"] if bare["handled_per_s"] else float("nan")
    ours_rounds = ratios(ours)
    cols = ["ack_p50_ms", "ack_p99_ms", "ack_max_ms", "acks_per_s", "handled_per_s", "post_delay_p99_s",
            "post_delay_max_s", "cpu_ms_per_request", "cpu_sys_ms_per_request", "bench_cpu_ms_per_request",
            "fake_cpu_ms_per_request",
            "errors", "idle_rss_mb", "rss_after_mb"]
    lines = ["# bench_ack: acknowledgement latency and throughput", "",
             f"Command: `.venv/bin/python -m bench.bench_ack --requests {args.requests} --rounds {args.rounds} "
             f"--concurrency {args.concurrency} --latency {args.latency} --workers {args.workers}"
             f"{' --floor' if args.floor else ''}{' --bare-keepalive' if args.bare_keepalive else ''}"
             f"{f' --users {args.users}' if args.users != 5000 else ''}"
             f"{' --fake-in-process' if args.fake_in_process else ''}`"
             f"{' on PostgreSQL' if args.database_url else ' on SQLite'}  ",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"run at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
             f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at the start.  ",
             f"The apps took turns: {args.rounds} rounds of {per_round} requests each, in the order "
             f"{', '.join(kinds)}.", "",
             "| target | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in results:
        lines.append(f"| {r['target']} | " + " | ".join(str(r[c]) for c in cols) + " |")
    lines += ["", "Fully handled requests per second (ack and triage post both done), round by round:", ""]
    for r in results:
        lines.append(f"- {r['target']}: {', '.join(str(x) for x in r['round_handled_per_s'])}")
    lines += ["", f"askdesk / bare over all rounds: **{ratio:.0%}**; round by round: "
              f"{', '.join(f'{x:.0%}' for x in ours_rounds)} (median **{median(ours_rounds):.0%}**).", ""]
    data: dict[str, Any] = {"results": results, "ratio_handled": ratio, "ratio_rounds": ours_rounds,
                            "load_average_at_start": load}
    for other, what in (("bare-keepalive", "the bare app posting over askdesk's pooled transport"),
                        ("floor", "one raw INSERT before the ack, two plain posts, nothing else")):
        if other not in kinds:
            continue
        found = results[kinds.index(other)]
        rounds = ratios(found)
        whole = found["handled_per_s"] / bare["handled_per_s"] if bare["handled_per_s"] else float("nan")
        lines += [f"{other} / bare ({what}): **{whole:.0%}**; round by round: "
                  f"{', '.join(f'{x:.0%}' for x in rounds)} (median **{median(rounds):.0%}**).", ""]
        data.update({f"ratio_{other}": whole, f"ratio_{other}_rounds": rounds})
    if "bare-keepalive" in kinds:
        ka = results[kinds.index("bare-keepalive")]
        against = [o / b for o, b in zip(ours["round_handled_per_s"], ka["round_handled_per_s"], strict=True)]
        whole = ours["handled_per_s"] / ka["handled_per_s"] if ka["handled_per_s"] else float("nan")
        lines += [f"askdesk / bare-keepalive: **{whole:.0%}**; round by round: "
                  f"{', '.join(f'{x:.0%}' for x in against)} (median **{median(against):.0%}**).", ""]
        data.update(ratio_vs_bare_keepalive=whole, ratio_vs_bare_keepalive_rounds=against)
    if "floor" in kinds:  # the target (issue 12): askdesk against the floor, side by side
        floor = results[kinds.index("floor")]
        against = [o / f for o, f in zip(ours["round_handled_per_s"], floor["round_handled_per_s"], strict=True)]
        whole = ours["handled_per_s"] / floor["handled_per_s"] if floor["handled_per_s"] else float("nan")
        lines += [f"askdesk / floor over all rounds: **{whole:.0%}**; round by round: "
                  f"{', '.join(f'{x:.0%}' for x in against)} (median **{median(against):.0%}**).", ""]
        data.update(ratio_vs_floor=whole, ratio_vs_floor_rounds=against)
    lines += ["Targets (issue 12): askdesk handles at least 75% of the floor's requests per second; ack p99 < 300 ms; "
              "every triage post within 5 s of its ack; idle RSS < 120 MB.", ""]
    path = write_result(args.name, "\n".join(lines), data)
    print("\n".join(lines))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
