"""Data retention: `askdesk purge --older-than 365d` removes what people wrote, keeps the numbers.

For requests created before the cutoff: text and summary are blanked and `purged_at` is set, survey
comments are nulled and free-text notes are removed from the request history (event kinds, times,
actors and the transfer from/to stay). Needs-survey rounds that closed before the cutoff lose their
written answers and their report's quotes (scores, theme labels and counts stay). Old
`processed_events` and finished `jobs` are deleted.
Scores, timestamps, departments and categories are kept, so digests and statistics do not change.
Every batch commits on its own; running the purge again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage import purge_queries as q
from storage.session import session_scope

log = logging.getLogger(__name__)
MIN_AGE = timedelta(days=1)
BATCH_SIZE = 1000


@dataclass
class PurgeReport:
    requests: int = 0
    survey_comments: int = 0
    history_notes: int = 0
    needs_written_answers: int = 0
    processed_events: int = 0
    finished_jobs: int = 0

    def lines(self) -> list[str]:
        return [f"  {f.name.replace('_', ' ')}: {getattr(self, f.name)}" for f in fields(self)]


def _keyset(engine: Engine, step: Callable[[Session, int], tuple[int, int]]) -> int:
    """Run `step(session, after) -> (last id, rows)` batch by batch until a batch finds nothing."""
    after, total = 0, 0
    while True:
        with session_scope(engine) as session:
            last, rows = step(session, after)
        total += rows
        if last == after:
            return total
        after = last


def _until_empty(engine: Engine, step: Callable[[Session], int]) -> int:
    total = 0
    while True:
        with session_scope(engine) as session:
            rows = step(session)
        total += rows
        if rows == 0:
            return total


def _notes(engine: Engine, cutoff: datetime, batch: int, *, write: bool) -> int:
    after, changed = 0, 0
    while True:
        with session_scope(engine) as session:
            after, scanned, n = q.scrub_notes(session, cutoff=cutoff, after=after, limit=batch, write=write)
        changed += n
        if scanned < batch:
            return changed


def count(engine: Engine, *, cutoff: datetime, batch_size: int = BATCH_SIZE) -> PurgeReport:
    """What a purge with this cutoff would change (reads only)."""
    with session_scope(engine) as session:
        report = PurgeReport(
            requests=q.count_requests(session, cutoff=cutoff),
            survey_comments=q.count_comments(session, cutoff=cutoff),
            needs_written_answers=q.count_needs_texts(session, cutoff=cutoff),
            processed_events=q.count_processed_events(session, cutoff=cutoff),
            finished_jobs=q.count_finished_jobs(session, cutoff=cutoff),
        )
    report.history_notes = _notes(engine, cutoff, batch_size, write=False)
    return report


def purge(engine: Engine, *, older_than: timedelta, now: datetime | None = None, dry_run: bool = False,
          batch_size: int = BATCH_SIZE) -> PurgeReport:
    """Apply the retention policy to everything older than `older_than` (at least one day)."""
    if older_than < MIN_AGE:
        raise ValueError("the retention period must be at least 1 day (1d)")
    now = now or datetime.now(UTC)
    cutoff = now - older_than
    if dry_run:
        return count(engine, cutoff=cutoff, batch_size=batch_size)
    report = PurgeReport()
    report.survey_comments = _keyset(engine, lambda s, after: q.purge_comments(
        s, cutoff=cutoff, after=after, limit=batch_size))
    report.history_notes = _notes(engine, cutoff, batch_size, write=True)
    report.needs_written_answers = _keyset(engine, lambda s, after: q.purge_needs_texts(
        s, cutoff=cutoff, after=after, limit=batch_size))
    report.requests = _keyset(engine, lambda s, after: q.purge_requests(
        s, cutoff=cutoff, now=now, after=after, limit=batch_size))
    report.processed_events = _until_empty(engine, lambda s: q.delete_processed_events(
        s, cutoff=cutoff, limit=batch_size))
    report.finished_jobs = _until_empty(engine, lambda s: q.delete_finished_jobs(
        s, cutoff=cutoff, limit=batch_size))
    log.info("purge before %s: %s", cutoff.isoformat(), report)
    return report
