"""The rate limit's ask answers the next wait with a grant (issue 11).

`phronesis_rate_limit_ask(bucket, limit, window_ms)` (`db/sql/migration_0008_rate_limit_ask.sql`)
decides a slot as 0006's `phronesis_rate_limit_take` does and, with a grant that filled the
window, says how long until the next slot frees, so that a process's next waiting thread sleeps
until then instead of asking to be refused. 0006's function stays (a process of the release
before may still call it during a deploy), redefined as the new one's answer in 0006's terms;
a downgrade puts 0006's own body back.

Revision ID: 0008_rate_limit_ask
Revises: 0007_request_notify
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0008_rate_limit_ask"
down_revision = "0007_request_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0008_rate_limit_ask")


def downgrade() -> None:
    execute_script(op.get_bind(), "migration_0006_rate_limit")  # idempotent: its own take
    op.execute("DROP FUNCTION IF EXISTS phronesis_rate_limit_ask(TEXT, INTEGER, INTEGER)")
