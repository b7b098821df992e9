"""Schedules of the quota and operations datasets (their jobs are in jobs.py).

- `api_quota_daily`: nightly for yesterday (final figures) and hourly for today (live burn).
- `enrichment_health_daily`: nightly for yesterday.
- `enrichment_error_feed`: hourly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg

from phronesis_dagster.jobs import (
    api_quota_daily_job,
    enrichment_error_feed_job,
    enrichment_health_daily_job,
)
from phronesis_dagster.partitions import usage_start_date

QUOTA_NIGHTLY_CRON = "20 0 * * *"
QUOTA_HOURLY_CRON = "5 * * * *"
HEALTH_NIGHTLY_CRON = "30 0 * * *"
ERROR_FEED_HOURLY_CRON = "10 * * * *"


def _tick_day(context: dg.ScheduleEvaluationContext) -> date:
    tick = context.scheduled_execution_time or datetime.now(UTC)
    return tick.astimezone(UTC).date()


def _day_request(day: date, kind: str) -> dg.RunRequest | dg.SkipReason:
    if day < usage_start_date():
        return dg.SkipReason(f"{day} is before the first partition {usage_start_date()}")
    return dg.RunRequest(
        run_key=None, partition_key=day.isoformat(), tags={"phronesis/refresh": kind}
    )


@dg.schedule(
    cron_schedule=QUOTA_NIGHTLY_CRON,
    job=api_quota_daily_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def api_quota_nightly_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Nightly: the final `api_quota_daily` figures of yesterday (UTC)."""
    return _day_request(_tick_day(context) - timedelta(days=1), "nightly")


@dg.schedule(
    cron_schedule=QUOTA_HOURLY_CRON,
    job=api_quota_daily_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def api_quota_hourly_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Hourly: refreshes today's (UTC) `api_quota_daily` so the dashboard shows live burn."""
    return _day_request(_tick_day(context), "hourly")


@dg.schedule(
    cron_schedule=HEALTH_NIGHTLY_CRON,
    job=enrichment_health_daily_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def enrichment_health_nightly_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """Nightly: `enrichment_health_daily` for yesterday (UTC)."""
    return _day_request(_tick_day(context) - timedelta(days=1), "nightly")


enrichment_error_feed_hourly_schedule = dg.ScheduleDefinition(
    name="enrichment_error_feed_hourly_schedule",
    cron_schedule=ERROR_FEED_HOURLY_CRON,
    job=enrichment_error_feed_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: rebuilds `enrichment_error_feed` with the latest errors.",
)

OPS_SCHEDULES = [
    api_quota_nightly_schedule,
    api_quota_hourly_schedule,
    enrichment_health_nightly_schedule,
    enrichment_error_feed_hourly_schedule,
]
