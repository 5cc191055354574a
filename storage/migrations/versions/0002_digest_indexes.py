"""indexes for the weekly digests

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 17:00:00

The digest aggregates (storage/digest_queries.py) read one or two weeks per team. These indexes let
SQLite (which has no planner statistics unless ANALYZE ran) and PostgreSQL answer them from index
ranges, most of them without touching the table:
- requests (team, status, created_at): the open backlog, the oldest open and unclaimed requests;
- request_events (team, kind, at): resolved / reopened / transferred counts per period;
- reactions (team, created_at): emoji ratings of a period;
- three existing (team, time) indexes are widened into covering ones (same leading columns, so every
  query that used them still can): requests (team, created_at) + department, category;
  requests (team, resolved_at) + created_at, first_response_at; surveys (team, answered_at) + score.
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WIDENED = [
    ('requests', 'ix_requests_team_created', ['team', 'created_at'],
     'ix_requests_team_created_cover', ['team', 'created_at', 'department', 'category']),
    ('requests', 'ix_requests_team_resolved', ['team', 'resolved_at'],
     'ix_requests_team_resolved_cover', ['team', 'resolved_at', 'created_at', 'first_response_at']),
    ('surveys', 'ix_surveys_team_answered', ['team', 'answered_at'],
     'ix_surveys_team_answered_cover', ['team', 'answered_at', 'score']),
]


def upgrade() -> None:
    op.create_index('ix_requests_team_status_created', 'requests', ['team', 'status', 'created_at'])
    op.create_index('ix_request_events_team_kind_at', 'request_events', ['team', 'kind', 'at'])
    op.create_index('ix_reactions_team_created', 'reactions', ['team', 'created_at'])
    for table, old, _old_cols, new, new_cols in WIDENED:
        op.create_index(new, table, new_cols)
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, old, old_cols, new, _new_cols in WIDENED:
        op.create_index(old, table, old_cols)
        op.drop_index(new, table_name=table)
    op.drop_index('ix_reactions_team_created', table_name='reactions')
    op.drop_index('ix_request_events_team_kind_at', table_name='request_events')
    op.drop_index('ix_requests_team_status_created', table_name='requests')
