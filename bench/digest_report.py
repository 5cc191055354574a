"""docs/bench-digest.md from the merged results of bench/bench_digest.py (one section per engine)."""

from __future__ import annotations

from typing import Any


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _section(engine: str, r: dict[str, Any]) -> list[str]:
    med, shape, ok = r["median_seconds"], r["shape"], r["verdict"]
    mark = {True: "yes", False: "**NO**"}
    return [
        f"## {engine} ({r['engine']})",
        "",
        f"Data: {shape['requests']:,} requests, {shape['ratings']:,} reactions, {shape['answers']:,} survey answers "
        f"(+{shape['unanswered']:,} unanswered), {r['teams']} teams, 30 departments; the week {r['week']} "
        f"({r['period'][0]} – {r['period'][1]}) holds {r['requests_in_week']:,} new requests.",
        "",
        "| what (median of the timed runs) | time |",
        "|---|---|",
        f"| every team digest + organisation digest, with topics (first run, cold) | {_ms(r['cold_seconds'])} |",
        f"| every team digest + organisation digest, with topics | {_ms(med['digests'])} |",
        f"| the same without topic extraction | {_ms(med['digests_no_topics'])} |",
        f"| hand-written SQL aggregate of the same figures | {_ms(med['handsql'])} |",
        f"| hand-written SQL + the same topic extraction | {_ms(med['handsql_topics'])} |",
        f"| as the scheduled jobs do it: one computation per team job + the organisation job | "
        f"{_ms(r['one_by_one_seconds'])} |",
        "",
        f"- ratio digests / hand-written SQL: **{r['ratio_vs_handsql']:.2f}x** without topics, "
        f"**{r['ratio_vs_handsql_with_topics']:.2f}x** with topics (target <= 1.5x): {mark[ok['ratio_ok']]}",
        f"- under 2 s: {mark[ok['under_2s']]}; peak RSS of the measuring process **{r['max_rss_mb']:.0f} MB** "
        f"(target < 300 MB): {mark[ok['under_300mb']]}",
        f"- cross-check: new requests, first-response median, p90 and SLA share agreed with the hand-written SQL "
        f"for all {r['teams_cross_checked']} teams",
        "",
    ]


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Weekly digest benchmark",
        "",
        "Produced by `bench/bench_digest.py` (`python -m bench.bench_digest --engine sqlite`, and "
        "`bash scripts/with-postgres.sh .venv/bin/python -m bench.bench_digest --engine postgres`). "
        "Timings are wall-clock medians of interleaved runs in one process; chart rendering and Slack posting "
        "are not included (they run per digest in the posting job).",
        "",
    ]
    for engine in ("sqlite", "postgres"):
        if engine in data:
            lines += _section(engine, data[engine])
    return "\n".join(lines)
