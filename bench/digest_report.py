"""docs/bench-digest.md from the merged results of bench/bench_digest.py (one section per engine)."""

from __future__ import annotations

from typing import Any


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _section(engine: str, r: dict[str, Any]) -> list[str]:
    med, best, shape, ok = r["median_seconds"], r["best_seconds"], r["shape"], r["verdict"]
    mark = {True: "yes", False: "**NO**"}
    return [
        f"## {engine} ({r['engine']})",
        "",
        f"Data: {shape['requests']:,} requests, {shape['ratings']:,} reactions, {shape['answers']:,} survey "
        f"answers (+{shape['unanswered']:,} unanswered), {r['teams']} teams, 30 departments; the week "
        f"{r['week']} ({r['period'][0]} – {r['period'][1]}) holds {r['requests_in_week']:,} new requests. "
        f"Load average during the run: {', '.join(f'{x:.1f}' for x in r['load_average'])} on "
        f"{r['cpus']} CPUs "
        "(a machine shared with other work).",
        "",
        "| what | median | best of the runs |",
        "|---|---|---|",
        f"| one-time jieba dictionary load (first Chinese text in a process) | "
        f"{_ms(r['jieba_load_seconds'])} | |",
        f"| every team digest + organisation digest, with topics: first run (cold) | "
        f"{_ms(r['cold_seconds'])} | |",
        f"| every team digest + organisation digest, with topics | {_ms(med['digests'])} | "
        f"{_ms(best['digests'])} |",
        f"| the same without topic extraction | {_ms(med['digests_no_topics'])} | "
        f"{_ms(best['digests_no_topics'])} |",
        f"| hand-written SQL aggregate of the same figures | {_ms(med['handsql'])} | "
        f"{_ms(best['handsql'])} |",
        f"| hand-written SQL + the same topic extraction | {_ms(med['handsql_topics'])} | "
        f"{_ms(best['handsql_topics'])} |",
        f"| as the scheduled jobs do it: one computation per team job + the organisation job | "
        f"{_ms(r['one_by_one_seconds'])} | |",
        "",
        f"- ratio digests / hand-written SQL (medians): **{r['ratio_vs_handsql']:.2f}x** without topics, "
        f"**{r['ratio_vs_handsql_with_topics']:.2f}x** with topics (target <= 1.5x): {mark[ok['ratio_ok']]}",
        f"- under 2 s (first run and median): {mark[ok['under_2s']]}; peak RSS (VmHWM) of the measuring "
        f"process **{r['max_rss_mb']:.0f} MB** (target < 300 MB): {mark[ok['under_300mb']]}",
        f"- cross-check: new requests, first-response median, p90 and SLA share agreed with the hand-written "
        f"SQL for all {r['teams_cross_checked']} teams",
        "",
    ]


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Weekly digest benchmark",
        "",
        "Produced by `bench/bench_digest.py` (`python -m bench.bench_digest --engine sqlite`, and "
        "`bash scripts/with-postgres.sh .venv/bin/python -m bench.bench_digest --engine postgres`). "
        "Timings are wall-clock medians of interleaved runs in one process; chart rendering and Slack "
        "posting are not included (they run per digest in the posting job).",
        "",
    ]
    for engine in ("sqlite", "postgres"):
        if engine in data:
            lines += _section(engine, data[engine])
    return "\n".join(lines + NOTES)


NOTES = [
    "## How it is measured, and caveats",
    "",
    "- The data (`bench/digest_seed.py`, seeded with `executemany` / `COPY` into /tmp and reused) spreads "
    "the requests over the 52 weeks before the measured week, team and department sizes skewed (Zipf-like), "
    "20 % of the texts in Chinese, ~4 million request events, time-ordered ids as in a table that grows over "
    "time (1,000,000 requests, 307,046 answered surveys, 410,867 reactions). The measured week holds about "
    "19,300 new requests, 19,300 resolutions, 5,900 survey answers and 8,400 reactions (7,100 requester "
    "ratings).",
    "- \"Every team digest + organisation digest\" is `digests.compute()` for the 50 teams in one pass plus "
    "`compute_org()` (the department x team matrix), all figures of the issue including the 8-week chart "
    "series, the comparison with the week before, the gated satisfaction figures, anonymous comments, "
    "links and the topic extraction. The scheduled jobs compute one team per job instead (last row).",
    "- The yardstick `bench/digest_handsql.py` is one hand-written SQL script per dialect that computes the "
    "same figures with everything SQL can do done in the database, percentiles included (window functions), "
    "using the same indexes. Topic extraction cannot be written in SQL, so the ratio is given without topics "
    "on both sides and with the same `extract_topics` call added to the yardstick.",
    "- The machine is a shared 2-CPU VM on which other test suites ran at the same time. The load average "
    "is recorded with each run; the results above come from runs at a load of about 1.8. Runs at a load "
    "average of 4 to 13 on the same data took 1.1-4.6 s (median, with topics) and up to 4.7 s for the "
    "first run — the SQL and the topic extraction are CPU-bound, so they slow down in proportion.",
    "- The one-time jieba dictionary load (~0.8-1.2 s when idle) is paid by the first digest of a process "
    "that meets Chinese text; a long-running bot pays it once per start. So the very first computation in a "
    "fresh process (jieba load + first run) took about 2.9 s on SQLite and 1.8 s on PostgreSQL in the runs "
    "above — over 2 s on SQLite; every later one is well under. Peak RSS is read from `VmHWM` of "
    "the measuring process, which runs in its own interpreter (Linux `ru_maxrss` would report the seeding "
    "parent's peak across fork + exec).",
    "- SQLite: askdesk's session scope begins every transaction with `BEGIN IMMEDIATE` and an in-process "
    "writer lock, so computing all digests holds the write lock for its duration (~0.5-1 s here).",
    "",
]
