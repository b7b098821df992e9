"""Partition definitions shared by assets, checks, jobs and schedules.

Usage metrics are partitioned by UTC day. The first day is configurable with
`PHRONESIS_USAGE_START_DATE` (YYYY-MM-DD) so a fresh install does not offer years of empty
partitions to backfill.
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

USAGE_START_DATE_ENV = "PHRONESIS_USAGE_START_DATE"
DEFAULT_USAGE_START_DATE = "2025-01-01"


def usage_start_date() -> date:
    """The first UTC day of `usage_metrics_daily`, from `PHRONESIS_USAGE_START_DATE`."""
    raw = os.environ.get(USAGE_START_DATE_ENV) or DEFAULT_USAGE_START_DATE
    try:
        return date.fromisoformat(raw.strip())
    except ValueError as exc:
        raise ValueError(
            f"{USAGE_START_DATE_ENV}={raw!r} is not a date; use YYYY-MM-DD, e.g. 2025-01-01"
        ) from exc


# One partition per UTC day; the partition key is the day, e.g. "2025-03-14".
usage_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=usage_start_date().isoformat(), timezone="UTC"
)

# The same days plus today, for datasets that are refreshed during the day (API quota burn,
# enrichment health): the hourly schedules materialize today's partition as it fills up.
intraday_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=usage_start_date().isoformat(), timezone="UTC", end_offset=1
)
