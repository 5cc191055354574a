"""bench/bench_sla.py at a toy size: both parts run against the real code and report what the
benchmark's write-up relies on (every reminder once, no 429, the tick phases measured)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import bench_sla


def test_bench_sla_runs_end_to_end_at_a_small_size(tmp_path: Path, db_url: str) -> None:
    out = tmp_path / "sla.json"
    args = ["--open", "300", "--burst", "40", "--channels", "40", "--out", str(out)]
    on_postgres = ["--database-url", db_url] if db_url.startswith("postgresql") else []  # else fresh SQLite files
    assert bench_sla.main(args + on_postgres) == 0
    result = json.loads(out.read_text())
    ticks, burst = result["ticks"], result["burst"]
    assert ticks["plan_from_scratch"]["pending_timer_jobs"] > 300
    assert ticks["idle"]["ticks"] == ticks["twenty_changes_per_tick"]["ticks"] == 100
    assert (burst["replies"], burst["unique"], burst["duplicates"], burst["http_429"]) == (40, 40, 0, 0)
