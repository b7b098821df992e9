"""Enrichment source results: one row per (batch, prospect, source), the record that keeps a
re-run batch from calling (and paying) a provider again for a source that already completed.

Also indexes prospects by enrichment status, which the stuck-prospect check and the sensor read.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None

_STATUSES = "'complete', 'not_found', 'failed', 'circuit_open', 'skipped'"


def upgrade() -> None:
    op.create_table(
        "enrichment_source_results",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("batch_key", sa.String(length=100), nullable=False),
        sa.Column("prospect_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(f"status IN ({_STATUSES})", name="ck_enrichment_source_results_status"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "batch_key", "prospect_id", "source", name="uq_enrichment_source_results_key"
        ),
    )
    with op.batch_alter_table("enrichment_source_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrichment_source_results_source_updated", ["source", "updated_at"], unique=False
        )
        batch_op.create_index(
            "ix_enrichment_source_results_prospect", ["prospect_id"], unique=False
        )
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prospects_enrichment_status", ["enrichment_status", "updated_at"], unique=False
        )

    if op.get_bind().dialect.name == "postgresql":
        predicate = "tenant_id = NULLIF(current_setting('app.current_tenant_id', true), '')::bigint"
        op.execute("ALTER TABLE enrichment_source_results ENABLE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON enrichment_source_results "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )


def downgrade() -> None:
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index("ix_prospects_enrichment_status")
    with op.batch_alter_table("enrichment_source_results", schema=None) as batch_op:
        batch_op.drop_index("ix_enrichment_source_results_prospect")
        batch_op.drop_index("ix_enrichment_source_results_source_updated")
    op.drop_table("enrichment_source_results")
