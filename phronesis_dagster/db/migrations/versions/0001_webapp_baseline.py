"""The web app's baseline: its tables exactly as ../shared/webapp/schema.sql creates them.

The web app's migrations own `tenants`, `users`, `prospects`, `activity_log` and
`usage_metrics_daily`. On the web app's database (production) they already exist and this
revision does nothing; on an empty database (laptop, tests, a new environment) it applies
`db/sql/webapp_schema.sql`, a byte-for-byte copy of schema.sql, so both paths end with the same
tables. It replaces the pre-production 0001/0003/0004, which created a schema of our own.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.models import WEBAPP_TABLES
from phronesis_dagster.db.sql_files import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    present = set(
        bind.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).scalars()
    )
    if "tenants" not in present:
        execute_script(bind, "webapp_schema")
        return
    missing = [t for t in WEBAPP_TABLES if t not in present]
    if missing:
        raise RuntimeError(
            "`tenants` exists but not the rest of the web app's schema "
            f"(missing: {', '.join(missing)}): apply the web app's migrations first, or migrate "
            "an empty database"
        )


def downgrade() -> None:
    # The web app's tables are never dropped by us, even when this revision created them.
    pass
