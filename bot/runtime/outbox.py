"""The durable outbox runner: every Slack side effect that must not be lost runs as a job.

A service stores its state change and enqueues a job in the same transaction; the listener then
`kick()`s the job so it runs at once, and the scheduler's clock claims anything left behind (after
a crash, a Slack outage, or when a survey or digest falls due). Claims are leased and completion
is fenced, so two workers or two instances never both finish a job.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.slack.client import is_permanent, is_uncertain, retry_after, slack_error
from storage import jobs as job_queries
from storage.jobs import ClaimedJob
from storage.session import session_scope

log = logging.getLogger(__name__)
# Jobs that a listener runs at once are due only this much later: the clock must not race the
# listener for them, but picks them up if the process died before running them.
KICK_GRACE = timedelta(seconds=10)
# A job that keeps failing (Slack's 5xx, timeouts, the database) is retried, with a backoff that
# grows with how long it has been failing up to MAX_BACKOFF, until it has failed for this long; only
# then is it given up. Slack's rate limits (429) and waits for working hours are not failures.
GIVE_UP_AFTER = timedelta(hours=24)
MAX_BACKOFF = 300.0
# After a call that may still take effect (a timeout: Slack may store the message after the client
# stopped waiting), the retry, which first looks for that message, waits this long so it can see it.
SETTLE = 30.0


class RetryLater(Exception):  # noqa: N818 - a signal, not an error
    """Run the job again `after` seconds from now. `failure`: whether this counts towards giving up
    (False for waits that are nobody's fault, e.g. until the requester's working hours)."""

    def __init__(self, reason: str, after: float | None = None, *, failure: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.after, self.failure = reason, after, failure


class PermanentFailure(Exception):  # noqa: N818
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Context(Protocol):
    """What the outbox needs of the object it hands to every job (`bot.runtime.deps.Deps`)."""

    settings: Settings
    engine: Engine
    instance_id: str
    now: Callable[[], datetime]


C = TypeVar("C", bound=Context)


@dataclass(frozen=True)
class JobKind(Generic[C]):
    """How to run one kind of job, and what to do once it has failed for good (optional)."""

    run: Callable[[C, dict[str, Any], ClaimedJob], None]
    failed: Callable[[C, dict[str, Any], str], None] | None = None


@dataclass(frozen=True)
class Periodic(Generic[C]):
    """Housekeeping that the clock's leader runs every `every` seconds (e.g. enqueue due digests).
    `timeboxed`: work that goes on over many ticks; `run` is then called with `until=`, the
    monotonic time by which it must return to keep the tick within its budget."""

    name: str
    every: float
    run: Callable[..., object]
    timeboxed: bool = False


@dataclass
class TickResult:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0  # already running in this process


def backoff(failing_for: timedelta) -> float:
    """Seconds until the next try of a job that has been failing for `failing_for`: 5 s at first,
    then a quarter of the time it has been failing (so tries thin out geometrically), at most
    MAX_BACKOFF (so work goes out within five minutes of Slack being back)."""
    return min(max(5.0, failing_for.total_seconds() / 4), MAX_BACKOFF) * (0.8 + 0.4 * random.random())


class BoundedExecutor(ThreadPoolExecutor):
    """A thread pool whose queue is bounded: when it is full, `submit` waits (back-pressure on the
    HTTP request that is about to be acknowledged) instead of letting post-ack work pile up."""

    def __init__(self, max_workers: int, max_pending: int, name: str = "askdesk-live") -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=name)
        self._slots = threading.BoundedSemaphore(max_workers + max_pending)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:  # type: ignore[override]
        self._slots.acquire()
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(lambda _: self._slots.release())
        return future


class Outbox(Generic[C]):
    """Runs jobs: scheduled batches on `pool` (the clock's ticks), and work that listeners start right
    after an ack on `live`, a bounded pool that Bolt's lazy listeners share.

    `kinds` is the table of every job kind (`bot.runtime.jobs.JOBS`): a job of another kind fails.
    `periodic` is the housekeeping the clock runs (`bot.runtime.jobs.PERIODIC`)."""

    def __init__(self, deps: C, kinds: Mapping[str, JobKind[C]], *, periodic: Sequence[Periodic[C]] = (),
                 workers: int = 16, live_threads: int = 64) -> None:
        self.deps = deps
        self.kinds = dict(kinds)
        self.periodic = list(periodic)
        self.workers = workers
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="askdesk-job")
        self._busy_workers = 0  # jobs handed to `pool` and not finished yet
        # The running clock's claims (`feed`): one at a time; whether the last came back full.
        self._feed_lock = threading.Lock()
        self._more_due = False
        self._limit = 1
        self.live = BoundedExecutor(live_threads, live_threads * 2)
        self._stopping = threading.Event()
        # Jobs running in this process, and the heartbeat that keeps their leases alive while they run
        # (so a slow Slack call never lets another worker claim the job a second time).
        self._running: set[int] = set()
        self._running_lock = threading.Lock()
        self._heartbeat: threading.Thread | None = None

    @property
    def owner(self) -> str:
        return self.deps.instance_id

    def kick(self, job_ids: Iterable[int | None]) -> None:
        """Run these just-enqueued jobs now, in this thread (a lazy listener or a CLI command)."""
        for job_id in job_ids:
            if job_id is None:
                continue
            with session_scope(self.deps.engine) as session:
                claimed = job_queries.claim_due(session, owner=self.owner, lease=self._lease(), limit=1,
                                                now=self.deps.now(), job_id=job_id)
            for job in claimed:
                self.run(job)

    def start(self, jobs: Iterable[ClaimedJob], on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run jobs this instance enqueued already leased (`storage.jobs.leased`) on the live pool;
        waits for a slot when the pool is full. Called from an ack function, right after the ack.

        `run` only lets an error out when it could not even record the outcome (the database is
        gone): the job stays leased, so the clock retries it, and `on_error` tells whoever asked."""
        for job in jobs:
            self.live.submit(self._run_live, job, on_error)

    def _run_live(self, job: ClaimedJob, on_error: Callable[[BaseException], None] | None) -> None:
        try:
            self.run(job)
        except Exception as exc:  # noqa: BLE001 - reported, and the lease brings the job back
            log.warning("job %s %s interrupted: %s", job.id, job.key, type(exc).__name__)
            if on_error is not None:
                on_error(exc)

    def new_lease(self) -> tuple[str, Any]:
        """(owner, until) for `storage.jobs.enqueue(lease=…)`: a job this instance runs at once."""
        return self.owner, self.deps.now() + self._lease()

    def _lease(self) -> timedelta:
        return self.deps.settings.scheduler.lease

    def tick(self, *, limit: int | None = None) -> TickResult:
        """Claim due jobs and run them on the worker pool; returns when this batch is done."""
        result = TickResult()
        if self._stopping.is_set():
            return result
        limit = limit or self.deps.settings.scheduler.batch_size
        futures = [self._submit(job) for job in self._claim(limit)]
        result.claimed = len(futures)
        wait(futures)
        for fut in futures:
            outcome = fut.result()
            setattr(result, outcome, getattr(result, outcome) + 1)
        return result

    def feed(self, *, limit: int | None = None) -> int:
        """Claim as many due jobs as there are idle workers (at most `limit`) and start them without
        waiting for them: the running clock's tick, so that jobs waiting on a slow Slack never hold
        up the others. While claims come back full (more is due), a worker that finishes claims
        again for the idle workers at once (`_worker_free_refill`) instead of leaving them idle until the next
        tick; no job is ever claimed without an idle worker to run it. Returns how many were claimed."""
        self._limit = limit or self.deps.settings.scheduler.batch_size
        return self._fill(1)

    def _fill(self, at_least: int) -> int:
        """Claim due jobs for the idle workers, if at least `at_least` are idle, and start them;
        notes whether more may be due (the claim came back full)."""
        with self._feed_lock:
            with self._running_lock:
                idle = self.workers - self._busy_workers
            want = min(self._limit, idle)
            if self._stopping.is_set() or want < at_least:
                return 0
            claimed = self._claim(want)
            self._more_due = len(claimed) == want
            for job in claimed:
                self._submit(job, refill=True)
            return len(claimed)

    def _claim(self, limit: int) -> list[ClaimedJob]:
        with session_scope(self.deps.engine) as session:
            return job_queries.claim_due(session, owner=self.owner, lease=self._lease(), limit=limit,
                                         now=self.deps.now())

    def _submit(self, job: ClaimedJob, *, refill: bool = False) -> Future:
        with self._running_lock:
            self._busy_workers += 1
        return self.pool.submit(self._run_and_free, job, refill)

    def _run_and_free(self, job: ClaimedJob, refill: bool) -> str:
        """Run a claimed job, then free its worker (and, for a fed job, claim again). Done inside the
        worker rather than in a done-callback: a callback added to a future that is already done runs
        in the thread adding it, which for `_fill` holds `_feed_lock` — a deadlock when the job was fast."""
        try:
            return self.run(job)
        finally:
            if refill:
                self._worker_free_refill()
            else:
                self._worker_free()

    def _worker_free(self) -> None:
        with self._running_lock:
            self._busy_workers -= 1

    def _worker_free_refill(self) -> None:
        """A fed job is done (in its worker's thread): while the last claim came back full, claim
        again once a quarter of the workers are idle, so a claim serves several jobs."""
        self._worker_free()
        if not self._more_due:
            return
        try:
            self._fill(max(1, self.workers // 4))
        except Exception as exc:  # noqa: BLE001 - the next tick claims them
            log.warning("claiming due jobs after a finished one failed: %s", type(exc).__name__)

    def run(self, job: ClaimedJob) -> str:
        """Run one leased job; returns 'done', 'retried', 'failed' or 'skipped'. Never raises.

        A job this process is already running (its lease lapsed while the database was unreachable
        for the heartbeat, and the clock claimed it back) is not run a second time: it stays leased
        to this process, and the heartbeat renews it while the first run goes on."""
        assert job.id is not None
        with self._running_lock:
            if job.id in self._running:
                log.info("job %s %s is already running here; not starting it twice", job.id, job.key)
                return "skipped"
            self._running.add(job.id)
            if self._heartbeat is None:
                self._heartbeat = threading.Thread(target=self._beat, name="askdesk-lease-heartbeat", daemon=True)
                self._heartbeat.start()
        try:
            return self._run(job)
        finally:
            with self._running_lock:
                self._running.discard(job.id)

    def _beat(self) -> None:
        """Every third of a lease, extend the leases of the jobs running here (one UPDATE)."""
        interval = max(self._lease().total_seconds() / 3, 0.05)
        while not self._stopping.wait(interval):
            with self._running_lock:
                running = list(self._running)
            if not running:
                continue
            try:
                with session_scope(self.deps.engine) as session:
                    job_queries.renew(session, job_ids=running, owner=self.owner, until=self.deps.now() + self._lease())
            except Exception as exc:  # noqa: BLE001 - the next beat tries again; fencing keeps it safe
                log.warning("lease heartbeat failed: %s", type(exc).__name__)

    def _run(self, job: ClaimedJob) -> str:
        assert job.id is not None
        kind = self.kinds.get(job.kind)
        try:
            if kind is None:
                raise PermanentFailure(f"no handler for job kind {job.kind!r}")
            kind.run(self.deps, json.loads(job.payload or "{}"), job)
        except PermanentFailure as exc:
            return self._fail(job, exc.reason)
        except RetryLater as exc:
            return self._retry(job, exc.reason, exc.after, failure=exc.failure)
        except Exception as exc:  # noqa: BLE001 - classified below, never escapes a worker
            if is_permanent(exc):
                return self._fail(job, slack_error(exc))
            wait = retry_after(exc)
            if wait is not None:  # Slack refused the call (429): try again when it says, no failure
                log.info("job %s %s rate-limited; again in %.0f s", job.id, job.key, wait)
                return self._retry(job, slack_error(exc), wait, failure=False)
            log.warning("job %s %s failed (attempt %s): %s", job.id, job.key, job.attempts, slack_error(exc),
                        exc_info=not _is_slack_or_network(exc))
            return self._retry(job, slack_error(exc), SETTLE if is_uncertain(exc) else None, failure=True)
        if job.status != "done":  # a handler may finish the job in its own last transaction
            with session_scope(self.deps.engine) as session:
                job_queries.finish(session, job_id=job.id, owner=self.owner)
        return "done"

    def _retry(self, job: ClaimedJob, reason: str, after: float | None, *, failure: bool) -> str:
        assert job.id is not None
        now = self.deps.now()
        if failure:
            failing_for = now - (job.failing_since or now)
            if failing_for >= GIVE_UP_AFTER:
                hours = round(failing_for.total_seconds() / 3600)
                return self._fail(job, f"still failing after {hours} h: {reason}")
            delay = max(after or 0.0, backoff(failing_for))
        else:
            delay = after if after is not None else 1.0
        with session_scope(self.deps.engine) as session:
            job_queries.retry_later(session, job_id=job.id, owner=self.owner, due_at=now + timedelta(seconds=delay),
                                    error=reason, failing_at=now if failure else None)
        return "retried"

    def _fail(self, job: ClaimedJob, reason: str) -> str:
        assert job.id is not None
        log.error("job %s %s failed permanently: %s", job.id, job.key, reason)
        with session_scope(self.deps.engine) as session:
            job_queries.finish(session, job_id=job.id, owner=self.owner, status="failed", error=reason)
        kind = self.kinds.get(job.kind)
        if kind is not None and kind.failed is not None:
            try:
                kind.failed(self.deps, json.loads(job.payload or "{}"), reason)
            except Exception:  # noqa: BLE001
                log.exception("failure hook for %s", job.key)
        return "failed"

    def stop(self) -> None:
        with self._feed_lock:  # no claim is under way: none can reach the pool after its shutdown
            self._stopping.set()
        self.live.shutdown(wait=True, cancel_futures=False)
        self.pool.shutdown(wait=True, cancel_futures=False)


def _is_slack_or_network(exc: BaseException) -> bool:
    return slack_error(exc) != type(exc).__name__
