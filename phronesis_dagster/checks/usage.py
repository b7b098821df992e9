"""Asset checks of the usage domain.

`usage_metrics_daily` is checked per UTC day (the checks share its daily partitions): the
(date, tenant, user) key is unique, and the day's counters add up to the day's events in
`activity_log`. Both block downstream assets when they fail. `activity_log_partitions` gets a
warning when rows sit in the DEFAULT partition (a month had no partition when they arrived).
"""

from datetime import UTC, date

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import DEFAULT_PARTITION, activity_log_partitions
from phronesis_dagster.assets.table_metadata import INT, STRING, table_metadata
from phronesis_dagster.assets.usage import (
    _counters,
    day_window_params,
    sql_statement,
    usage_metrics_daily,
)
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.partitions import usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase

USAGE_UNIQUE_KEY_CHECK = "usage_metrics_daily_unique_key"
USAGE_RECONCILES_CHECK = "usage_metrics_daily_matches_activity_log"
DEFAULT_PARTITION_EMPTY_CHECK = "activity_log_default_partition_empty"


def unique_key_result(app_db: AppDatabase, day: date) -> dg.AssetCheckResult:
    """Passes when no (date, tenant_id, user_id) appears twice on `day`."""
    with app_db.connect() as conn:
        dups = conn.execute(
            sql_statement(load_sql("usage_check_duplicate_keys")), {"day": day}
        ).all()
    return dg.AssetCheckResult(
        check_name=USAGE_UNIQUE_KEY_CHECK,
        passed=not dups,
        metadata={
            "day": day.isoformat(),
            "duplicate_keys": len(dups),
            "duplicates": table_metadata(
                [r._mapping for r in dups],
                [("tenant_id", STRING), ("user_id", STRING), ("copies", INT)],
                {"copies": "rows with this key on the day (the first 20 keys)"},
            ),
        },
    )


def reconcile_result(app_db: AppDatabase, day: date) -> dg.AssetCheckResult:
    """Passes when, for `day`, every counter's total equals the number of events of its action
    type in `activity_log`, `total_events` equals all the day's events, and each row's counters
    add up to its `total_events`."""
    counters = _counters()
    with app_db.connect() as conn:
        source_sql = load_sql("usage_check_source_counts").format(
            source_counts=", ".join(
                f"COUNT(*) FILTER (WHERE action_type = '{a}') AS {c}" for a, c in counters
            ),
        )
        usage_sql = load_sql("usage_check_usage_sums").format(
            usage_sums=", ".join(f"COALESCE(SUM({c}), 0) AS {c}" for _, c in counters),
            row_sum=" + ".join(c for _, c in counters),
        )
        source = conn.execute(sql_statement(source_sql), day_window_params(day)).one()._mapping
        usage = conn.execute(sql_statement(usage_sql), {"day": day}).one()._mapping
    mismatches = {
        column: (int(source[column]), int(usage[column]))
        for column in [c for _, c in counters] + ["total"]
        if int(source[column]) != int(usage[column])
    }
    bad_rows = int(usage["rows_not_adding_up"])
    return dg.AssetCheckResult(
        check_name=USAGE_RECONCILES_CHECK,
        passed=not mismatches and bad_rows == 0,
        metadata={
            "day": day.isoformat(),
            "events_in_activity_log": int(source["total"]),
            "events_in_usage": int(usage["total"]),
            "rows_not_adding_up": bad_rows,
            "mismatches": table_metadata(
                [
                    {"counter": c, "activity_log": s, "usage_metrics_daily": u}
                    for c, (s, u) in mismatches.items()
                ],
                [("counter", STRING), ("activity_log", INT), ("usage_metrics_daily", INT)],
                {"activity_log": "the day's events of the counter's action type"},
            ),
        },
    )


def default_partition_result(app_db: AppDatabase) -> dg.AssetCheckResult:
    """Passes when `activity_log_default` is empty."""
    with app_db.connect() as conn:
        months = conn.execute(sa.text(load_sql("activity_log_default_months"))).all()
    rows = sum(int(m.n) for m in months)
    return dg.AssetCheckResult(
        check_name=DEFAULT_PARTITION_EMPTY_CHECK,
        passed=rows == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if rows == 0
        else f"{rows} rows in {DEFAULT_PARTITION}: materialize activity_log_partitions",
        metadata={
            "rows_in_default": rows,
            "months": table_metadata(
                [{"month": f"{m.month:%Y-%m}", "rows": int(m.n)} for m in months],
                [("month", STRING), ("rows", INT)],
            ),
        },
    )


def _day(context: dg.AssetCheckExecutionContext) -> date:
    return context.partition_time_window.start.astimezone(UTC).date()


@dg.asset_check(
    asset=usage_metrics_daily,
    name=USAGE_UNIQUE_KEY_CHECK,
    partitions_def=usage_daily_partitions,
    blocking=True,
)
def usage_metrics_daily_unique_key(
    context: dg.AssetCheckExecutionContext, app_db: AppDatabase
) -> dg.AssetCheckResult:
    """Each (date, tenant_id, user_id) has exactly one row on the checked day."""
    return unique_key_result(app_db, _day(context))


@dg.asset_check(
    asset=usage_metrics_daily,
    name=USAGE_RECONCILES_CHECK,
    partitions_def=usage_daily_partitions,
    blocking=True,
)
def usage_metrics_daily_matches_activity_log(
    context: dg.AssetCheckExecutionContext, app_db: AppDatabase
) -> dg.AssetCheckResult:
    """The day's counters add up to the day's events in `activity_log`, per action type and in
    total, and every row's counters add up to its `total_events`."""
    return reconcile_result(app_db, _day(context))


@dg.asset_check(asset=activity_log_partitions, name=DEFAULT_PARTITION_EMPTY_CHECK)
def activity_log_default_partition_empty(app_db: AppDatabase) -> dg.AssetCheckResult:
    """Warns when rows sit in `activity_log_default`: their month had no partition when they
    were written. Nothing is lost; materializing `activity_log_partitions` moves them."""
    return default_partition_result(app_db)


USAGE_CHECKS = [
    usage_metrics_daily_unique_key,
    usage_metrics_daily_matches_activity_log,
    activity_log_default_partition_empty,
]
