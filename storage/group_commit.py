"""Group commit: short write transactions of many threads run as one database transaction.

`group_commit(engine, op, item)` returns only after the writes of `op(session, [item])` are committed
(or raises what `op` or the database raised), exactly as if it had its own `session_scope`; but a
busy instance pays one BEGIN/COMMIT and one turn of the SQLite writer lock per batch, not per item,
and the items of one batch that share an `op` go to one call `op(session, [item, ...])`, which writes
them with one statement per table (SQLAlchemy's executemany / insertmanyvalues). Without it, each of
many threads holds the writer lock for a whole transaction while taking turns for the GIL after every
statement, and under load the acknowledgements queue behind that lock.

Leader/follower, no thread of its own: a caller that finds nobody committing commits itself, taking
whatever else is queued (no waiting to fill a batch); callers that arrive meanwhile queue and sleep
until their unit is committed; then the lead passes to the oldest queued caller. `urgent` units
(someone waits for an acknowledgement) go first. When a batch fails, each of its units is retried
alone, so one bad unit never takes the others down with it. An `op` writes only with the session it
is given, and returns one result per item, in order.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

T = TypeVar("T")
BatchOp = Callable[[Session, list[Any]], list[Any]]


class _Unit:
    __slots__ = ("op", "item", "done", "result", "error", "wake")

    def __init__(self, op: BatchOp, item: Any) -> None:
        self.op, self.item = op, item
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake = threading.Event()  # set when done, or when this unit's thread is to lead


class GroupCommitter:
    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = weakref.ref(engine)  # the registry below is keyed on the engine: no cycle
        self.max_batch = max_batch
        self._queue: deque[_Unit] = deque()
        self._urgent: deque[_Unit] = deque()
        self._lock = threading.Lock()
        self._leading = False
        self._inside = threading.local()
        self.batches = self.units = 0  # counters, for tests

    def run(self, op: BatchOp, item: Any, *, urgent: bool = False) -> Any:
        if getattr(self._inside, "active", False):
            raise RuntimeError("group_commit() called from inside a unit of group commit work")
        unit = _Unit(op, item)
        with self._lock:
            (self._urgent if urgent else self._queue).append(unit)
            lead, self._leading = not self._leading, True
        if not lead:
            unit.wake.wait()
        if not unit.done:  # nobody was committing, or the lead was handed to us
            self._lead(unit)
        if unit.error is not None:
            raise unit.error
        return unit.result

    def queued(self) -> int:
        """How many units wait for a batch."""
        with self._lock:
            return len(self._urgent) + len(self._queue)

    def _lead(self, own: _Unit) -> None:
        self._inside.active = True
        try:
            while not own.done:
                batch: list[_Unit] = []
                with self._lock:
                    for line in (self._urgent, self._queue):
                        while line and len(batch) < self.max_batch:
                            batch.append(line.popleft())
                self._commit(batch)
        finally:
            self._inside.active = False
            with self._lock:  # pass the lead on (also if this thread was interrupted)
                for line in (self._urgent, self._queue):
                    if not own.done and own in line:
                        line.remove(own)
                heir = self._urgent[0] if self._urgent else self._queue[0] if self._queue else None
                self._leading = heir is not None
            if heir is not None:
                heir.wake.set()

    def _commit(self, batch: list[_Unit]) -> None:
        try:
            engine = self._engine()
            if engine is None:
                raise RuntimeError("the engine of this group committer is gone")
            results: dict[int, Any] = {}
            with Session(engine, expire_on_commit=False) as session, session.begin():
                for op in dict.fromkeys(unit.op for unit in batch):
                    mine = [unit for unit in batch if unit.op is op]
                    out = op(session, [unit.item for unit in mine])
                    if len(out) != len(mine):
                        raise RuntimeError(f"{op!r} returned {len(out)} results for {len(mine)} items")
                    results.update(zip(map(id, mine), out, strict=True))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller(s)
            if len(batch) == 1:
                self._finish(batch[0], None, exc)
            else:  # find the unit that failed; the others commit on their own
                for unit in batch:
                    self._commit([unit])
            return
        self.batches += 1
        self.units += len(batch)
        for unit in batch:
            self._finish(unit, results[id(unit)], None)

    @staticmethod
    def _finish(unit: _Unit, result: Any, error: BaseException | None) -> None:
        unit.result, unit.error, unit.done = result, error, True
        unit.wake.set()


_COMMITTERS: weakref.WeakKeyDictionary[Engine, GroupCommitter] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def group_commit(engine: Engine, op: Callable[[Session, list[Any]], list[T]], item: Any, *,
                 urgent: bool = False) -> T:
    """`op(session, [item, ...])[i]`, the result for `item`, in a write transaction shared with other
    threads' items (see the module's docstring); `urgent` items go first."""
    with _COMMITTERS_LOCK:
        committer = _COMMITTERS.get(engine)
        if committer is None:
            committer = _COMMITTERS[engine] = GroupCommitter(engine)
    return committer.run(op, item, urgent=urgent)  # type: ignore[no-any-return]
