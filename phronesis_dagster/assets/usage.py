"""Daily usage metrics: `activity_log` rolled up per UTC day, tenant and user.

The rollup runs inside the database as one set-based `INSERT ... SELECT` (one pass over the day's
events, one counter per action type), preceded by a `DELETE` of the day in the same transaction.
That makes every partition a pure function of `activity_log`: re-runs give the same rows, late
events are picked up, and users whose events were deleted disappear from the day.
"""

import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.table_metadata import INT, ROW_COUNT, STRING, table_metadata
from phronesis_dagster.db.models import COUNTER_COLUMNS, UtcDateTime
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.partitions import usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase

USAGE_GROUP = "usage"
TOP_TENANTS_IN_PREVIEW = 10
# Enough for the hash aggregate of a busy day to stay in memory instead of spilling to disk.
ROLLUP_WORK_MEM = "64MB"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_PARAM = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
_PARAM_TYPES: dict[str, sa.types.TypeEngine] = {
    "day": sa.Date(),
    "now": UtcDateTime,
    "start": UtcDateTime,
    "end": UtcDateTime,
}


def sql_statement(sql: str) -> sa.TextClause:
    """`sa.text(sql)` with its date/timestamp parameters typed (date, timestamptz)."""
    names = set(_PARAM.findall(sql))
    typed = [sa.bindparam(n, type_=t) for n, t in _PARAM_TYPES.items() if n in names]
    return sa.text(sql).bindparams(*typed)


def _counters() -> list[tuple[str, str]]:
    # Both halves are interpolated into SQL, so refuse anything that is not a plain identifier.
    for action, column in COUNTER_COLUMNS.items():
        if not (_IDENTIFIER.match(action) and _IDENTIFIER.match(column)):
            raise ValueError(f"unsafe COUNTER_COLUMNS entry {action!r}: {column!r}")
    return list(COUNTER_COLUMNS.items())


def counter_aggregates() -> str:
    """`COUNT(*) FILTER (WHERE action_type = '<action>')` per counter, in COUNTER_COLUMNS order."""
    return ", ".join(
        f"COUNT(*) FILTER (WHERE action_type = '{action}') AS {column}"
        for action, column in _counters()
    )


def day_window_params(day: date) -> dict:
    """Bind values of the rollup's half-open UTC day `[day 00:00, day+1 00:00)`."""
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    return {"start": start, "end": start + timedelta(days=1)}


def rollup_insert_sql() -> str:
    """The rollup `INSERT ... SELECT`, with the counter columns generated from COUNTER_COLUMNS."""
    columns = [column for _, column in _counters()]
    return load_sql("usage_rollup_insert").format(
        counter_columns=", ".join(columns),
        counter_aggregates=counter_aggregates(),
        counter_values=", ".join(f"c.{column}" for column in columns),
    )


@dataclass(frozen=True)
class UsageRollupStats:
    """What one day's rollup wrote."""

    day: date
    rows_written: int
    tenants: int
    users: int
    events: int
    top_tenants: list[dict]


def rollup_usage_day(conn: sa.Connection, day: date) -> UsageRollupStats:
    """Recompute `usage_metrics_daily` for one UTC `day` on `conn` (the caller's transaction)."""
    # Two runs of the same day would otherwise race into the unique key; the second waits.
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtext('usage_metrics_daily'), :d)"),
        {"d": day.toordinal()},
    )
    conn.exec_driver_sql(f"SET LOCAL work_mem = '{ROLLUP_WORK_MEM}'")
    conn.execute(sql_statement(load_sql("usage_rollup_delete")), {"day": day})
    conn.execute(
        sql_statement(rollup_insert_sql()),
        {"day": day, "now": datetime.now(UTC), **day_window_params(day)},
    )
    summary = conn.execute(sql_statement(load_sql("usage_day_summary")), {"day": day}).one()
    top = conn.execute(
        sql_statement(load_sql("usage_top_tenants")),
        {"day": day, "limit": TOP_TENANTS_IN_PREVIEW},
    ).mappings()
    return UsageRollupStats(
        day=day,
        rows_written=int(summary.rows_written),
        tenants=int(summary.tenants),
        users=int(summary.users),
        events=int(summary.events),
        top_tenants=[dict(row) for row in top],
    )


def top_tenants_table(stats: UsageRollupStats) -> dg.TableMetadataValue:
    """The day's busiest tenants (up to TOP_TENANTS_IN_PREVIEW), for the materialization's
    metadata; no rows on a day without activity."""
    return table_metadata(
        stats.top_tenants,
        [
            ("tenant_id", STRING),
            ("tenant_name", STRING),
            ("active_users", INT),
            ("events", INT),
            ("searches", INT),
            ("enrichments", INT),
        ],
    )


activity_log = dg.AssetSpec(
    "activity_log",
    group_name=USAGE_GROUP,
    kinds={"postgres"},
    description=(
        "User actions written by the Phronesis web app (login, search, profile view, enrichment, "
        "list and status changes, notes, CSV exports, personas, lookalike searches). Owned by the "
        "web app; range-partitioned by month (see `activity_log_partitions`)."
    ),
)


@dg.asset(
    partitions_def=usage_daily_partitions,
    deps=[activity_log],
    group_name=USAGE_GROUP,
    kinds={"sql", "postgres"},
    tags={"domain": "usage"},
)
def usage_metrics_daily(
    context: dg.AssetExecutionContext, app_db: AppDatabase
) -> dg.MaterializeResult:
    """Per UTC day, tenant and user: the web app's six counters plus ours (README, data contract).

    One counter per action type, `lists_created` (lists whose first-ever add happened that day,
    credited to the user who made it) and `total_events`.

    Each partition is one UTC day, recomputed from `activity_log` in one transaction (delete the
    day, then one `INSERT ... SELECT ... GROUP BY tenant_id, user_id`). Re-running a day is safe
    and picks up late events; the nightly schedule re-runs the day before for that reason. The
    web app's usage dashboard reads this table.
    """
    day = context.partition_time_window.start.astimezone(UTC).date()
    started = time.perf_counter()
    with app_db.begin() as conn:
        stats = rollup_usage_day(conn, day)
    seconds = time.perf_counter() - started
    context.log.info(
        f"usage_metrics_daily {day}: {stats.rows_written} rows, {stats.events} events, "
        f"{stats.tenants} tenants in {seconds:.2f}s"
    )
    return dg.MaterializeResult(
        metadata={
            "day": dg.MetadataValue.text(day.isoformat()),
            ROW_COUNT: dg.MetadataValue.int(stats.rows_written),
            "rows_written": dg.MetadataValue.int(stats.rows_written),
            "tenants": dg.MetadataValue.int(stats.tenants),
            "users": dg.MetadataValue.int(stats.users),
            "events_counted": dg.MetadataValue.int(stats.events),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "database": dg.MetadataValue.text(app_db.display_url()),
            "top_tenants": top_tenants_table(stats),
        }
    )
