"""The shared rate limit in one round trip per slot (issue 11).

`provider_rate_limit_grants` (the grants of each bucket's sliding window) and the function
`phronesis_rate_limit_take(bucket, limit, window_ms)` that the rate limiter calls instead of
pyrate-limiter's PostgreSQL bucket, which took six to eight round trips per ask (its clock, a
table lock, a count, a peek, the insert, the commits) and refused on a busy lock. The SQL
(`db/sql/migration_0006_rate_limit.sql`) is idempotent. The old per-bucket tables
(`ratelimit___provider_*`, made by pyrate-limiter at first use, not by a migration) are
dropped: nothing reads them any more, and a downgrade does not bring them back (the limiter
that made them is gone; 0005's code would make them again at first use).

Revision ID: 0006_rate_limit
Revises: 0005_request_enrichment
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0006_rate_limit"
down_revision = "0005_request_enrichment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0006_rate_limit")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS phronesis_rate_limit_take(TEXT, INTEGER, INTEGER)")
    op.execute("DROP TABLE IF EXISTS provider_rate_limit_grants")
