"""The web app's one-call "Enrich" answers bad requests at once (issue 13).

`phronesis_request_enrichment` (0004) raises a named error and writes nothing for an unknown
prospect, another tenant's prospect, a tenant other than the session's `app.current_tenant_id`
and NULL arguments, instead of queueing a row the sensor rejects seconds later. Fresh and stale
prospects are answered as before (`done` at once, or `pending` for the sensor). Same signature,
defaults and return type. The SQL (`db/sql/migration_0005_request_enrichment.sql`) is idempotent.

Revision ID: 0005_request_enrichment
Revises: 0004_job_progress
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0005_request_enrichment"
down_revision = "0004_job_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0005_request_enrichment")


def downgrade() -> None:
    # 0004's script, again: it is idempotent (its columns, constraint and index already exist)
    # and its CREATE OR REPLACE puts back 0004's function exactly, from the one copy of it.
    execute_script(op.get_bind(), "migration_0004_job_progress")
