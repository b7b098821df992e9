"""Quota and operations datasets: api_quota_daily, api_quota_burn_daily, enrichment_health_daily,
enrichment_error_feed, tenant_activity_daily (the admin dashboard's tables).

Plain tables on both PostgreSQL and SQLite; the pipeline rebuilds them, the web app only reads.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
# The lead re-chains this onto 0003 (enrichment) once 0002/0003 exist.
down_revision = "0003"
branch_labels = None
depends_on = None

_TENANT_COUNTERS = (
    "total_logins",
    "searches_executed",
    "profiles_viewed",
    "profiles_enriched",
    "csv_exports",
    "adds_to_list",
    "removes_from_list",
    "statuses_updated",
    "notes_added",
    "personas_created",
    "lookalike_searches",
)


def _id() -> sa.Column:
    return sa.Column(
        "id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        autoincrement=True,
        nullable=False,
    )


def _created_at() -> sa.Column:
    return sa.Column(
        "created_at",
        sa.DateTime(timezone=True),
        server_default=sa.text("(CURRENT_TIMESTAMP)"),
        nullable=False,
    )


def _count(name: str, type_: sa.types.TypeEngine | None = None) -> sa.Column:
    return sa.Column(name, type_ or sa.Integer(), server_default="0", nullable=False)


def upgrade() -> None:
    op.create_table(
        "api_quota_daily",
        _id(),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        _count("success_count", sa.BigInteger()),
        _count("failure_count", sa.BigInteger()),
        _count("rate_limited_count", sa.BigInteger()),
        _count("cost_usd", sa.Numeric(precision=14, scale=6)),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "provider", "origin", name="uq_api_quota_daily_key"),
    )
    op.create_table(
        "api_quota_burn_daily",
        _id(),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        _count("calls", sa.BigInteger()),
        _count("mtd_calls", sa.BigInteger()),
        sa.Column("monthly_quota", sa.BigInteger(), nullable=False),
        _count("pct_burned", sa.Float()),
        _count("projected_month_end_calls", sa.Float()),
        _count("projected_pct", sa.Float()),
        sa.Column("days_until_exhausted", sa.Float(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "provider", name="uq_api_quota_burn_daily_key"),
    )
    op.create_table(
        "enrichment_health_daily",
        _id(),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        _count("complete_count"),
        _count("failed_count"),
        _count("circuit_open_count"),
        _count("skipped_count"),
        _count("not_found_count"),
        _count("total_count"),
        sa.Column("failure_rate", sa.Float(), nullable=True),
        sa.Column("median_latency_ms", sa.Float(), nullable=True),
        sa.Column("latency_source", sa.String(length=20), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "source", name="uq_enrichment_health_daily_key"),
    )
    op.create_table(
        "enrichment_error_feed",
        _id(),
        sa.Column("prospect_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("record_shape", sa.String(length=20), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrichment_error_feed", schema=None) as batch_op:
        batch_op.create_index("ix_enrichment_error_feed_at", ["at"], unique=False)
    op.create_table(
        "tenant_activity_daily",
        _id(),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        _count("active_users"),
        _count("total_events"),
        *(_count(name) for name in _TENANT_COUNTERS),
        _created_at(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "tenant_id", name="uq_tenant_activity_daily_key"),
    )


def downgrade() -> None:
    op.drop_table("tenant_activity_daily")
    with op.batch_alter_table("enrichment_error_feed", schema=None) as batch_op:
        batch_op.drop_index("ix_enrichment_error_feed_at")
    op.drop_table("enrichment_error_feed")
    op.drop_table("enrichment_health_daily")
    op.drop_table("api_quota_burn_daily")
    op.drop_table("api_quota_daily")
