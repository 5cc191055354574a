"""Weekly-digest benchmark: every team digest plus the organisation digest for one week, on a database
of 1,000,000 requests, 400,000 ratings and 300,000 survey answers (50 teams, 30 departments), timed
side by side with a hand-written SQL aggregate of the same figures (bench/digest_handsql.py).

    .venv/bin/python -m bench.bench_digest --engine sqlite  # seeds /tmp/askdesk-bench-digest-*.db once
    bash scripts/with-postgres.sh .venv/bin/python -m bench.bench_digest --engine postgres

Targets (issue 4): under 2 s, under 300 MB RSS, at most 1.5x the hand-written SQL. The measurement
runs in a fresh subprocess (so its peak RSS is the digest work's, not the seeding's). Results are
merged into docs/bench-digest.json and docs/bench-digest.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

from bench import digest_seed as seed
from bench.digest_measure import bench_settings, measure
from bench.digest_seed import EVENT_COLS, REACTION_COLS, REQUEST_COLS, SURVEY_COLS, Shape
from bot.services.digest_periods import feedback_schedule, period_for_week

ROOT = Path(__file__).resolve().parent.parent
WEEK, TZ = "2026-W47", "Europe/Berlin"
TABLES = {"requests": REQUEST_COLS, "request_events": EVENT_COLS, "surveys": SURVEY_COLS,
          "reactions": REACTION_COLS}


def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


def _rows(chunk: seed.Chunk) -> dict[str, list[tuple[Any, ...]]]:
    return {"requests": chunk.requests, "request_events": chunk.events, "surveys": chunk.surveys,
            "reactions": chunk.reactions}


def seed_sqlite(path: Path, shape: Shape) -> None:
    import sqlite3

    from storage.migrate import upgrade

    path.unlink(missing_ok=True)
    upgrade(f"sqlite:///{path}")
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    names = ", ".join(f"'{t}'" for t in TABLES)
    indexes = con.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                          f"AND tbl_name IN ({names})").fetchall()
    for name, _ in indexes:
        con.execute(f'DROP INDEX "{name}"')
    end = period_for_week(WEEK, feedback_schedule(TZ)).end
    for i, chunk in enumerate(seed.chunks(end, shape)):
        for table, rows in _rows(chunk).items():
            con.executemany(_insert_sql(table, TABLES[table]), rows)
        con.commit()
        print(f"  seeded {min((i + 1) * seed.CHUNK, shape.requests):,} requests", file=sys.stderr, flush=True)
    for _, sql in indexes:
        con.execute(sql)
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a fresh database, not one with a 1 GB write-ahead log
    con.close()


def seed_postgres(url: str, shape: Shape) -> None:
    import psycopg

    from storage.migrate import upgrade

    upgrade(url)
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    end = period_for_week(WEEK, feedback_schedule(TZ)).end
    with psycopg.connect(conninfo, autocommit=True) as con:
        names = ", ".join(f"'{t}'" for t in TABLES)
        indexes = con.execute(f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ({names}) "
                              "AND indexdef NOT LIKE '%UNIQUE%'").fetchall()
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        for i, chunk in enumerate(seed.chunks(end, shape, pg=True)):
            with con.transaction():
                for table, rows in _rows(chunk).items():
                    with con.cursor().copy(f"COPY {table} ({', '.join(TABLES[table])}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
            done = min((i + 1) * seed.CHUNK, shape.requests)
            print(f"  seeded {done:,} requests", file=sys.stderr, flush=True)
        for _, sql in indexes:
            con.execute(sql)
        for table in TABLES:
            con.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT MAX(id) FROM {table}))")
        con.execute("VACUUM ANALYZE")


def _pg_database(base: str, shape: Shape, reseed: bool) -> str:
    url = make_url(base)
    name = f"askdesk_bench_digest_{shape.requests}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists and reseed:
            conn.execute(text(f'DROP DATABASE "{name}"'))
        if not exists or reseed:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    target = url.set(database=name).render_as_string(hide_password=False)
    return target if exists and not reseed else "seed:" + target


def prepare(engine: str, shape: Shape, reseed: bool, db: str | None) -> str:
    started = time.monotonic()
    if engine == "sqlite":
        path = Path(db or f"/tmp/askdesk-bench-digest-{shape.requests}.db")
        marker = path.with_suffix(".seeded")
        if reseed or not marker.exists():
            print(f"seeding {path} ...", file=sys.stderr)
            marker.unlink(missing_ok=True)
            seed_sqlite(path, shape)
            marker.write_text(json.dumps(shape.__dict__))
            print(f"seeded in {time.monotonic() - started:.0f}s", file=sys.stderr)
        return f"sqlite:///{path}"
    base = db or os.environ.get("ASKDESK_TEST_DATABASE_URL")
    if not base:
        raise SystemExit("PostgreSQL: pass --db URL or run under scripts/with-postgres.sh")
    url = _pg_database(base, shape, reseed)
    if url.startswith("seed:"):
        url = url[5:]
        print("seeding PostgreSQL ...", file=sys.stderr)
        seed_postgres(url, shape)
        print(f"seeded in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return url


def run_measurement(url: str, repeat: int) -> dict[str, Any]:
    """Measure in a fresh interpreter so that ru_maxrss is the digest work's own peak."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "bench.digest_measure", url, str(repeat)], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def write_docs(engine: str, shape: Shape, result: dict[str, Any]) -> Path:
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    store = docs / "bench-digest.json"
    data = json.loads(store.read_text()) if store.exists() else {}
    data[engine] = {"shape": shape.__dict__, **result}
    store.write_text(json.dumps(data, indent=2))
    from bench.digest_report import markdown

    path = docs / "bench-digest.md"
    path.write_text(markdown(data))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--db", help="SQLite file or PostgreSQL server URL (default: a /tmp file / the "
                                     "test server)")
    parser.add_argument("--requests", type=int, default=1_000_000, help="scale (ratings/answers scale along)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/bench-digest.*")
    args = parser.parse_args(argv)
    k = args.requests / 1_000_000
    shape = Shape(requests=args.requests, ratings=int(400_000 * k), answers=int(300_000 * k),
                  unanswered=int(75_000 * k))
    url = prepare(args.engine, shape, args.reseed, args.db)
    result = run_measurement(url, args.repeat)
    print(json.dumps(result, indent=2))
    if not args.no_docs:
        print(f"wrote {write_docs(args.engine, shape, result)}", file=sys.stderr)
    return 0 if result["verdict"]["all_ok"] else 1


__all__ = ["bench_settings", "main", "measure"]

if __name__ == "__main__":
    sys.exit(main())
