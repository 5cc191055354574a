"""jobs.failing_since: when a job's current run of failures began

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 10:00:00

A job that Slack keeps refusing with transient errors (5xx, timeouts) is retried for a day from the
first of those failures before it is given up; 429 answers (rate limits) and waits for working
hours never start or extend that clock. NULL while the job has not failed.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('failing_since', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('failing_since')
