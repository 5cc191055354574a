"""SLA policies: a cursor for re-planning after a config change

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:00:00

- sla_policies.replan_from: the next request id whose open requests are still to be marked for
  re-planning after the team's SLA policy changed (NULL: all were). Marking goes in id ranges over
  several ticks instead of one UPDATE of every open request, and resumes after a restart.
- PostgreSQL: ANALYZE requests, so the partial index of unplanned requests is used from the start.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('sla_policies', sa.Column('replan_from', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        # statistics for the columns 0007 added: without them the planner's query for unplanned
        # requests sorts every one of them (80 ms with 100,000) until autovacuum gets round to it
        op.execute('ANALYZE requests')


def downgrade() -> None:
    # plain ALTER (SQLite >= 3.35): a batch copy of the table would lose its length-check triggers
    op.execute('ALTER TABLE sla_policies DROP COLUMN replan_from')
