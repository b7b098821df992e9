"""The dashboard datasets of issue 13 and RLS on the derived tenant tables.

Ours: `platform_pulse_daily` (one row per UTC day for the platform) and `funnel_daily` (per
tenant per UTC day, plus the platform row with tenant_id NULL). Row-level security on the web
app's `app.current_tenant_id` setting (cast to UUID) on `funnel_daily`, and ensured on
`tenant_activity_daily` and `enrichment_error_feed`. Indexes on the day windows the datasets
read from our tables (request log, source results, call log). The SQL
(`db/sql/migration_0003_dashboards.sql`) is idempotent.

Revision ID: 0003_dashboards
Revises: 0003_recovery
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0003_dashboards"
down_revision = "0003_recovery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0003_dashboards")


def downgrade() -> None:
    # The policies of tenant_activity_daily and enrichment_error_feed belong to 0002's tables and
    # stay; ours go with their tables.
    for index in (
        "ix_enrichment_requests_created_at",
        "ix_enrichment_requests_updated_at",
        "ix_enrichment_source_results_updated_at",
        "ix_api_call_log_called_at_brin",
    ):
        op.execute(f"DROP INDEX IF EXISTS {index}")
    op.execute("DROP TABLE IF EXISTS funnel_daily")
    op.execute("DROP TABLE IF EXISTS platform_pulse_daily")
