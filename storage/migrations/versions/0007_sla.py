"""SLA reminders, escalation, waiting on the requester and assignment

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:00:00

- requests: the SLA cycle (`sla_cycle`, `sla_start_at`, `sla_responded_at`), time paused while waiting
  on the requester (`sla_paused_seconds`, `waiting_since`), the policy its timers were planned with
  (`sla_plan`, NULL = to be planned, found through the partial index `ix_requests_sla_unplanned`) and
  its earliest deadline (`sla_due_at`). Requests resolved before this migration need no plan.
- responders: who is available for automatic assignment, and when each was last assigned.
- sla_policies: the SLA policy each team's open requests were planned with (a config change re-plans).
- SQLite: the length checks of 0006 (a trigger per table and statement kind) are redone for `requests`
  (which has a new VARCHAR column) and added for the two new tables.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401 - autogenerate emits sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNPLANNED = sa.text('sla_plan IS NULL')
CHECKED = ('requests', 'responders', 'sla_policies')


def _length_triggers(table: str, *, create: bool) -> None:
    """SQLite's VARCHAR(n) checks for one table, as 0006 made them (dropped first, then made anew)."""
    for when in ('insert', 'update'):
        op.execute(f'DROP TRIGGER IF EXISTS "{table}_lengths_{when}"')
    columns = sa.inspect(op.get_bind()).get_columns(table)
    limits = [(c['name'], c['type'].length) for c in columns
              if isinstance(c['type'], sa.String) and getattr(c['type'], 'length', None)]
    if not create or not limits:
        return
    too_long = ' OR '.join(f'length(NEW."{name}") > {n}' for name, n in limits)
    for when in ('INSERT', 'UPDATE'):
        op.execute(f'CREATE TRIGGER "{table}_lengths_{when.lower()}" BEFORE {when} ON "{table}" '
                   f'WHEN {too_long} BEGIN SELECT RAISE(ABORT, \'{table}: value too long\'); END')


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('sla_cycle', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('sla_start_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('sla_responded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('sla_paused_seconds', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('waiting_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('sla_plan', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch.add_column(sa.Column('sla_due_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    # open requests keep the response they had; resolved ones have nothing left to plan
    op.execute("UPDATE requests SET sla_responded_at = first_response_at")
    op.execute("UPDATE requests SET sla_plan = '-' WHERE status = 'resolved'")
    op.create_index('ix_requests_sla_unplanned', 'requests', ['id'], sqlite_where=UNPLANNED,
                    postgresql_where=UNPLANNED)
    op.create_table(
        'responders',
        sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('available', sa.Boolean(), nullable=False),
        sa.Column('last_assigned_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('team', 'user_id'),
    )
    op.create_table(
        'sla_policies',
        sa.Column('team', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('plan', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('team'),
    )
    if op.get_bind().dialect.name == 'sqlite':
        for table in CHECKED:
            _length_triggers(table, create=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for table in CHECKED:
            _length_triggers(table, create=False)
    op.drop_table('sla_policies')
    op.drop_table('responders')
    op.drop_index('ix_requests_sla_unplanned', table_name='requests')
    with op.batch_alter_table('requests') as batch:
        for column in ('sla_due_at', 'sla_plan', 'waiting_since', 'sla_paused_seconds', 'sla_responded_at',
                       'sla_start_at', 'sla_cycle'):
            batch.drop_column(column)
    if op.get_bind().dialect.name == 'sqlite':
        _length_triggers('requests', create=True)  # as 0006 left them
