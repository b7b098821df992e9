"""Operations datasets of the admin dashboard: enrichment health, the enrichment error feed and
the tenant activity heatmap. Each is computed in the database with one set-based statement."""

import time
from collections.abc import Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from phronesis_dagster.assets.quotas import (
    API_CALL_LOG_KEY,
    OPS_GROUP,
    day_params,
)
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.partitions import intraday_daily_partitions, usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase

# `prospects` is written by the enrichment pipeline and the web app; named as a dep so the UI
# shows what the datasets read.
PROSPECTS_KEY = dg.AssetKey("prospects")
USAGE_METRICS_DAILY_KEY = dg.AssetKey("usage_metrics_daily")
DEFAULT_ERROR_FEED_LIMIT = 500
PREVIEW_ROWS = 20
SOURCE_RECORDS_MARKER = "__SOURCE_RECORDS__"


def source_records_sql(sql_name: str) -> str:
    """`sql_name` with the per-source records query in place of its marker."""
    records = load_sql("ops_source_records").strip()
    return load_sql(sql_name).replace(SOURCE_RECORDS_MARKER, records)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A small markdown table for the UI; `—` for NULLs."""
    if not rows:
        return "_no rows_"

    def cell(value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value).replace("|", "\\|").replace("\n", " ")[:120]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


@dg.asset(
    partitions_def=intraday_daily_partitions,
    deps=[PROSPECTS_KEY, API_CALL_LOG_KEY],
    group_name=OPS_GROUP,
    kinds={"sql"},
    tags={"domain": "operations"},
)
def enrichment_health_daily(
    context: dg.AssetExecutionContext, app_db: AppDatabase
) -> dg.MaterializeResult:
    """Enrichment pipeline health per source per UTC day, for the admin dashboard.

    From each prospect's per-source records (`prospects.enrichment_source_status`, dated by the
    record's `at`; older plain-string records by the prospect's last enrichment): complete,
    failed, circuit_open, skipped and not_found counts, the failure rate (failed over calls
    actually made: complete + failed + not_found) and the median latency, from the records'
    `latency_ms` when present, else from `api_call_log` for the provider of the same name.
    Delete-then-insert of the day.
    """
    started = time.monotonic()
    day = context.partition_time_window.start.date()
    params = day_params(day)
    with app_db.begin() as conn:
        conn.execute(sa.text(load_sql("ops_health_delete_day")), {"day": params["day"]})
        conn.execute(
            sa.text(source_records_sql("ops_health_insert")),
            params,
        )
        rows = [
            dict(r)
            for r in conn.execute(
                sa.text(load_sql("ops_health_select")), {"day": params["day"]}
            ).mappings()
        ]
    metadata: dict[str, dg.RawMetadataValue] = {
        "day": day.isoformat(),
        "rows_written": len(rows),
        "records": sum(
            r["complete_count"]
            + r["failed_count"]
            + r["circuit_open_count"]
            + r["skipped_count"]
            + r["not_found_count"]
            for r in rows
        ),
        "seconds": round(time.monotonic() - started, 3),
        "preview": dg.MetadataValue.md(
            markdown_table(
                rows,
                [
                    "source",
                    "complete_count",
                    "failed_count",
                    "circuit_open_count",
                    "skipped_count",
                    "failure_rate",
                    "median_latency_ms",
                ],
            )
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
            "rows_written": int(counts.n),
            "legacy_records": int(counts.legacy or 0),
            "limit": config.limit,
            "seconds": round(time.monotonic() - started, 3),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    preview, ["at", "tenant_id", "prospect_id", "source", "status", "message"]
                )
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
            "day": day.isoformat(),
            "rows_written": len(rows),
            "tenants": len(rows),
            "active_users": sum(int(r["active_users"]) for r in rows),
            "total_events": sum(int(r["total_events"]) for r in rows),
            "seconds": round(time.monotonic() - started, 3),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    rows[:PREVIEW_ROWS],
                    [
                        "tenant_id",
                        "active_users",
                        "total_events",
                        "searches_executed",
                        "profiles_viewed",
                    ],
                )
            ),
        }
    )
