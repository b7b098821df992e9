"""Operations datasets of the admin dashboard: enrichment health, the enrichment error feed and
the tenant activity heatmap. Each is computed in the database with one set-based statement."""

import time
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from phronesis_dagster.assets.quotas import (
    API_CALL_LOG_KEY,
    OPS_GROUP,
    day_params,
)
from phronesis_dagster.assets.table_metadata import FLOAT, INT, ROW_COUNT, STRING, table_metadata
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.constants import ALL_SOURCES, PROVIDER
from phronesis_dagster.partitions import intraday_daily_partitions, usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase

# `prospects` is written by the enrichment pipeline and the web app; named as a dep so the UI
# shows what the datasets read.
PROSPECTS_KEY = dg.AssetKey("prospects")
USAGE_METRICS_DAILY_KEY = dg.AssetKey("usage_metrics_daily")
ENRICHMENT_SOURCE_RESULTS_KEY = dg.AssetKey("enrichment_source_results")
DEFAULT_ERROR_FEED_LIMIT = 500
PREVIEW_ROWS = 20
SOURCE_RECORDS_MARKER = "__SOURCE_RECORDS__"


def source_records_sql(sql_name: str) -> str:
    """`sql_name` with the per-source records query in place of its marker."""
    records = load_sql("ops_source_records").strip()
    return load_sql(sql_name).replace(SOURCE_RECORDS_MARKER, records)


# The per-batch results the enrichment runs write as each provider call returns.
enrichment_source_results = dg.AssetSpec(
    ENRICHMENT_SOURCE_RESULTS_KEY,
    group_name=OPS_GROUP,
    kinds={"postgres"},
    description="What each provider said about each prospect in each enrichment batch: one row "
    "per (batch, prospect, source) with status, error, latency and attempts, written by the "
    "enrichment runs as soon as each call returns (and reused by a re-run instead of calling "
    "again).",
)


def health_sources() -> dict[str, list[str]]:
    """Bind values `:sources` (the web app's source keys) and `:providers` (each one's provider
    name in `api_call_log`, same order)."""
    return {
        "sources": list(ALL_SOURCES),
        "providers": [PROVIDER[s] for s in ALL_SOURCES],
    }


@dg.asset(
    partitions_def=intraday_daily_partitions,
    deps=[enrichment_source_results, API_CALL_LOG_KEY],
    group_name=OPS_GROUP,
    kinds={"sql"},
    tags={"domain": "operations"},
)
def enrichment_health_daily(
    context: dg.AssetExecutionContext, app_db: AppDatabase
) -> dg.MaterializeResult:
    """Enrichment pipeline health per source per UTC day, for the admin dashboard.

    From the per-batch results the pipeline stores (`enrichment_source_results`, one row per
    batch, prospect and source: its latest attempt, dated by when that attempt ended), so a day
    shows what happened that day and a backfill of last month gives last month's figures
    (prospects' latest records would have moved on). For each source (apollo, contactout, exa,
    sec, claude; a source with no result that day gets a row of zeros): complete, failed,
    circuit_open, skipped and not_found counts, the failure rate (failed over calls actually
    made: complete + failed + not_found; NULL when none was made) and the median latency, from
    the results' `latency_ms`, else from `api_call_log` for the source's provider (`sec` is
    provider `edgar`). Delete-then-insert of the day.
    """
    started = time.monotonic()
    day = context.partition_time_window.start.date()
    params = day_params(day)
    with app_db.begin() as conn:
        conn.execute(sa.text(load_sql("ops_health_delete_day")), {"day": params["day"]})
        conn.execute(sa.text(load_sql("ops_health_insert")), {**params, **health_sources()})
        rows = [
            dict(r)
            for r in conn.execute(
                sa.text(load_sql("ops_health_select")), {"day": params["day"]}
            ).mappings()
        ]
    results = sum(int(r["total_count"]) for r in rows)
    context.log.info(
        f"enrichment_health_daily {day}: {results} source results, {len(rows)} sources"
    )
    metadata: dict[str, Any] = {
        ROW_COUNT: len(rows),
        "day": day.isoformat(),
        "source_results": results,
        "seconds": round(time.monotonic() - started, 3),
        "health": table_metadata(
            rows,
            [
                ("source", STRING),
                ("complete_count", INT),
                ("failed_count", INT),
                ("circuit_open_count", INT),
                ("skipped_count", INT),
                ("not_found_count", INT),
                ("failure_rate", FLOAT),
                ("median_latency_ms", FLOAT),
                ("latency_source", STRING),
            ],
        ),
    }
    for r in rows:
        if r["failure_rate"] is not None:
            metadata[f"{r['source']}_failure_rate"] = round(float(r["failure_rate"]), 4)
    return dg.MaterializeResult(metadata=metadata)


class ErrorFeedConfig(dg.Config):
    """How many errors the feed keeps."""

    limit: int = Field(
        default=DEFAULT_ERROR_FEED_LIMIT, gt=0, description="Most recent errors to keep."
    )


@dg.asset(
    deps=[PROSPECTS_KEY],
    group_name=OPS_GROUP,
    kinds={"sql"},
    tags={"domain": "operations"},
)
def enrichment_error_feed(
    context: dg.AssetExecutionContext, config: ErrorFeedConfig, app_db: AppDatabase
) -> dg.MaterializeResult:
    """The most recent enrichment errors (default 500), newest first, for the dashboard feed.

    One row per failed or circuit_open source of a prospect: prospect, tenant, source, status,
    message and when. Reads both shapes of `prospects.enrichment_source_status`: the structured
    `{status, error?, at}` and the older plain string per source (dated by the prospect's last
    enrichment; a string that is not a status is kept as the message of a failure). Rebuilt whole
    in one transaction on each materialization, so readers never see it half-written.
    """
    started = time.monotonic()
    with app_db.begin() as conn:
        conn.execute(sa.text(load_sql("ops_error_feed_delete")))
        conn.execute(
            sa.text(source_records_sql("ops_error_feed_insert")),
            {"limit": config.limit},
        )
        preview = [
            dict(r)
            for r in conn.execute(
                sa.text(load_sql("ops_error_feed_select")), {"limit": PREVIEW_ROWS}
            ).mappings()
        ]
        counts = conn.execute(
            sa.text(
                "SELECT COUNT(*) AS n, "
                "SUM(CASE WHEN record_shape = 'legacy' THEN 1 ELSE 0 END) AS legacy "
                "FROM enrichment_error_feed"
            )
        ).one()
    context.log.info(f"enrichment_error_feed: {counts.n} errors")
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: int(counts.n),
            "rows_written": int(counts.n),
            "legacy_records": int(counts.legacy or 0),
            "limit": config.limit,
            "seconds": round(time.monotonic() - started, 3),
            "preview": table_metadata(
                preview,
                [
                    ("at", STRING),
                    ("tenant_id", STRING),
                    ("prospect_id", STRING),
                    ("source", STRING),
                    ("status", STRING),
                    ("message", STRING),
                    ("record_shape", STRING),
                ],
                free_text=("message",),
            ),
        }
    )


@dg.asset(
    partitions_def=usage_daily_partitions,
    deps=[USAGE_METRICS_DAILY_KEY],
    automation_condition=dg.AutomationCondition.eager(),
    group_name=OPS_GROUP,
    kinds={"sql"},
    tags={"domain": "operations"},
)
def tenant_activity_daily(
    context: dg.AssetExecutionContext, app_db: AppDatabase
) -> dg.MaterializeResult:
    """Per-tenant activity per UTC day (the dashboard's heatmap), from `usage_metrics_daily`.

    One row per tenant with users active that day, total events and each action counter summed
    over the tenant's users. Rematerialized automatically (eager) whenever the same day of
    `usage_metrics_daily` is. Delete-then-insert of the day.
    """
    started = time.monotonic()
    day = context.partition_time_window.start.date()
    params = day_params(day)
    with app_db.begin() as conn:
        conn.execute(sa.text(load_sql("ops_tenant_activity_delete_day")), {"day": params["day"]})
        conn.execute(sa.text(load_sql("ops_tenant_activity_insert")), {"day": params["day"]})
        rows = [
            dict(r)
            for r in conn.execute(
                sa.text(load_sql("ops_tenant_activity_select")), {"day": params["day"]}
            ).mappings()
        ]
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: len(rows),
            "day": day.isoformat(),
            "rows_written": len(rows),
            "tenants": len(rows),
            "active_users": sum(int(r["active_users"]) for r in rows),
            "total_events": sum(int(r["total_events"]) for r in rows),
            "seconds": round(time.monotonic() - started, 3),
            "preview": table_metadata(
                rows[:PREVIEW_ROWS],
                [
                    ("tenant_id", STRING),
                    ("active_users", INT),
                    ("total_events", INT),
                    ("searches_executed", INT),
                    ("profiles_viewed", INT),
                ],
            ),
        }
    )
