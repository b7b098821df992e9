"""SQLAlchemy 2 models of the app database (PostgreSQL only).

Two owners share this database. The web app's migrations own `tenants`, `users`, `prospects`,
`activity_log` and `usage_metrics_daily` (../shared/webapp/schema.sql, copied to
`db/sql/webapp_schema.sql`): their models below mirror that schema column for column (UUID ids,
TEXT) plus the columns migration 0002 adds to `prospects` and `usage_metrics_daily`. Every other
table is ours. The models are how the code names columns; the migrations create the tables
(`schema.sql` verbatim for the web app's, then 0002 for ours), never `metadata.create_all`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

BigId = sa.BigInteger()
# The web app's ids: UUID columns, read back as `uuid.UUID`.
UuidId = sa.Uuid(as_uuid=True)
JSONDoc = postgresql.JSONB()
IPAddress = postgresql.INET()
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

# usage_metrics_daily counter column for each action type. The first five are the web app's
# columns; the others are ours (0002). The web app's sixth counter, `lists_created`, has no action
# type of its own: see LISTS_CREATED_COLUMN and the README's data contract.
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

LISTS_CREATED_COLUMN = "lists_created"

ENRICHMENT_STATUSES: tuple[str, ...] = ("pending", "in_progress", "complete", "failed")
REQUEST_STATUSES: tuple[str, ...] = ("pending", "queued", "running", "done", "rejected", "failed")
JOB_STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")
# enrichment_jobs.phase (0004): where the job's work is, for the admin UI's progress bar.
JOB_PHASES: tuple[str, ...] = ("queued", "enriching", "summarizing", "done")
# Provider names (api_usage, api_call_log, ...) and the keys of
# prospects.enrichment_source_status are the provider registry's (resources/registry.py:
# `PROVIDER`, `SOURCE`; EDGAR's source key is `sec`, its provider name `edgar`). No column of
# this layer constrains them, so db/ keeps no copy of the list.

# The web app's tables (schema.sql); everything else in this metadata is ours.
WEBAPP_TABLES: tuple[str, ...] = (
    "tenants",
    "users",
    "prospects",
    "activity_log",
    "usage_metrics_daily",
)
# The web app's tables that carry its own row-level-security policy (schema.sql).
WEBAPP_RLS_TABLES: tuple[str, ...] = ("prospects", "activity_log", "usage_metrics_daily")
# Our tables that carry a tenant_id and get a policy on the same setting (migration 0002).
OUR_TENANT_TABLES: tuple[str, ...] = (
    "enrichment_requests",
    "enrichment_jobs",
    "enrichment_source_results",
    "enrichment_error_feed",
    "tenant_activity_daily",
)
TENANT_TABLES: tuple[str, ...] = (*WEBAPP_RLS_TABLES, *OUR_TENANT_TABLES)


def _in_check(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


def _now() -> sa.TextClause:
    return sa.text("now()")


def _uuid() -> sa.TextClause:
    return sa.text("gen_random_uuid()")


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    """The web app's table (schema.sql)."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    name: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


class User(Base):
    """The web app's table (schema.sql)."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    email: Mapped[str] = mapped_column(sa.Text)
    full_name: Mapped[str | None] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.Text, server_default="member")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


class Prospect(Base):
    """The web app's table (schema.sql) plus our additive columns (migration 0002):
    `person_data`, `ai_summary_structured`, `is_public_company`, `company_ticker`, `company_cik`.
    """

    __tablename__ = "prospects"

    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    company: Mapped[str | None] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    phone: Mapped[str | None] = mapped_column(sa.Text)
    linkedin_url: Mapped[str | None] = mapped_column(sa.Text)
    location: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    # The web app's enrichment columns (schema.sql, phase 3).
    enrichment_status: Mapped[str | None] = mapped_column(sa.Text, server_default="pending")
    last_enriched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    contact_data: Mapped[dict | None] = mapped_column(JSONDoc)
    web_data: Mapped[dict | None] = mapped_column(JSONDoc)
    insider_data: Mapped[dict | None] = mapped_column(JSONDoc)
    # The summary text the web app shows.
    ai_summary: Mapped[str | None] = mapped_column(sa.Text)
    # {source: {"status": ..., "error"?: ..., "at": iso8601}}, source a registry SOURCE; rows from
    # before the structured shape hold plain strings, read as {"status": value}.
    enrichment_source_status: Mapped[dict | None] = mapped_column(
        JSONDoc, server_default=sa.text("'{}'::jsonb")
    )
    # Ours (0002).
    person_data: Mapped[dict | None] = mapped_column(JSONDoc)
    ai_summary_structured: Mapped[dict | None] = mapped_column(JSONDoc)
    is_public_company: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    company_ticker: Mapped[str | None] = mapped_column(sa.Text)
    company_cik: Mapped[str | None] = mapped_column(sa.Text)

    __table_args__ = (
        _in_check("enrichment_status", ENRICHMENT_STATUSES, "ck_prospects_enrichment_status"),
    )


class ActivityLog(Base):
    """The web app's table (schema.sql): user actions, range-partitioned by month on
    `created_at`, so the primary key is (id, created_at)."""

    __tablename__ = "activity_log"

    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    action_type: Mapped[str] = mapped_column(sa.Text)
    target_type: Mapped[str | None] = mapped_column(sa.Text)
    target_id: Mapped[uuid.UUID | None] = mapped_column(UuidId)
    metadata_: Mapped[dict | None] = mapped_column(
        "metadata", JSONDoc, server_default=sa.text("'{}'::jsonb")
    )
    ip_address: Mapped[str | None] = mapped_column(IPAddress)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        UtcDateTime, primary_key=True, server_default=_now()
    )

    __table_args__ = (_in_check("action_type", ACTION_TYPES, "ck_activity_log_action_type"),)


class UsageMetricsDaily(Base):
    """The web app's table (schema.sql): its six counters keep their meaning; the counters after
    `lists_created` are ours (0002). See the README's data contract."""

    __tablename__ = "usage_metrics_daily"

    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    date: Mapped[date] = mapped_column(sa.Date)
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    total_logins: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    searches_executed: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    profiles_viewed: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    profiles_enriched: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    csv_exports: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    lists_created: Mapped[int | None] = mapped_column(sa.Integer, server_default="0")
    created_at: Mapped[datetime | None] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, server_default=_now())
    # Ours (0002).
    adds_to_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    removes_from_list: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    statuses_updated: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    notes_added: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    personas_created: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    lookalike_searches: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_events: Mapped[int] = mapped_column(sa.Integer, server_default="0")

    __table_args__ = (sa.UniqueConstraint("date", "tenant_id", "user_id"),)


class EnrichmentJob(Base):
    """A bulk enrichment request (a list of prospects); the web app polls it for progress."""

    __tablename__ = "enrichment_jobs"

    # A UUID: the web app polls it, and its ids are UUIDs.
    id: Mapped[uuid.UUID] = mapped_column(UuidId, primary_key=True, server_default=_uuid())
    tenant_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UuidId)
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
    # Live progress (0004), rewritten while batches run (enrichment/progress.py): `queued` (no
    # batch of the job running), `enriching` (a running prospect still waits for a data
    # source), `summarizing` (only summaries outstanding), `done` (no request open).
    phase: Mapped[str] = mapped_column(sa.Text, server_default="queued")
    # Seconds left at the job's pace so far (prospects done by runs / time since started_at);
    # NULL until the first prospect is done, 0 when the job is.
    eta_seconds: Mapped[int | None] = mapped_column(sa.Integer)
    # The newest finds, oldest first, at most 20: [{"prospect_id", "source", "text", "at"}];
    # text like "3 insider trades found for Avery Stone", never contact data.
    highlights: Mapped[list] = mapped_column(JSONDoc, server_default=sa.text("'[]'::jsonb"))
    progress_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        _in_check("status", JOB_STATUSES, "ck_enrichment_jobs_status"),
        _in_check("phase", JOB_PHASES, "ck_enrichment_jobs_phase"),
    )


class EnrichmentRequest(Base):
    """One ask from the web app to enrich one prospect. No FK on prospect_id on purpose: the
    sensor must be able to see and reject a request for a prospect that does not exist."""

    __tablename__ = "enrichment_requests"

    id: Mapped[int] = mapped_column(
        BigId, sa.Identity(always=False), primary_key=True, autoincrement=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(UuidId)
    prospect_id: Mapped[uuid.UUID] = mapped_column(UuidId)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(UuidId)
    force: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    status: Mapped[str] = mapped_column(sa.String(20), server_default="pending")
    reason: Mapped[str | None] = mapped_column(sa.Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("enrichment_jobs.id"))
    batch_key: Mapped[str | None] = mapped_column(sa.String(100))
    run_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        _in_check("status", REQUEST_STATUSES, "ck_enrichment_requests_status"),
        sa.Index("ix_enrichment_requests_status_id", "status", "id"),
        sa.Index("ix_enrichment_requests_batch_key", "batch_key"),
        sa.Index("ix_enrichment_requests_prospect", "prospect_id"),
        sa.Index("ix_enrichment_requests_job_id", "job_id"),
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
    # Set by `CircuitBreaker.hold_open`: the provider told us when it takes calls again (a spent
    # quota window, an IP block), so the breaker stays open until then, not `reset_timeout`.
    open_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
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
    prospect_id: Mapped[uuid.UUID] = mapped_column(UuidId)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UuidId)
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
    tenant_id: Mapped[uuid.UUID] = mapped_column(UuidId)
    active_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_events: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_logins: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    searches_executed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_viewed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    profiles_enriched: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    csv_exports: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    lists_created: Mapped[int] = mapped_column(sa.Integer, server_default="0")
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


SOURCE_STATUSES: tuple[str, ...] = ("complete", "not_found", "failed", "circuit_open", "skipped")


class EnrichmentSourceResult(Base):
    """What one provider said about one prospect in one enrichment batch.

    The idempotency record of enrichment: a re-run of the batch reuses a row whose status is
    final (complete / not_found / skipped) instead of calling, and paying, the provider again.
    One row per (batch_key, prospect_id, source), written as soon as the call returns."""

    __tablename__ = "enrichment_source_results"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    batch_key: Mapped[str] = mapped_column(sa.String(100))
    prospect_id: Mapped[uuid.UUID] = mapped_column(UuidId)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UuidId)
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


# --- SEC EDGAR caches (migration 0003_sec_document_cache) ---


class SecDocumentCache(Base):
    """A document filed with the SEC (a Form 3/4/5 XML), kept for good: filings never change
    once filed, so later runs read it here instead of asking SEC again. Keyed by accession number
    and file name; public data shared by every tenant."""

    __tablename__ = "sec_document_cache"

    accession_number: Mapped[str] = mapped_column(sa.String(25), primary_key=True)
    document: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    content: Mapped[str] = mapped_column(sa.Text)
    content_type: Mapped[str | None] = mapped_column(sa.String(100))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


class SecReportingOwner(Base):
    """An insider of an issuer as SEC names them in `reportingOwner` ('Last First M.'), with
    their own CIK: how a prospect is matched to their filings without scanning the issuer's."""

    __tablename__ = "sec_reporting_owners"

    issuer_cik: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    owner_cik: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    owner_name: Mapped[str] = mapped_column(sa.String(200))
    last_filing_date: Mapped[date | None] = mapped_column(sa.Date)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


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


# --- dashboard datasets (migration 0003_dashboards) ---
# Derived tables of the dashboard that carry a tenant_id and get the tenant policy (0003).
DASHBOARD_TENANT_TABLES: tuple[str, ...] = ("funnel_daily",)


class PlatformPulseDaily(Base):
    """One row per UTC day for the whole platform, written by `platform_pulse_daily`."""

    __tablename__ = "platform_pulse_daily"

    date: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    active_tenants: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    dau: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    wau: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    mau: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    total_events: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    total_logins: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    searches_executed: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    profiles_viewed: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    profiles_enriched: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    csv_exports: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    adds_to_list: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    removes_from_list: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    statuses_updated: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    notes_added: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    personas_created: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    lookalike_searches: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    new_prospects: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    enrichments_requested: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    enrichments_completed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    # done without a batch run: answered from an enrichment still inside the staleness window.
    enrichments_cached: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    enrichments_failed: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    enrichments_rejected: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    request_to_done_p50_s: Mapped[float | None] = mapped_column(sa.Float)
    request_to_done_p95_s: Mapped[float | None] = mapped_column(sa.Float)
    provider_calls: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    pipeline_provider_calls: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    web_app_provider_calls: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    provider_failures: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    provider_spend_usd: Mapped[float] = mapped_column(sa.Numeric(14, 6), server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())


class FunnelDaily(Base):
    """Users per funnel stage per tenant per UTC day, written by `funnel_daily`; the row with
    `tenant_id` NULL is the platform total of the day."""

    __tablename__ = "funnel_daily"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    date: Mapped[date] = mapped_column(sa.Date)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UuidId)
    searched_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    viewed_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    enriched_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    listed_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    exported_users: Mapped[int] = mapped_column(sa.Integer, server_default="0")
    # users of a stage over users of the stage before; NULL when the stage before had none.
    search_to_view: Mapped[float | None] = mapped_column(sa.Float)
    view_to_enrich: Mapped[float | None] = mapped_column(sa.Float)
    enrich_to_list: Mapped[float | None] = mapped_column(sa.Float)
    list_to_export: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, server_default=_now())

    __table_args__ = (
        sa.UniqueConstraint(
            "date", "tenant_id", name="uq_funnel_daily_key", postgresql_nulls_not_distinct=True
        ),
        sa.Index("ix_funnel_daily_tenant_date", "tenant_id", sa.text("date DESC")),
    )
