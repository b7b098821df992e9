"""Retirement of finished enrichment-batch partitions.

Every batch of enrichment requests is a dynamic partition of `enrichment_batches`. At 50 batches a
day that is tens of thousands of partitions within a year or two, and the UI's partition views
(asset page, backfill dialog, partition health bar) slow down with every one of them. This sensor
deletes the partition key of a batch that finished long ago. Deleting a dynamic partition keeps
everything Dagster recorded under it: the batch's runs, their logs and its materialization events
stay in the run history (filter runs by the `phronesis/enrichment_batch` tag), and the per-source
results stay in the app database.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.partitions import enrichment_batch_partitions
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.requests import utcnow
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.env import non_negative_number

BATCH_RETENTION_SENSOR = "enrichment_batch_retention_sensor"
RETENTION_DAYS_ENV = "PHRONESIS_BATCH_PARTITION_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30.0
# Enough for months of backlog in a few ticks, small enough that one tick's delete request and
# its SQL stay quick on the instance database.
MAX_RETIRED_PER_TICK = 5_000
RETENTION_INTERVAL_SECONDS = 3600


def retention_from_env(env: dict[str, str] | None = None) -> timedelta:
    """How long a finished batch keeps its partition, from
    `PHRONESIS_BATCH_PARTITION_RETENTION_DAYS` (default 30 days). A malformed or negative value
    is an error naming the variable."""
    days = non_negative_number(RETENTION_DAYS_ENV, DEFAULT_RETENTION_DAYS, unit="days", env=env)
    return timedelta(days=days)


def retirable_batches(conn: sa.Connection, keys: list[str], *, retention: timedelta) -> list[str]:
    """Of `keys`, the batches whose requests are all closed and untouched for `retention`."""
    if not keys:
        return []
    rows = conn.execute(
        sa.text(load_sql("enrichment_retirable_batches")),
        {"keys": keys, "before": utcnow() - retention},
    )
    return [r.batch_key for r in rows]


def build_batch_retention_sensor(
    retention: timedelta | None = None,
    *,
    max_per_tick: int = MAX_RETIRED_PER_TICK,
    minimum_interval_seconds: int = RETENTION_INTERVAL_SECONDS,
) -> dg.SensorDefinition:
    """The retention sensor with an explicit retention (tests); `retention_from_env()` when None."""

    @dg.sensor(
        name=BATCH_RETENTION_SENSOR,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
        """Keeps the number of enrichment-batch partitions bounded: once an hour, deletes the
        partition of every batch whose requests are all closed (done, rejected, failed) and
        unchanged for `PHRONESIS_BATCH_PARTITION_RETENTION_DAYS` (default 30). The batch's runs,
        logs and materializations stay in the run history; its results stay in the app
        database."""
        keep_for = retention if retention is not None else retention_from_env()
        keys = context.instance.get_dynamic_partitions(enrichment_batch_partitions.name)
        with app_db.connect() as conn:
            retire = retirable_batches(conn, list(keys), retention=keep_for)[:max_per_tick]
        if not retire:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(
                    f"None of the {len(keys)} batch partitions is older than {keep_for} and "
                    "finished."
                )
            )
        context.log.info(
            f"retiring {len(retire)} of {len(keys)} batch partitions (finished > {keep_for} ago)"
        )
        return dg.SensorResult(
            dynamic_partitions_requests=[enrichment_batch_partitions.build_delete_request(retire)]
        )

    return _sensor


enrichment_batch_retention_sensor = build_batch_retention_sensor()
