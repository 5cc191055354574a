"""`askdesk status`: failed deliveries and pending work, for admins."""

from __future__ import annotations

from bot.config import Settings, redact_url
from bot.i18n import translator
from bot.render.blocks import post_error_text
from bot.runtime.database import open_database
from storage import jobs as job_queries
from storage import requests as queries
from storage.session import read_scope, write_problem


def print_status(settings: Settings) -> int:
    engine = open_database(settings, migrate=False)
    try:
        with read_scope(engine) as session:  # no write lock: it answers while writes fail
            counts = job_queries.counts_by_status(session)
            failed = [f"#{job.id} {job.key} after {job.attempts} attempts: {job.last_error}"
                      for job in job_queries.failed(session)]
            failed_posts = [f"request #{req.id} ({req.team}): {post_error_text(req.post_error, translator('en'))}"
                            for req in queries.failed_posts(session)]
            next_due = job_queries.next_due(session)
            retrying, failing_since = job_queries.failing(session)
        problem = write_problem(engine)
    finally:
        engine.dispose()
    print(f"database: {redact_url(settings.database_url)}")
    print(f"database writes: {'ok' if problem is None else 'FAILING: ' + problem}")
    print("work queue (kind: status=count):")
    kinds = sorted({k for k, _ in counts})
    if not kinds:
        print("  (empty)")
    for kind in kinds:
        parts = ", ".join(f"{s}={n}" for (k, s), n in sorted(counts.items()) if k == kind)
        print(f"  {kind}: {parts}")
    print(f"next due: {next_due.isoformat() if next_due else '—'}")
    if retrying:
        print(f"jobs being retried after errors: {retrying} "
              f"(the oldest failing since {failing_since:%Y-%m-%d %H:%M} UTC)")
    print(f"failed jobs: {len(failed)}")
    for line in failed:
        print(f"  {line}")
    print(f"requests not posted to their team: {len(failed_posts)}")
    for line in failed_posts:
        print(f"  {line}")
    return 1 if failed or failed_posts or problem else 0
