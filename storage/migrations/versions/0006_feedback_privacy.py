"""feedback privacy: frozen weeks of answers and ratings, column lengths enforced on SQLite

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 10:00:00

- reactions.removed_at: a removed reaction is kept (with the time it was removed) instead of deleted,
  so a closed week's ratings never change afterwards (docs/privacy.md). The unique key
  (request, user, emoji) now holds among the reactions that are still there (a partial unique index),
  so the same emoji can be given again after it was removed.
- surveys (team, expires_at, answered_at, score): a survey answer counts in the week its survey closes
  (the chart's weekly CSAT is read from this index alone).
- SQLite does not enforce VARCHAR(n): every VARCHAR(n) column gets a length check (a trigger per table
  and statement kind, raising "value too long"), so both databases refuse what PostgreSQL refuses.
  A later migration that adds a VARCHAR(n) column must add it to these checks
  (tests/test_privacy_markup.py fails otherwise).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text('removed_at IS NULL')


def _limits(table: str) -> list[tuple[str, int]]:
    """(column, length) of the table's VARCHAR(n) columns, as they are in the database now."""
    columns = sa.inspect(op.get_bind()).get_columns(table)
    return [(c['name'], c['type'].length) for c in columns
            if isinstance(c['type'], sa.String) and getattr(c['type'], 'length', None)]


def _tables() -> list[str]:
    """Every askdesk table there is at this revision."""
    return [t for t in sa.inspect(op.get_bind()).get_table_names() if t != 'alembic_version']


def _length_triggers(table: str) -> None:
    limits = _limits(table)
    if not limits:
        return
    too_long = ' OR '.join(f'length(NEW."{name}") > {n}' for name, n in limits)
    for when in ('INSERT', 'UPDATE'):
        op.execute(f'CREATE TRIGGER "{table}_lengths_{when.lower()}" BEFORE {when} ON "{table}" '
                   f'WHEN {too_long} BEGIN SELECT RAISE(ABORT, \'{table}: value too long\'); END')


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    with op.batch_alter_table('reactions') as batch:
        batch.add_column(sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.drop_constraint('uq_reactions_req_user_emoji', type_='unique')
    op.create_index('uq_reactions_active', 'reactions', ['request_id', 'user_id', 'emoji'], unique=True,
                    sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    op.create_index('ix_surveys_team_expires_cover', 'surveys', ['team', 'expires_at', 'answered_at', 'score'])
    if sqlite:
        for table in _tables():
            _length_triggers(table)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table in _tables():
            for when in ('insert', 'update'):
                op.execute(f'DROP TRIGGER IF EXISTS "{table}_lengths_{when}"')
    op.drop_index('ix_surveys_team_expires_cover', table_name='surveys')
    op.drop_index('uq_reactions_active', table_name='reactions')
    op.execute('DELETE FROM reactions WHERE removed_at IS NOT NULL')
    with op.batch_alter_table('reactions') as batch:
        batch.create_unique_constraint('uq_reactions_req_user_emoji', ['request_id', 'user_id', 'emoji'])
        batch.drop_column('removed_at')
