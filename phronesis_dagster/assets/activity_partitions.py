"""Monthly partitions of the web app's `activity_log`, created ahead by the pipeline.

`activity_log` is `PARTITION BY RANGE (created_at)` (schema.sql); migration 0002 gives it a
DEFAULT partition, so an insert for a month without a partition is never lost: it lands in
`activity_log_default`. New partitions follow the web app's naming (`activity_log_2026_02`) and
indexes (BRIN on created_at, (tenant_id, action_type, created_at DESC), (user_id, created_at
DESC), GIN on metadata). A month is "partitioned" when any attached partition covers it, whatever
its name, so partitions the web app made itself are left alone. This asset keeps the
current month and the next `months_ahead` months ready, and gives every month that has rows
parked in the DEFAULT partition (up to that horizon) its own partition, moving those rows into
it. It is idempotent: existing partitions are left alone.
"""

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from phronesis_dagster.assets.table_metadata import BOOL, STRING, table_metadata
from phronesis_dagster.assets.usage import USAGE_GROUP, activity_log
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.resources.app_db import AppDatabase

DEFAULT_MONTHS_AHEAD = 3
DEFAULT_PARTITION = "activity_log_default"


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    """`activity_log_2025_03` for March 2025 (the web app's naming)."""
    return f"activity_log_{month.year:04d}_{month.month:02d}"


@dataclass(frozen=True)
class PartitionMaintenance:
    """What one maintenance pass did."""

    created: list[str] = field(default_factory=list)
    rescued_rows: int = 0
    left_in_default: int = 0
    partitions: list[str] = field(default_factory=list)


def _statements(sql: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def ensure_activity_log_partitions(
    conn: sa.Connection, *, today: date, months_ahead: int = DEFAULT_MONTHS_AHEAD
) -> PartitionMaintenance:
    """Create the monthly partitions of `activity_log` from `today`'s month to `months_ahead`
    months later, plus any earlier month with rows in the DEFAULT partition, moving those rows.

    Runs in the caller's transaction (all or nothing).
    """
    if months_ahead < 0:
        raise ValueError(f"months_ahead must be >= 0, got {months_ahead}")
    # One maintainer at a time; a second run waits, then finds the partitions already there.
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('activity_log_partitions'))"))
    attached = conn.execute(sa.text(load_sql("activity_log_partitions_list"))).all()
    existing = {row.name for row in attached}
    covered = {row.month for row in attached if row.month is not None}
    first = month_start(today)
    horizon = add_months(first, months_ahead)
    wanted = {add_months(first, i) for i in range(months_ahead + 1)}
    parked = conn.execute(sa.text(load_sql("activity_log_default_months"))).all()
    # Rows beyond the horizon stay parked (likely a bad clock) and the check warns about them.
    wanted |= {row.month for row in parked if row.month <= horizon}

    created: list[str] = []
    rescued = 0
    for month in sorted(wanted):
        name = partition_name(month)
        if month in covered or name in existing:
            continue
        bounds = {
            "name": name,
            "start": f"{month.isoformat()} 00:00:00+00",
            "end": f"{add_months(month, 1).isoformat()} 00:00:00+00",
        }
        for statement in _statements(load_sql("activity_log_create_partition").format(**bounds)):
            result = conn.exec_driver_sql(statement)
            if statement.startswith("WITH moved"):
                rescued += max(result.rowcount, 0)
        for statement in _statements(load_sql("activity_log_partition_rls").format(name=name)):
            conn.exec_driver_sql(statement)
        created.append(name)
    left = conn.execute(sa.text(load_sql("activity_log_default_count"))).scalar_one()
    return PartitionMaintenance(
        created=created,
        rescued_rows=rescued,
        left_in_default=int(left),
        partitions=sorted(existing | set(created)),
    )


class ActivityLogPartitionsConfig(dg.Config):
    months_ahead: int = Field(
        default=DEFAULT_MONTHS_AHEAD,
        ge=0,
        le=36,
        description="How many months after the current UTC month get a partition ahead of time.",
    )


@dg.asset(
    deps=[activity_log],
    group_name=USAGE_GROUP,
    kinds={"postgres"},
    tags={"domain": "usage"},
)
def activity_log_partitions(
    context: dg.AssetExecutionContext,
    config: ActivityLogPartitionsConfig,
    app_db: AppDatabase,
) -> dg.MaterializeResult:
    """Monthly partitions of `activity_log`, created ahead of time.

    Keeps the current UTC month and the next `months_ahead` months partitioned, and moves rows
    that landed in `activity_log_default` into their month's new partition in the same
    transaction. Safe to re-run; partitions the web app created (any name) are left alone.
    """
    started = time.perf_counter()
    today = datetime.now(UTC).date()
    with app_db.begin() as conn:
        result = ensure_activity_log_partitions(conn, today=today, months_ahead=config.months_ahead)
    seconds = time.perf_counter() - started
    context.log.info(
        f"created {len(result.created)} partitions, moved {result.rescued_rows} rows out of "
        f"{DEFAULT_PARTITION}, {result.left_in_default} rows left there"
    )
    # No dagster/row_count: this asset is partition tables, not rows; the rows it moves stay
    # rows of `activity_log` (the web app's asset) and are counted in rows_moved_from_default.
    return dg.MaterializeResult(
        metadata={
            "partitions_created": dg.MetadataValue.int(len(result.created)),
            "created": dg.MetadataValue.text(", ".join(result.created) or "none"),
            "rows_moved_from_default": dg.MetadataValue.int(result.rescued_rows),
            "rows_left_in_default": dg.MetadataValue.int(result.left_in_default),
            "months_ahead": dg.MetadataValue.int(config.months_ahead),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "partitions": table_metadata(
                [{"partition": n, "created_now": n in result.created} for n in result.partitions],
                [("partition", STRING), ("created_now", BOOL)],
                {"created_now": "made by this materialization (else already attached)"},
            ),
        }
    )
