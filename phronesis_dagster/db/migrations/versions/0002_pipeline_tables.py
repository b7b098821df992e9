"""The pipeline's tables and its additive columns on the web app's tables.

Ours: enrichment_requests, enrichment_jobs (UUID id: the web app polls it),
enrichment_source_results, api_usage, api_call_log, provider_circuit_state, api_quota_daily,
api_quota_burn_daily, enrichment_health_daily, enrichment_error_feed, tenant_activity_daily, all
with UUID columns where they point at the web app's rows and row-level security on the web app's
`app.current_tenant_id` setting (cast to UUID) where they carry a tenant. Additive on the web
app's: `prospects` (person_data, ai_summary_structured, is_public_company, company_ticker,
company_cik, one index), `usage_metrics_daily` (our extra counters), and a DEFAULT partition of
`activity_log` when it has none. The SQL (`db/sql/migration_0002_pipeline.sql`) is idempotent.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.models import OUR_TENANT_TABLES
from phronesis_dagster.db.sql_files import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_OUR_TABLES = (
    "tenant_activity_daily",
    "enrichment_error_feed",
    "enrichment_health_daily",
    "api_quota_burn_daily",
    "api_quota_daily",
    "provider_circuit_state",
    "api_call_log",
    "api_usage",
    "enrichment_source_results",
    "enrichment_requests",
    "enrichment_jobs",
)
assert set(OUR_TENANT_TABLES) <= set(_OUR_TABLES)


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0002_pipeline")


def downgrade() -> None:
    # Our tables only. The columns added to the web app's tables stay: dropping a column of a
    # table we do not own could take data the web app has come to rely on.
    for table in _OUR_TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP FUNCTION IF EXISTS phronesis_try_timestamptz(TEXT)")
