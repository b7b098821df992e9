"""NOTIFY phronesis_enrichment_requests when a request without a job is inserted (issue 11).

A statement-level AFTER INSERT trigger on `enrichment_requests` (`db/sql/
migration_0007_request_notify.sql`): the interactive request sensor LISTENs while its tick has
nothing to do, so a rep's click is batched as soon as it commits instead of at the next tick.

Revision ID: 0007_request_notify
Revises: 0006_rate_limit
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

from phronesis_dagster.db.sql_files import execute_script

revision = "0007_request_notify"
down_revision = "0006_rate_limit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(op.get_bind(), "migration_0007_request_notify")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS enrichment_requests_notify ON enrichment_requests")
    op.execute("DROP FUNCTION IF EXISTS phronesis_notify_enrichment_requests()")
