"""The timed part of the digest benchmark (run in its own process by bench/bench_digest.py):

    python -m bench.digest_measure DATABASE_URL REPEAT   -> JSON on stdout
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import digest_handsql
from bench.digest_seed import team_config
from bot.analytics import extract_topics
from bot.config import Settings, parse_config
from bot.services import digests
from bot.services.digest_periods import Period, feedback_schedule, period_for_week
from storage.engine import make_engine
from storage.session import session_scope

WEEK, TZ = "2026-W47", "Europe/Berlin"
LIMIT_SECONDS, LIMIT_RSS_MB, LIMIT_RATIO = 2.0, 300.0, 1.5


def bench_settings(url: str) -> Settings:
    config = {"workspace": {"timezone": TZ, "leadership_channel": "C0LEADERS"}, "teams": team_config()}
    return Settings(database_url=url, **parse_config("bench.toml", config))


def _digests(engine: Any, settings: Settings, period: Period, topics: bool) -> digests.OrgDigest:
    with session_scope(engine) as session:
        teams = digests.compute(session, settings, settings.teams, period, topics=topics)
        return digests.compute_org(session, settings, period, teams=teams)


def _one_by_one(engine: Any, settings: Settings, period: Period) -> None:
    """How the scheduled jobs run: one computation per team job, then the organisation job."""
    for team in settings.teams:
        digests.team_digest(engine, settings, team, period)
    digests.org_digest(engine, settings, period)


def _handsql(engine: Any, settings: Settings, period: Period, topics: bool) -> dict[str, Any]:
    teams = [{"slug": t.slug, "fr": t.first_response_sla.nominal().total_seconds(),
              "res": t.resolution_sla.nominal().total_seconds()} for t in settings.teams]
    bounds = period.chart_bounds()
    with engine.connect() as conn:
        out = digest_handsql.run(conn, teams, bounds, settings.surveys.anonymity_threshold, with_texts=topics)
    if topics:
        texts: dict[str, list[str]] = defaultdict(list)
        for team, body in out["texts"]:
            texts[team].append(body)
        names = {t.slug: t.name for t in settings.teams}
        out["topics"] = {team: extract_topics(body, top=8, extra_stopwords=(team, names[team]))
                         for team, body in texts.items()}
    return out


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux carries that over from the parent across
    fork + exec, so it would report the seeding process's peak instead."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _check(org: digests.OrgDigest, hand: dict[str, Any]) -> int:
    """The two implementations must agree on the figures they share; returns how many were compared."""
    weekly = {(t, int(b)): n for t, b, n in hand["weekly"]}
    compared = 0
    for d in org.teams:
        assert d.new == weekly.get((d.team, 7), 0), (d.team, d.new)
        fr = hand["first_response"].get((d.team, True))
        if fr:
            assert abs(fr["median"] - (d.first_response.median or 0)) < 1e-6, (d.team, fr, d.first_response)
            assert abs(fr["p90"] - (d.first_response.p90 or 0)) < 1e-6, (d.team, fr, d.first_response)
            assert abs(fr["within"] - (d.first_response.within_sla or 0)) < 1e-6
        compared += 1
    return compared


def measure(url: str, repeat: int) -> dict[str, Any]:
    settings = bench_settings(url)
    engine = make_engine(url)
    period = period_for_week(WEEK, feedback_schedule(TZ))
    # jieba loads its dictionary once per process (~0.8 s); timed on its own so "cold" is the first
    # digest computation with cold database connections and caches.
    jieba_load = _time(lambda: extract_topics(["预热一下分词词典"]))[0]
    cold, org = _time(lambda: _digests(engine, settings, period, True))
    runs: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeat):  # interleaved so that cache effects hit both sides alike
        runs["digests"].append(_time(lambda: _digests(engine, settings, period, True))[0])
        runs["handsql_topics"].append(_time(lambda: _handsql(engine, settings, period, True))[0])
        runs["digests_no_topics"].append(_time(lambda: _digests(engine, settings, period, False))[0])
        hand_time, hand = _time(lambda: _handsql(engine, settings, period, False))
        runs["handsql"].append(hand_time)
    one_by_one = _time(lambda: _one_by_one(engine, settings, period))[0]
    compared = _check(org, hand)
    med = {k: statistics.median(v) for k, v in runs.items()}
    best = {k: min(v) for k, v in runs.items()}
    rss = peak_rss_mb()
    ratio = med["digests_no_topics"] / med["handsql"]
    ratio_topics = med["digests"] / med["handsql_topics"]
    verdict = {"under_2s": med["digests"] < LIMIT_SECONDS and cold < LIMIT_SECONDS,
               "under_300mb": rss < LIMIT_RSS_MB,
               "ratio_ok": ratio <= LIMIT_RATIO and ratio_topics <= LIMIT_RATIO}
    verdict["all_ok"] = all(verdict.values())
    return {
        "engine": engine.dialect.name, "week": WEEK,
        "period": [period.start.isoformat(), period.end.isoformat()], "jieba_load_seconds": jieba_load,
        "teams": len(settings.teams), "requests_in_week": sum(d.new for d in org.teams),
        "cold_seconds": cold, "median_seconds": med, "best_seconds": best,
        "ratio_best_vs_handsql": best["digests_no_topics"] / best["handsql"], "runs": runs,
        "one_by_one_seconds": one_by_one,
        "ratio_vs_handsql": ratio, "ratio_vs_handsql_with_topics": ratio_topics, "max_rss_mb": rss,
        "teams_cross_checked": compared, "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        "verdict": verdict,
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2])), indent=2))
