"""`python -m bench` (or `make bench`): lists the benchmarks and how to run them."""

BENCHMARKS = {
    "bench_ack": "ack latency and throughput vs a bare Bolt app (--floor: also the least an intake can do; "
                 "--workers 2; --database-url for PostgreSQL)",
    "bench_surveys": "10,000 surveys due at once; startup with 100,000 pending surveys",
    "bench_sla": "SLA timers: scheduler tick with 100,000 open requests; 10,000 reminders due in one minute",
    "bench_digest": "every team digest + the organisation digest over 1,000,000 requests (--engine sqlite|postgres)",
    "bench_needs": "a needs-survey round of 20,000 invitations within Slack's rate limits; 20,000 written answers "
                   "grouped into themes (--write: docs/benchmarks.md '## Needs surveys')",
    "chaos": "1,000 requests, claims and resolutions through a faulty Slack with the server SIGKILLed twice: "
             "lost / duplicated / stale messages, time to quiescence (--write: docs/benchmarks.md '## Chaos')",
}

if __name__ == "__main__":
    print("askdesk benchmarks (results are written to docs/):")
    for name, what in BENCHMARKS.items():
        print(f"  .venv/bin/python -m bench.{name:14} {what}")
    print("On PostgreSQL: bash scripts/with-postgres.sh bash -c '.venv/bin/python -m bench.<name> "
          "--database-url \"$ASKDESK_TEST_DATABASE_URL\"'")
