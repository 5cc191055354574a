"""Hot-path write helpers (to be replaced by plain SQLAlchemy statements)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

Writer = Session | Connection  # what the hot-path write helpers accept


def connection_of(target: Writer) -> Connection:
    return target.connection() if isinstance(target, Session) else target


T = TypeVar("T")


# SQL text, fixed values, bind processors, positional order (None: named parameters)
_Plan = tuple[str, dict[str, Any], dict[str, Callable[[Any], Any]], tuple[str, ...] | None]


class Prepared:
    """A Core statement compiled once per dialect and run straight on the DB-API cursor of a
    `Connection`, inside that connection's transaction.

    For statements on busy paths (a request's events, enqueueing and finishing jobs): SQLAlchemy's own
    execution path costs about 3x (SQLite) and 1.6x (PostgreSQL) the CPU of the driver call itself.
    Values still go through each column type's bind processor, and driver errors come out as
    SQLAlchemy's exceptions (an unreachable database still invalidates the connection), exactly as
    from `Connection.execute`.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def _plan(self, dialect: Any) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            compiled = self.statement.compile(dialect=dialect)
            fixed = {key: bind.effective_value for key, bind in compiled.binds.items() if not bind.required}
            processors = {}
            for key, bind in compiled.binds.items():
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    processors[key] = processor
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            plan = self._plans[dialect.name] = (str(compiled), fixed, processors, order)
        return plan

    def execute(self, conn: Connection, values: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run with `values` (by bind name); returns the rows of a RETURNING clause ([] without one)."""
        sql, fixed, processors, order = self._plan(conn.dialect)
        params = {**fixed, **values}
        for key, processor in processors.items():
            params[key] = processor(params[key])
        return run_raw(conn, sql, tuple(params[key] for key in order) if order is not None else params)


def run_raw(conn: Connection, sql: str, args: Any) -> list[tuple[Any, ...]]:
    """Run `sql` (in the driver's parameter style) on the DB-API cursor of `conn`, inside its
    transaction; the rows of a RETURNING clause ([] without one). Driver errors come out as
    SQLAlchemy's exceptions, and a connection found dead is invalidated, as from `Connection.execute`."""
    dialect = conn.dialect
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall()) if cursor.description else []
    except dialect.loaded_dbapi.Error as exc:
        gone = dialect.is_disconnect(exc, raw, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, args, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone,
                                  dialect=dialect) from exc
    finally:
        cursor.close()


def param_marker(dialect: Any) -> str:
    """The driver's positional parameter marker (sqlite3: ?, psycopg: %s)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


class MultiRow:
    """One INSERT of many rows (`INSERT .. VALUES (..), (..), ..`): a batch of units of group commit
    writes each table once, instead of once per unit.

    The SQL is built per dialect and row count from the table's columns (positional parameters) and
    kept (batches hold at most 64 units: a few hundred KB of SQL text at most); values go through
    each column type's bind processor, as in `Prepared`. `on_conflict` names a unique column: rows
    that collide on it are skipped (and not RETURNed).
    """

    def __init__(self, table: Any, columns: tuple[str, ...], *, returning: tuple[str, ...] = (),
                 on_conflict: str | None = None) -> None:
        self.table, self.columns, self.returning, self.on_conflict = table, columns, returning, on_conflict
        self._sql: dict[tuple[str, int], str] = {}
        self._processors: dict[str, list[Callable[[Any], Any] | None]] = {}

    def _statement(self, dialect: Any, rows: int) -> str:
        sql = self._sql.get((dialect.name, rows))
        if sql is None:
            quote = dialect.identifier_preparer.quote
            group = "(" + ", ".join([param_marker(dialect)] * len(self.columns)) + ")"
            sql = (f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) "
                   f"VALUES {', '.join([group] * rows)}")
            if self.on_conflict:
                sql += f" ON CONFLICT ({quote(self.on_conflict)}) DO NOTHING"
            if self.returning:
                sql += f" RETURNING {', '.join(quote(c) for c in self.returning)}"
            self._sql[(dialect.name, rows)] = sql
        return sql

    def _bind(self, dialect: Any) -> list[Callable[[Any], Any] | None]:
        processors = self._processors.get(dialect.name)
        if processors is None:
            processors = self._processors[dialect.name] = [
                self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self.columns]
        return processors

    def execute(self, conn: Connection, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Insert `rows` (dicts by column name); the RETURNING rows of all of them, in no set order."""
        if not rows:
            return []
        dialect = conn.dialect
        plan = tuple(zip(self.columns, self._bind(dialect), strict=True))
        args = [processor(row[name]) if processor is not None else row[name]
                for row in rows for name, processor in plan]
        return run_raw(conn, self._statement(dialect, len(rows)), tuple(args))


def allocate_ids(conn: Connection, table: Any, count: int) -> list[int]:
    """`count` new primary keys of `table` (an integer `id`), for rows inserted in this transaction.

    PostgreSQL: from the column's sequence, like its default would. SQLite: above the largest id,
    which is what SQLite itself would assign; safe because every SQLite write transaction holds the
    writer lock (see make_engine) from its BEGIN."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        rows = run_raw(conn, "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                       (table.name, count))
        return sorted(int(row[0]) for row in rows)
    top = run_raw(conn, f"SELECT COALESCE(MAX(id), 0) FROM {conn.dialect.identifier_preparer.quote(table.name)}",
                  ())[0][0]
    return list(range(int(top) + 1, int(top) + 1 + count))


# Work that units of group commit share: called once per batch with every queued unit's item, in
# the batch's transaction; returns one result per item, in order.
BatchOp = Callable[[Connection, list[Any]], list[Any]]


class _Unit:
    """One caller's work in a group commit, and where its outcome lands."""

    __slots__ = ("work", "op", "item", "done", "result", "error", "wake")

    def __init__(self, work: Callable[[Connection], Any] | None, op: BatchOp | None = None,
                 item: Any = None) -> None:
        self.work, self.op, self.item = work, op, item
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.wake = threading.Event()  # set when done, or when this unit's thread is to lead


class GroupCommitter:
    """Group commit: short write transactions of many threads run as one database transaction.

    `run(work)` returns only after `work`'s writes are committed (or raises what `work` or the
    database raised), exactly as if it had its own transaction; but a busy instance pays for one
    BEGIN/COMMIT and one turn of the writer lock per batch instead of per unit of work.

    Leader/follower, no thread of its own: a caller that finds nobody committing commits itself,
    taking whatever else is queued (no waiting to fill a batch); callers that arrive meanwhile queue
    and sleep until their unit is committed. Once the leader's own unit is done it hands the lead to
    the oldest queued caller and returns. An uncontended write thus runs in its caller's thread with
    no hand-off at all. When a batch fails, each of its units is retried alone, so one bad unit
    never takes the others down with it.

    Units given with `run_batched(op, item)` go further: the batch calls `op` once with the items
    of all its units that share it, so a batch of N slash commands runs one INSERT per table rather
    than N. Every statement gives up the GIL while the driver works, and under load getting it back
    takes a turn behind other threads while this one holds the database writer lock; fewer
    statements per batch means shorter batches, and shorter waits for every acknowledgement.
    """

    def __init__(self, engine: Engine, *, max_batch: int = 64) -> None:
        self._engine = weakref.ref(engine)  # the registry below is keyed on the engine: no cycle
        self._held: Connection | None = None
        event.listen(engine, "engine_disposed", lambda _engine: self.close())
        self.max_batch = max_batch
        self._queue: deque[_Unit] = deque()
        self._urgent: deque[_Unit] = deque()
        self._lock = threading.Lock()
        self._leading = False
        self._inside = threading.local()
        self.batches = 0  # counters, for tests and benchmarks
        self.units = 0

    def run(self, work: Callable[[Connection], T], *, urgent: bool = False) -> T:
        """`urgent` work (someone is waiting for an acknowledgement) goes ahead of the rest."""
        return self._enter(_Unit(work), urgent)  # type: ignore[no-any-return]

    def run_batched(self, op: BatchOp, item: Any, *, urgent: bool = False) -> Any:
        """Like `run`, for work that a whole batch does at once: the units of one batch with the same
        `op` are handed to one call `op(connection, [item, ...])` (e.g. one multi-row INSERT per table
        instead of one INSERT per unit); this unit's result is the entry for `item`."""
        return self._enter(_Unit(None, op, item), urgent)

    def _enter(self, unit: _Unit, urgent: bool) -> Any:
        if getattr(self._inside, "active", False):
            raise RuntimeError("group_commit() called from inside a unit of group commit work")
        with self._lock:
            (self._urgent if urgent else self._queue).append(unit)
            lead = not self._leading
            self._leading = True
        if not lead:
            unit.wake.wait()
        if not unit.done:  # nobody was committing, or the lead was handed to us
            self._lead(unit)
        if unit.error is not None:
            raise unit.error
        return unit.result

    def _lead(self, own: _Unit) -> None:
        self._inside.active = True
        try:
            while not own.done:
                with self._lock:
                    batch = [self._urgent.popleft() for _ in range(min(len(self._urgent), self.max_batch))]
                    batch += [self._queue.popleft()
                              for _ in range(min(len(self._queue), self.max_batch - len(batch)))]
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
            conn = self._connection()
            with conn.begin():
                results = self._work(conn, batch)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller(s)
            if len(batch) == 1:
                self._finish(batch[0], None, exc)
                return
            for unit in batch:  # find the unit that failed; the others commit on their own
                self._commit([unit])
            return
        self.batches += 1
        self.units += len(batch)
        for unit, result in zip(batch, results, strict=True):
            self._finish(unit, result, None)

    @property
    def engine(self) -> Engine:
        engine = self._engine()
        if engine is None:
            raise RuntimeError("the engine of this group committer is gone")
        return engine

    def _connection(self) -> Connection:
        """The connection every batch runs on, kept between batches (only the leader uses it).

        On SQLite this keeps its page cache warm: a connection that finds the database changed by
        another connection since its last transaction drops its whole cache, so batches taking turns
        on pooled connections would read the B-tree pages of every index they touch again. On
        PostgreSQL it saves a pool checkout and its liveness ping per batch. A connection found dead
        is replaced (its batch fails, and its units are retried alone on the new one)."""
        conn = self._held
        if conn is None or conn.invalidated or conn.closed:
            if conn is not None:
                conn.close()
            conn = self._held = self.engine.connect()
        return conn

    def close(self) -> None:
        """Give the kept connection back (engine.dispose() calls this)."""
        conn, self._held = self._held, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _work(conn: Connection, batch: list[_Unit]) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        shared: dict[BatchOp, list[int]] = {}
        for i, unit in enumerate(batch):
            if unit.op is not None:
                shared.setdefault(unit.op, []).append(i)
            else:
                assert unit.work is not None
                results[i] = unit.work(conn)
        for op, positions in shared.items():
            out = op(conn, [batch[i].item for i in positions])
            if len(out) != len(positions):
                raise RuntimeError(f"{op!r} returned {len(out)} results for {len(positions)} items")
            for i, result in zip(positions, out, strict=True):
                results[i] = result
        return results

    @staticmethod
    def _finish(unit: _Unit, result: Any, error: BaseException | None) -> None:
        unit.result, unit.error, unit.done = result, error, True
        unit.wake.set()


_COMMITTERS: weakref.WeakKeyDictionary[Engine, GroupCommitter] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def group_commit(engine: Engine, work: Callable[[Connection], T], *, urgent: bool = False) -> T:
    """Run `work(connection)` in a write transaction shared with other threads' (see GroupCommitter)."""
    return _committer(engine).run(work, urgent=urgent)


def _committer(engine: Engine) -> GroupCommitter:
    committer = _COMMITTERS.get(engine)
    if committer is None:
        with _COMMITTERS_LOCK:
            committer = _COMMITTERS.get(engine) or GroupCommitter(engine)
            _COMMITTERS[engine] = committer
    return committer


def group_batched(engine: Engine, op: BatchOp, item: Any, *, urgent: bool = False) -> Any:
    """Run `op(connection, [item, ...])` once for every unit of a group-commit batch that has the
    same `op` (see GroupCommitter.run_batched); returns the result for `item`."""
    return _committer(engine).run_batched(op, item, urgent=urgent)
