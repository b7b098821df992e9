"""SQLAlchemy 2 models of the app database.

One metadata serves PostgreSQL (production) and SQLite (the embedded default). Types that only
PostgreSQL has (JSONB, INET) are variants, so the same model works on both; PostgreSQL-only
structure (the partitioned ``activity_log``, BRIN/GIN indexes, row-level security) is applied by the
migrations, which check the dialect.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IPAddress = sa.String(45).with_variant(postgresql.INET(), "postgresql")
UtcDateTime = sa.DateTime(timezone=True)

ACTION_TYPES: tuple[str, ...] = (
    "login",
    "search_executed",
    "profile_viewed",
    "profile_enriched",
    "add_to_list",
    "remove_from_list",
    "status_updated",
    "note_added",
    "csv_exported",
    "persona_created",
    "lookalike_search",
)

# usage_metrics_daily counter column for each action type. The first five names are the ones the
# web app's dashboard already reads, so they keep their historical spelling.
COUNTER_COLUMNS: dict[str, str] = {
    "login": "total_logins",
    "search_executed": "searches_executed",
    "profile_viewed": "profiles_viewed",
    "profile_enriched": "profiles_enriched",
    "csv_exported": "csv_exports",
    "add_to_list": "adds_to_list",
    "remove_from_list": "removes_from_list",
    "status_updated": "statuses_updated",
    "note_added": "notes_added",
    "persona_created": "personas_created",
    "lookalike_search": "lookalike_searches",
}

ENRICHMENT_STATUSES: tuple[str, ...] = ("pending", "in_progress", "complete", "failed")
REQUEST_STATUSES: tuple[str, ...] = ("pending", "queued", "running", "done", "rejected", "failed")
JOB_STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")
PROVIDERS: tuple[str, ...] = ("contactout", "exa", "edgar", "apollo", "claude")

# Tables that carry a tenant_id and get a row-level-security policy on PostgreSQL.
TENANT_TABLES: tuple[str, ...] = (
    "users",
    "prospects",
    "activity_log",
    "usage_metrics_daily",
    "enrichment_requests",
    "enrichment_jobs",
)


def _in_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


def _now() -> sa.TextClause:
    return sa.text("CURRENT_TIMESTAMP")


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    plan: Mapped[str] = mapped_column(sa.String(40), server_default="team")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    email: Mapped[str] = mapped_column(sa.String(320))
    full_name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(40), server_default="rep")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (sa.UniqueConstraint("tenant_id", "email", name="uq_users_tenant_email"),)


class Prospect(Base):
    __tablename__ = "prospects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    title: Mapped[str | None] = mapped_column(sa.String(200))
    company: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(50))
    linkedin_url: Mapped[str | None] = mapped_column(sa.String(500))
    location: Mapped[str | None] = mapped_column(sa.String(200))
    is_public_company: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    company_ticker: Mapped[str | None] = mapped_column(sa.String(12))
    company_cik: Mapped[str | None] = mapped_column(sa.String(10))
    enrichment_status: Mapped[str] = mapped_column(sa.String(20), server_default="pending")
    last_enriched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    person_data: Mapped[dict | None] = mapped_column(JSONDoc)
    contact_data: Mapped[dict | None] = mapped_column(JSONDoc)
    web_data: Mapped[dict | None] = mapped_column(JSONDoc)
    insider_data: Mapped[dict | None] = mapped_column(JSONDoc)
    ai_summary: Mapped[dict | None] = mapped_column(JSONDoc)
    # {source: {"status": ..., "error": ..., "at": iso8601}} - one entry per provider.
    enrichment_source_status: Mapped[dict | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("enrichment_status", ENRICHMENT_STATUSES, "ck_prospects_enrichment_status"),
    )


class ActivityLog(Base):
    """User actions written by the web app. Range-partitioned by month on PostgreSQL."""

    __tablename__ = "activity_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    action_type: Mapped[str] = mapped_column(sa.String(40))
    target_type: Mapped[str | None] = mapped_column(sa.String(40))
    target_id: Mapped[str | None] = mapped_column(sa.String(100))
    metadata_: Mapped[dict | None] = mapped_column("metadata", JSONDoc)
    ip_address: Mapped[str | None] = mapped_column(IPAddress)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("action_type", ACTION_TYPES, "ck_activity_log_action_type"),
        sa.Index("ix_activity_log_created_at", "created_at"),
        sa.Index("ix_activity_log_tenant_action_created", "tenant_id", "action_type", "created_at"),
        sa.Index("ix_activity_log_user_created", "user_id", "created_at"),
    )


class UsageMetricsDaily(Base):
    __tablename__ = "usage_metrics_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    user_id: Mapped[int] = mapped_column(sa.BigInteger)
    total_logins: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    searches_executed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_viewed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_enriched: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    csv_exports: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    adds_to_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    removes_from_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    statuses_updated: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    notes_added: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    personas_created: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    lookalike_searches: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_events: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("date", "tenant_id", "user_id", name="uq_usage_metrics_daily_key"),
    )


class EnrichmentJob(Base):
    """A bulk enrichment request (a list of prospects); the web app polls it for progress."""

    __tablename__ = "enrichment_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    requested_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(20), server_default="pending")
    total: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    processed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    succeeded: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    failed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    # [{"prospect_id", "source", "error", "at"}]
    errors: Mapped[list | None] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (_in_check("status", JOB_STATUSES, "ck_enrichment_jobs_status"),)


class EnrichmentRequest(Base):
    """One ask from the web app to enrich one prospect. No FK on prospect_id on purpose: the
    sensor must be able to see and reject a request for a prospect that does not exist."""

    __tablename__ = "enrichment_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    prospect_id: Mapped[int] = mapped_column(sa.BigInteger)
    requested_by: Mapped[int | None] = mapped_column(sa.BigInteger)
    force: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    status: Mapped[str] = mapped_column(sa.String(20), server_default="pending")
    reason: Mapped[str | None] = mapped_column(sa.Text)
    job_id: Mapped[int | None] = mapped_column(sa.ForeignKey("enrichment_jobs.id"))
    batch_key: Mapped[str | None] = mapped_column(sa.String(100))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("status", REQUEST_STATUSES, "ck_enrichment_requests_status"),
        sa.Index("ix_enrichment_requests_status_id", "status", "id"),
        sa.Index("ix_enrichment_requests_batch_key", "batch_key"),
        sa.Index("ix_enrichment_requests_prospect", "prospect_id"),
    )


class ApiUsage(Base):
    """Provider calls per (provider, UTC day, origin), incremented atomically by the resources."""

    __tablename__ = "api_usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(40))
    date: Mapped[date] = mapped_column(sa.Date)
    # "pipeline" for calls made by Dagster runs; the web app's Redis counters are merged in by
    # api_quota_daily under "web_app", so both origins stay distinguishable.
    origin: Mapped[str] = mapped_column(sa.String(20), server_default="pipeline")
    success_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    failure_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    rate_limited_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    cost_usd: Mapped[float] = mapped_column(sa.Numeric(14, 6), server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("provider", "date", "origin", name="uq_api_usage_provider_date_origin"),
    )


class ApiCallLog(Base):
    """One row per provider call attempt: the source of latency percentiles in api_quota_daily."""

    __tablename__ = "api_call_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(sa.String(40))
    endpoint: Mapped[str] = mapped_column(sa.String(200))
    # success | not_found | failure | rate_limited | circuit_open
    outcome: Mapped[str] = mapped_column(sa.String(20))
    http_status: Mapped[int | None] = mapped_column(sa.Integer)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    cost_usd: Mapped[float | None] = mapped_column(sa.Numeric(14, 6))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    called_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (sa.Index("ix_api_call_log_provider_called_at", "provider", "called_at"),)


class ProviderCircuitState(Base):
    """Circuit-breaker state per provider, shared by every process and machine running the
    pipeline (the app database is the one thing they all reach)."""

    __tablename__ = "provider_circuit_state"

    provider: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    state: Mapped[str] = mapped_column(sa.String(20), server_default="closed")
    window_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    window_calls: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    window_failures: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    opened_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    probe_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("state", ("closed", "open", "half_open"), "ck_provider_circuit_state_state"),
    )


class ApiQuotaDaily(Base):
    """Provider calls per (UTC day, provider, origin), written by the `api_quota_daily` asset.

    origin is "pipeline" (the `api_usage` counters of Dagster runs) or "web_app" (the web app's
    Redis counters). The two never count the same call, so a provider's total is the sum of its
    origins. Latency percentiles come from `api_call_log`, which only the pipeline writes, so they
    are NULL on web_app rows.
    """

    __tablename__ = "api_quota_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    provider: Mapped[str] = mapped_column(sa.String(40))
    origin: Mapped[str] = mapped_column(sa.String(20))
    success_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    failure_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    rate_limited_count: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    cost_usd: Mapped[float] = mapped_column(sa.Numeric(14, 6), server_default="0")
    latency_p50_ms: Mapped[float | None] = mapped_column(sa.Float)
    latency_p95_ms: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("date", "provider", "origin", name="uq_api_quota_daily_key"),
    )


class ApiQuotaBurnDaily(Base):
    """Month-to-date quota burn per (UTC day, provider), all origins summed; written by the
    `api_quota_daily` asset together with `api_quota_daily`."""

    __tablename__ = "api_quota_burn_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    provider: Mapped[str] = mapped_column(sa.String(40))
    calls: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    mtd_calls: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    monthly_quota: Mapped[int] = mapped_column(sa.BigInteger)
    pct_burned: Mapped[float] = mapped_column(sa.Float, server_default="0")
    projected_month_end_calls: Mapped[float] = mapped_column(sa.Float, server_default="0")
    projected_pct: Mapped[float] = mapped_column(sa.Float, server_default="0")
    # NULL when nothing was used this month (the quota never runs out at that pace).
    days_until_exhausted: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (sa.UniqueConstraint("date", "provider", name="uq_api_quota_burn_daily_key"),)


class EnrichmentHealthDaily(Base):
    """Per-source enrichment outcomes per UTC day, from `prospects.enrichment_source_status`."""

    __tablename__ = "enrichment_health_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    source: Mapped[str] = mapped_column(sa.String(40))
    complete_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    failed_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    circuit_open_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    skipped_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    not_found_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    # failed / (complete + failed + not_found): the share of calls actually made that failed.
    failure_rate: Mapped[float | None] = mapped_column(sa.Float)
    median_latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    # "records" (latency_ms in the per-source records) or "api_call_log".
    latency_source: Mapped[str | None] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (sa.UniqueConstraint("date", "source", name="uq_enrichment_health_daily_key"),)


class EnrichmentErrorFeed(Base):
    """The most recent per-source enrichment errors, rebuilt by `enrichment_error_feed`."""

    __tablename__ = "enrichment_error_feed"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    prospect_id: Mapped[int] = mapped_column(sa.BigInteger)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    source: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))
    message: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # "structured" ({status, error?, at}) or "legacy" (a plain status string).
    record_shape: Mapped[str] = mapped_column(sa.String(20))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (sa.Index("ix_enrichment_error_feed_at", "at"),)


class TenantActivityDaily(Base):
    """Per-tenant daily totals of `usage_metrics_daily` (the dashboard's activity heatmap)."""

    __tablename__ = "tenant_activity_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    active_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_events: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_logins: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    searches_executed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_viewed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_enriched: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    csv_exports: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    adds_to_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    removes_from_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    statuses_updated: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    notes_added: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    personas_created: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    lookalike_searches: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint("date", "tenant_id", name="uq_tenant_activity_daily_key"),
    )


# --- enrichment (migration 0003) ---
SOURCE_STATUSES: tuple[str, ...] = ("complete", "not_found", "failed", "circuit_open", "skipped")


class EnrichmentSourceResult(Base):
    """What one provider said about one prospect in one enrichment batch.

    The idempotency record of enrichment: a re-run of the batch reuses a row whose status is
    final (complete / not_found / skipped) instead of calling, and paying, the provider again.
    One row per (batch_key, prospect_id, source), written as soon as the call returns."""

    __tablename__ = "enrichment_source_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_key: Mapped[str] = mapped_column(sa.String(100))
    prospect_id: Mapped[int] = mapped_column(sa.BigInteger)
    tenant_id: Mapped[int] = mapped_column(sa.BigInteger)
    source: Mapped[str] = mapped_column(sa.String(40))
    status: Mapped[str] = mapped_column(sa.String(20))
    data: Mapped[dict | None] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(sa.Text)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    attempts: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("status", SOURCE_STATUSES, "ck_enrichment_source_results_status"),
        sa.UniqueConstraint(
            "batch_key", "prospect_id", "source", name="uq_enrichment_source_results_key"
        ),
        sa.Index("ix_enrichment_source_results_source_updated", "source", "updated_at"),
        sa.Index("ix_enrichment_source_results_prospect", "prospect_id"),
    )


# --- recovery (migration 0003_recovery) ---
class EnrichmentRunHeartbeat(Base):
    """The sign of life of one enrichment batch run: stamped every few seconds by the running
    batch (`enrichment/heartbeat.py`), read by `enrichment_recovery_sensor`, which fails a
    STARTED run silent for longer than its bound so that run retries resume the batch. Times
    are the database server's clock, so hosts with skewed clocks agree."""

    __tablename__ = "enrichment_run_heartbeats"

    run_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    batch_key: Mapped[str] = mapped_column(sa.String(100))
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    beat_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (sa.Index("ix_enrichment_run_heartbeats_batch", "batch_key"),)
