"""Initial app schema: tenants, users, prospects, activity_log, usage, enrichment, provider state.

On PostgreSQL, activity_log is range-partitioned by month (with a DEFAULT partition so no insert is
ever lost; the pipeline's `activity_log_partitions` asset creates the monthly partitions ahead),
indexed with BRIN/B-tree/GIN, and every tenant table gets a row-level-security policy. On SQLite the
same tables are plain tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.models import ACTION_TYPES, TENANT_TABLES

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    _create_activity_log()

    op.create_table(
        "api_call_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Numeric(precision=14, scale=6), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column(
            "called_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_call_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_call_log_provider_called_at", ["provider", "called_at"], unique=False
        )

    op.create_table(
        "api_usage",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("origin", sa.String(length=20), server_default="pipeline", nullable=False),
        sa.Column("success_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failure_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rate_limited_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd", sa.Numeric(precision=14, scale=6), server_default="0", nullable=False
        ),
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
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "date", "origin", name="uq_api_usage_provider_date_origin"),
    )
    op.create_table(
        "provider_circuit_state",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), server_default="closed", nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column("window_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "state IN ('closed', 'open', 'half_open')", name="ck_provider_circuit_state_state"
        ),
        sa.PrimaryKeyConstraint("provider"),
    )
    op.create_table(
        "tenants",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("plan", sa.String(length=40), server_default="team", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "usage_metrics_daily",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("total_logins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("searches_executed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("profiles_viewed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("profiles_enriched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("csv_exports", sa.Integer(), server_default="0", nullable=False),
        sa.Column("adds_to_list", sa.Integer(), server_default="0", nullable=False),
        sa.Column("removes_from_list", sa.Integer(), server_default="0", nullable=False),
        sa.Column("statuses_updated", sa.Integer(), server_default="0", nullable=False),
        sa.Column("notes_added", sa.Integer(), server_default="0", nullable=False),
        sa.Column("personas_created", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lookalike_searches", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_events", sa.Integer(), server_default="0", nullable=False),
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
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("date", "tenant_id", "user_id", name="uq_usage_metrics_daily_key"),
    )
    op.create_table(
        "enrichment_jobs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "errors",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
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
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')", name="ck_enrichment_jobs_status"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrichment_jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrichment_jobs_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "prospects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("linkedin_url", sa.String(length=500), nullable=True),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("is_public_company", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("company_ticker", sa.String(length=12), nullable=True),
        sa.Column("company_cik", sa.String(length=10), nullable=True),
        sa.Column(
            "enrichment_status", sa.String(length=20), server_default="pending", nullable=False
        ),
        sa.Column("last_enriched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "person_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "contact_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "web_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "insider_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "ai_summary",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column(
            "enrichment_source_status",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
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
        sa.CheckConstraint(
            "enrichment_status IN ('pending', 'in_progress', 'complete', 'failed')",
            name="ck_prospects_enrichment_status",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prospects_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "tenant_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=40), server_default="rep", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "enrichment_requests",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("prospect_id", sa.BigInteger(), nullable=False),
        sa.Column("requested_by", sa.BigInteger(), nullable=True),
        sa.Column("force", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("batch_key", sa.String(length=100), nullable=True),
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
        sa.CheckConstraint(
            "status IN ('pending', 'queued', 'running', 'done', 'rejected', 'failed')",
            name="ck_enrichment_requests_status",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["enrichment_jobs.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("enrichment_requests", schema=None) as batch_op:
        batch_op.create_index("ix_enrichment_requests_batch_key", ["batch_key"], unique=False)
        batch_op.create_index("ix_enrichment_requests_prospect", ["prospect_id"], unique=False)
        batch_op.create_index("ix_enrichment_requests_status_id", ["status", "id"], unique=False)

    if _is_postgres():
        _enable_row_level_security()


def downgrade() -> None:
    with op.batch_alter_table("enrichment_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_enrichment_requests_status_id")
        batch_op.drop_index("ix_enrichment_requests_prospect")
        batch_op.drop_index("ix_enrichment_requests_batch_key")

    op.drop_table("enrichment_requests")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_tenant_id"))

    op.drop_table("users")
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prospects_tenant_id"))

    op.drop_table("prospects")
    with op.batch_alter_table("enrichment_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrichment_jobs_tenant_id"))

    op.drop_table("enrichment_jobs")
    op.drop_table("usage_metrics_daily")
    op.drop_table("tenants")
    op.drop_table("provider_circuit_state")
    op.drop_table("api_usage")
    with op.batch_alter_table("api_call_log", schema=None) as batch_op:
        batch_op.drop_index("ix_api_call_log_provider_called_at")

    op.drop_table("api_call_log")
    op.drop_table("activity_log")


_ACTION_CHECK = "action_type IN (" + ", ".join(f"'{a}'" for a in ACTION_TYPES) + ")"


def _create_activity_log() -> None:
    if not _is_postgres():
        op.create_table(
            "activity_log",
            sa.Column(
                "id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                autoincrement=True,
                nullable=False,
            ),
            sa.Column("tenant_id", sa.BigInteger(), nullable=False),
            sa.Column("user_id", sa.BigInteger(), nullable=False),
            sa.Column("action_type", sa.String(length=40), nullable=False),
            sa.Column("target_type", sa.String(length=40), nullable=True),
            sa.Column("target_id", sa.String(length=100), nullable=True),
            sa.Column(
                "metadata",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            ),
            sa.Column(
                "ip_address",
                sa.String(length=45).with_variant(postgresql.INET(), "postgresql"),
                nullable=True,
            ),
            sa.Column("user_agent", sa.Text(), nullable=True),
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("(CURRENT_TIMESTAMP)"),
                nullable=False,
            ),
            sa.CheckConstraint(_ACTION_CHECK, name="ck_activity_log_action_type"),
            sa.PrimaryKeyConstraint("id"),
        )
        with op.batch_alter_table("activity_log", schema=None) as batch_op:
            batch_op.create_index("ix_activity_log_created_at", ["created_at"], unique=False)
            batch_op.create_index(
                "ix_activity_log_tenant_action_created",
                ["tenant_id", "action_type", "created_at"],
                unique=False,
            )
            batch_op.create_index(
                "ix_activity_log_user_created", ["user_id", "created_at"], unique=False
            )
        return
    # The partition key must be part of the primary key on a partitioned table.
    op.execute(
        f"""
        CREATE TABLE activity_log (
            id BIGSERIAL NOT NULL,
            tenant_id BIGINT NOT NULL,
            user_id BIGINT NOT NULL,
            action_type VARCHAR(40) NOT NULL,
            target_type VARCHAR(40),
            target_id VARCHAR(100),
            metadata JSONB,
            ip_address INET,
            user_agent TEXT,
            created_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT pk_activity_log PRIMARY KEY (id, created_at),
            CONSTRAINT ck_activity_log_action_type CHECK ({_ACTION_CHECK})
        ) PARTITION BY RANGE (created_at)
        """
    )
    # Rows for a month whose partition does not exist yet land here instead of failing.
    op.execute("CREATE TABLE activity_log_default PARTITION OF activity_log DEFAULT")
    op.execute(
        "CREATE INDEX ix_activity_log_created_at_brin ON activity_log USING BRIN (created_at)"
    )
    op.execute(
        "CREATE INDEX ix_activity_log_tenant_action_created "
        "ON activity_log (tenant_id, action_type, created_at DESC)"
    )
    op.execute(
        "CREATE INDEX ix_activity_log_user_created ON activity_log (user_id, created_at DESC)"
    )
    op.execute("CREATE INDEX ix_activity_log_metadata_gin ON activity_log USING GIN (metadata)")


def _tenant_predicate(column: str) -> str:
    # missing_ok=true: with no tenant set the setting is NULL/empty and the policy matches nothing.
    return f"{column} = NULLIF(current_setting('app.current_tenant_id', true), '')::bigint"


def _enable_row_level_security() -> None:
    # The DEFAULT partition gets its own policy: a role granted on it directly would otherwise
    # read every tenant's rows (policies on the parent only apply to queries through the parent).
    policies = [("tenants", "id"), ("activity_log_default", "tenant_id")]
    policies += [(table, "tenant_id") for table in TENANT_TABLES]
    for table, column in policies:
        predicate = _tenant_predicate(column)
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({predicate}) WITH CHECK ({predicate})"
        )
