"""The admin dashboard's platform-wide datasets: `platform_pulse_daily` (the platform pulse card)
and `funnel_daily` (the funnel card).

Both are daily-partitioned on UTC days, computed in the database by one set-based statement,
and written delete-then-insert of the day in one transaction: re-running a day gives the same
rows, and a day without any activity gets its rows of zeros rather than no rows. Each follows
the same day of `usage_metrics_daily` (eager automation, evaluated by
`dashboard_automation_sensor`).
"""

import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.assets import prospects
from phronesis_dagster.assets.quotas import API_USAGE_KEY, OPS_GROUP, api_quota_daily
from phronesis_dagster.assets.table_metadata import (
    FLOAT,
    INT,
    ROW_COUNT,
    STRING,
    table_metadata,
)
from phronesis_dagster.assets.usage import activity_log, usage_metrics_daily
from phronesis_dagster.checks.dashboard import (
    FUNNEL_STAGES,
    funnel_check_specs,
    funnel_stages_result,
    funnel_total_result,
    pulse_check_specs,
    pulse_matches_call_log,
    pulse_matches_request_log,
    pulse_matches_usage,
)
from phronesis_dagster.db.models import COUNTER_COLUMNS, UtcDateTime
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.partitions import usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase

WAU_DAYS = 7
MAU_DAYS = 30
FUNNEL_PREVIEW_TENANTS = 20

# The request log the web app inserts into (and the enrichment sensor and runs update); named so
# the UI shows where the pulse's enrichment figures come from.
enrichment_requests = dg.AssetSpec(
    "enrichment_requests",
    group_name=OPS_GROUP,
    kinds={"postgres"},
    description="The enrichment request log: one row per ask of the web app to enrich one "
    "prospect, with its status (pending, queued, running, done, rejected, failed), batch and "
    "timestamps. Inserted by the web app, moved along by the enrichment sensor and batch runs.",
)

_PARAM_TYPES: dict[str, sa.types.TypeEngine] = {
    "day": sa.Date(),
    "start": UtcDateTime,
    "end": UtcDateTime,
    "wau_start": UtcDateTime,
    "mau_start": UtcDateTime,
}


def day_window(day: date) -> dict[str, Any]:
    """Bind values of one UTC day: `:day`, `[:start, :end)`, and the starts of the trailing
    7-day (`:wau_start`) and 30-day (`:mau_start`) windows that end with it."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {
        "day": day,
        "start": start,
        "end": start + timedelta(days=1),
        "wau_start": start - timedelta(days=WAU_DAYS - 1),
        "mau_start": start - timedelta(days=MAU_DAYS - 1),
    }


def statement(name: str) -> sa.TextClause:
    """`db/sql/<name>.sql` with its date and timestamp parameters typed."""
    sql = load_sql(name)
    return sa.text(sql).bindparams(
        *(sa.bindparam(n, type_=t) for n, t in _PARAM_TYPES.items() if f":{n}" in sql)
    )


def _partition_day(context: dg.AssetExecutionContext) -> date:
    return context.partition_time_window.start.astimezone(UTC).date()


def _follows(*keys: dg.AssetKey) -> dg.AutomationCondition:
    # Eager on these parents only: the other deps are tables written outside Dagster assets
    # (never "updated" in Dagster's eyes), which would otherwise keep the condition false.
    return dg.AutomationCondition.eager().allow(dg.AssetSelection.assets(*keys))


def write_pulse_day(conn: sa.Connection, day: date) -> dict[str, Any]:
    """Replace `day` of platform_pulse_daily in `conn`'s transaction; returns the new row."""
    params = day_window(day)
    conn.execute(statement("dashboard_pulse_delete_day"), params)
    conn.execute(statement("dashboard_pulse_insert"), params)
    return dict(conn.execute(statement("dashboard_pulse_select"), params).one()._mapping)


@dg.asset(
    partitions_def=usage_daily_partitions,
    deps=[
        activity_log,
        usage_metrics_daily,
        prospects,
        enrichment_requests,
        API_USAGE_KEY,
        api_quota_daily,
    ],
    check_specs=pulse_check_specs(),
    automation_condition=_follows(usage_metrics_daily.key, api_quota_daily.key),
    group_name=OPS_GROUP,
    kinds={"sql", "postgres"},
    tags={"domain": "operations"},
)
def platform_pulse_daily(
    context: dg.AssetExecutionContext, app_db: AppDatabase
) -> dg.MaterializeResult:
    """The platform pulse of one UTC day: one row for the whole platform.

    - Activity, from `activity_log`: active tenants and DAU (distinct tenants / users with an
      event that day), WAU and MAU (distinct users over the 7 / 30 UTC days ending that day),
      total events and events per action type.
    - `new_prospects`: prospects created that day.
    - From the request log `enrichment_requests`: requested (created that day), and finished
      that day (dated by `updated_at`, the status change being a request's last write):
      completed (`done`), of which cached (done without a batch run: still fresh), failed,
      rejected; the median and 95th percentile of request-to-done seconds over the completed
      requests a batch run enriched.
    - Provider calls and spend, from the `api_usage` counters of the day: all origins, the
      pipeline's, the web app's (copied in by `api_quota_daily`), failures (errors and 429s)
      and the cost in USD.

    Delete-then-insert of the day; a day with no activity is a row of zeros. Checks reconcile
    it with `usage_metrics_daily`, the request log and the call log (see checks/dashboard.py).
    Follows the same day of `usage_metrics_daily` and of `api_quota_daily` automatically.
    """
    started = time.monotonic()
    day = _partition_day(context)
    params = day_window(day)
    with app_db.begin() as conn:
        pulse = write_pulse_day(conn, day)
    with app_db.connect() as conn:
        checks = [
            pulse_matches_usage(conn, params, pulse),
            pulse_matches_request_log(conn, params, pulse),
            pulse_matches_call_log(conn, params, pulse),
        ]
    context.log.info(
        f"platform_pulse_daily {day}: DAU {pulse['dau']}, WAU {pulse['wau']}, MAU {pulse['mau']}, "
        f"{pulse['total_events']} events, {pulse['enrichments_completed']} enrichments done, "
        f"{pulse['provider_calls']} provider calls"
    )
    return dg.MaterializeResult(metadata=pulse_metadata(pulse, started), check_results=checks)


_PULSE_FIGURES: tuple[str, ...] = (
    "active_tenants",
    "dau",
    "wau",
    "mau",
    "total_events",
    "new_prospects",
    "enrichments_requested",
    "enrichments_completed",
    "enrichments_cached",
    "enrichments_failed",
    "enrichments_rejected",
    "request_to_done_p50_s",
    "request_to_done_p95_s",
    "provider_calls",
    "pipeline_provider_calls",
    "web_app_provider_calls",
    "provider_failures",
    "provider_spend_usd",
)


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    return value if isinstance(value, int) else round(float(value), 6)


def pulse_metadata(pulse: Mapping[str, Any], started: float) -> dict[str, Any]:
    """The materialization metadata of one pulse row: its figures as numbers the UI can plot,
    and as tables (the figures, the events per action type)."""
    metadata: dict[str, Any] = {
        ROW_COUNT: 1,
        "day": pulse["date"].isoformat(),
        "seconds": round(time.monotonic() - started, 3),
    }
    for figure in ("dau", "wau", "mau", "total_events", "enrichments_completed"):
        metadata[figure] = int(pulse[figure])
    metadata["provider_spend_usd"] = float(pulse["provider_spend_usd"])
    metadata["pulse"] = table_metadata(
        [{"figure": f, "value": _number(pulse[f])} for f in _PULSE_FIGURES],
        [("figure", STRING), ("value", FLOAT)],
    )
    metadata["events_by_action"] = table_metadata(
        [
            {"action_type": action, "column": column, "events": int(pulse[column])}
            for action, column in COUNTER_COLUMNS.items()
        ],
        [("action_type", STRING), ("column", STRING), ("events", INT)],
    )
    return metadata


def write_funnel_day(conn: sa.Connection, day: date) -> list[dict[str, Any]]:
    """Replace `day` of funnel_daily in `conn`'s transaction; returns the day's rows, the
    platform row first."""
    params = day_window(day)
    conn.execute(statement("dashboard_funnel_delete_day"), params)
    conn.execute(statement("dashboard_funnel_insert"), params)
    return [dict(r._mapping) for r in conn.execute(statement("dashboard_funnel_select"), params)]


_FUNNEL_RATES: tuple[str, ...] = (
    "search_to_view",
    "view_to_enrich",
    "enrich_to_list",
    "list_to_export",
)


@dg.asset(
    partitions_def=usage_daily_partitions,
    deps=[usage_metrics_daily, activity_log],
    check_specs=funnel_check_specs(),
    automation_condition=_follows(usage_metrics_daily.key),
    group_name=OPS_GROUP,
    kinds={"sql", "postgres"},
    tags={"domain": "operations"},
)
def funnel_daily(context: dg.AssetExecutionContext, app_db: AppDatabase) -> dg.MaterializeResult:
    """The product funnel of one UTC day, per tenant and for the platform.

    Stages, in order: search (`search_executed`) -> profile view (`profile_viewed`) ->
    enrichment (`profile_enriched`) -> added to a list (`add_to_list`) -> CSV export
    (`csv_exported`).

    Stage rule: a user is counted at stage 1 when they ran at least one search that UTC day, and
    at stage n > 1 when they did at least one action of stage n that same UTC day AND are counted
    at stage n - 1. A user counts once per stage however many actions they did, and the order of
    the actions within the day does not matter. So every stage is at most the one before it
    (checked). Conversions are stage n over stage n - 1 (`search_to_view`, `view_to_enrich`,
    `enrich_to_list`, `list_to_export`), NULL when stage n - 1 has nobody.

    Rows: one per tenant that existed by the end of the day (zeros when its users did nothing),
    plus the platform row with `tenant_id` NULL, the sum of the tenant rows (checked). Read from
    the day's `usage_metrics_daily` (one row per user, its counters are the action counts of the
    day's `activity_log`), so the funnel agrees with the team-usage dashboard. RLS: a tenant sees
    its own rows; the platform row is for the super-admin's role only.
    Delete-then-insert of the day. Follows the same day of `usage_metrics_daily` automatically.
    """
    started = time.monotonic()
    day = _partition_day(context)
    params = day_window(day)
    with app_db.begin() as conn:
        rows = write_funnel_day(conn, day)
    with app_db.connect() as conn:
        checks = [funnel_stages_result(conn, params), funnel_total_result(conn, params)]
    platform = next(r for r in rows if r["tenant_id"] is None)
    context.log.info(
        f"funnel_daily {day}: {len(rows) - 1} tenants; platform "
        + " -> ".join(str(platform[s]) for s in FUNNEL_STAGES)
    )
    metadata: dict[str, Any] = {
        ROW_COUNT: len(rows),
        "day": day.isoformat(),
        "tenants": len(rows) - 1,
        "seconds": round(time.monotonic() - started, 3),
    }
    for stage in FUNNEL_STAGES:
        metadata[stage] = int(platform[stage])
    for rate in _FUNNEL_RATES:
        if platform[rate] is not None:
            metadata[rate] = round(float(platform[rate]), 4)
    preview = [
        {**r, "tenant": "(platform)" if r["tenant_id"] is None else r["tenant_name"]}
        for r in rows[: FUNNEL_PREVIEW_TENANTS + 1]
    ]
    metadata["funnel"] = table_metadata(
        preview,
        [
            ("tenant", STRING),
            ("tenant_id", STRING),
            *((s, INT) for s in FUNNEL_STAGES),
            *((r, FLOAT) for r in _FUNNEL_RATES),
        ],
    )
    return dg.MaterializeResult(metadata=metadata, check_results=checks)


DASHBOARD_ASSETS = [enrichment_requests, platform_pulse_daily, funnel_daily]
