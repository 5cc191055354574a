"""people.locale: each person's Slack locale, cached like their time zone

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 10:00:00

askdesk speaks to each person in their language (issue 16): `users.info` with `include_locale=true`
gives `user.locale` ("zh-CN", "en-US", ...), stored as Slack reports it ("" when Slack gave none), so a
change of the configured fallbacks applies without asking Slack again.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('people') as batch:
        batch.drop_column('locale')
