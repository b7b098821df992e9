"""Schedules of the usage domain: the nightly rollup and the daily partition maintenance."""

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from phronesis_dagster.jobs import activity_log_partitions_job, usage_metrics_daily_job
from phronesis_dagster.partitions import usage_start_date

SCHEDULE_TIMEZONE_ENV = "PHRONESIS_SCHEDULE_TIMEZONE"
USAGE_LOOKBACK_DAYS_ENV = "PHRONESIS_USAGE_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 1


def schedule_timezone() -> str:
    """The timezone the schedules' cron runs in, from `PHRONESIS_SCHEDULE_TIMEZONE` (UTC)."""
    name = os.environ.get(SCHEDULE_TIMEZONE_ENV) or "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{SCHEDULE_TIMEZONE_ENV}={name!r} is not an IANA timezone") from exc
    return name


def usage_lookback_days() -> int:
    """Extra days re-run each night for late events, from `PHRONESIS_USAGE_LOOKBACK_DAYS`."""
    raw = os.environ.get(USAGE_LOOKBACK_DAYS_ENV) or str(DEFAULT_LOOKBACK_DAYS)
    try:
        days = int(raw)
    except ValueError:
        days = -1
    if days < 0:
        raise ValueError(f"{USAGE_LOOKBACK_DAYS_ENV}={raw!r} must be a whole number >= 0")
    return days


def nightly_partition_keys(scheduled: datetime, lookback_days: int) -> list[str]:
    """The last complete UTC day before `scheduled`, then `lookback_days` days before it."""
    last_complete = scheduled.astimezone(UTC).date() - timedelta(days=1)
    first_allowed = usage_start_date()
    days = [last_complete - timedelta(days=i) for i in range(lookback_days + 1)]
    return [d.isoformat() for d in days if d >= first_allowed]


@dg.schedule(
    name="nightly_usage_rollup",
    cron_schedule="0 1 * * *",
    job=usage_metrics_daily_job,
    execution_timezone=schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    tags={"domain": "usage"},
)
def nightly_usage_rollup(context: dg.ScheduleEvaluationContext):
    """Every night at 01:00: roll up yesterday (the last complete UTC day), and re-run the day(s)
    before it (`PHRONESIS_USAGE_LOOKBACK_DAYS`, default 1) to pick up late events."""
    scheduled = context.scheduled_execution_time or datetime.now(UTC)
    keys = nightly_partition_keys(scheduled, usage_lookback_days())
    if not keys:
        return dg.SkipReason(f"no complete UTC day on or after {usage_start_date()} yet")
    tick = scheduled.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    # The run key includes the tick: tomorrow's late-event re-run of a day must not be
    # deduplicated against tonight's run of the same day.
    return [
        dg.RunRequest(
            run_key=f"{tick}:{key}",
            partition_key=key,
            tags={"phronesis/rollup": "nightly" if i == 0 else "late-events-rerun"},
        )
        for i, key in enumerate(keys)
    ]


activity_log_partitions_schedule = dg.ScheduleDefinition(
    name="activity_log_partitions_schedule",
    cron_schedule="30 0 * * *",
    job=activity_log_partitions_job,
    execution_timezone=schedule_timezone(),
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily at 00:30: keep the coming months' activity_log partitions ready "
    "(idempotent) and move any rows parked in the DEFAULT partition.",
    tags={"domain": "usage"},
)

USAGE_SCHEDULES = [nightly_usage_rollup, activity_log_partitions_schedule]
