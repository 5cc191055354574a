"""Schema migrations (Alembic): upgrade to a revision, read the current one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from storage.session import reader

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply Alembic migrations up to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with reader(engine).connect() as conn:  # SQLite: no write lock needed
        return MigrationContext.configure(conn).get_current_revision()
