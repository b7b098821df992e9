"""Live progress of bulk jobs and the one-call fresh answer (issue 13).

`enrichment_jobs` gains `phase`, `eta_seconds`, `highlights`, `progress_at` and `started_at`
(the web app's columns are untouched; its inserts name none of these); `enrichment_requests`
an index on `job_id` (every progress write derives the job's counts from its requests); the
function `phronesis_request_enrichment(prospect_id, tenant_id, requested_by, force, staleness)`
that the web app calls instead of a bare INSERT, so a prospect that is already fresh is answered
`done` at once. The SQL (`db/sql/migration_0004_job_progress.sql`) is idempotent.

Revision ID: 0004_job_progress
Revises: 0003_dashboards
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0004_job_progress"
down_revision = "0003_dashboards"
branch_labels = None
depends_on = None

_COLUMNS = ("phase", "eta_seconds", "highlights", "progress_at", "started_at")


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0004_job_progress")


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS phronesis_request_enrichment(UUID, UUID, UUID, BOOLEAN, INTERVAL)"
    )
    op.execute("DROP INDEX IF EXISTS ix_enrichment_requests_job_id")
    op.execute("ALTER TABLE enrichment_jobs DROP CONSTRAINT IF EXISTS ck_enrichment_jobs_phase")
    for column in _COLUMNS:
        op.execute(f"ALTER TABLE enrichment_jobs DROP COLUMN IF EXISTS {column}")
