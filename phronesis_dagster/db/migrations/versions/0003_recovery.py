"""Enrichment run heartbeats: one row per enrichment batch run, stamped every few seconds by the
running batch, so a run whose process died where the run launcher cannot tell (the code server
died with it, `dagster job execute`, a lost node) is found by `enrichment_recovery_sensor` and
failed, and Dagster's run retries resume its batch.

Self-contained (no foreign key): the lead chains it after the newest revision at merge time.

Revision ID: 0003_recovery
Revises: 0003_sec_document_cache
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_recovery"
down_revision = "0003_sec_document_cache"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrichment_run_heartbeats",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("batch_key", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "beat_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index(
        "ix_enrichment_run_heartbeats_batch", "enrichment_run_heartbeats", ["batch_key"]
    )


def downgrade() -> None:
    op.drop_index("ix_enrichment_run_heartbeats_batch", table_name="enrichment_run_heartbeats")
    op.drop_table("enrichment_run_heartbeats")
