"""The people table's cache of who someone is (department, time zone, locale), as the directory uses it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.models import Person
from storage.session import dialect_insert, reader

_PEOPLE = Person.__table__  # type: ignore[attr-defined]
_CACHED = select(_PEOPLE.c.department, _PEOPLE.c.tz, _PEOPLE.c.locale, _PEOPLE.c.refreshed_at).where(
    _PEOPLE.c.user_id == bindparam("user_id"))


def cached(engine: Engine, user_id: str) -> Row | None:
    """What is cached of a person (one row read, never waiting for a writer), None for a stranger."""
    with reader(engine).connect() as conn:
        return conn.execute(_CACHED, {"user_id": user_id}).first()


def save(session: Session, rows: list[dict[str, Any]]) -> list[None]:
    """Insert or update people (a group-commit op): each row's columns, by `user_id`; the rows with the
    same columns in one statement. Two first contacts of one person may race: the last one wins."""
    for columns in dict.fromkeys(tuple(row) for row in rows):
        stmt = dialect_insert(session)(Person)
        stmt = stmt.on_conflict_do_update(index_elements=["user_id"],
                                          set_={c: stmt.excluded[c] for c in columns if c != "user_id"})
        session.exec(stmt, params=[row for row in rows if tuple(row) == columns])  # type: ignore[call-overload]
    return [None] * len(rows)
