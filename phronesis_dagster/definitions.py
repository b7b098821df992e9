"""The one Dagster code location of phronesis-dagster: every asset, check, job, schedule, sensor
and resource, and the only place resource keys are bound."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.providers import build_provider_resources
from phronesis_dagster.resources.redis_counters import WebAppRedis

app_db = AppDatabase()

# --- usage (issue: usage_metrics_daily) ---
from phronesis_dagster.assets.activity_partitions import (  # noqa: E402
    activity_log_partitions,
    activity_log_partitions_job,
)
from phronesis_dagster.assets.usage import (  # noqa: E402
    activity_log,
    usage_metrics_daily,
    usage_metrics_daily_job,
)
from phronesis_dagster.checks.usage import USAGE_CHECKS  # noqa: E402
from phronesis_dagster.schedules.usage import USAGE_SCHEDULES  # noqa: E402

USAGE_ASSETS: list = [activity_log, usage_metrics_daily, activity_log_partitions]
USAGE_JOBS: list = [usage_metrics_daily_job, activity_log_partitions_job]
USAGE_SENSORS: list = []
# --- end usage ---

# --- enrichment ---
from phronesis_dagster.assets.enrichment import (  # noqa: E402
    ENRICHMENT_ASSETS,
    enrichment_batch_job,
)
from phronesis_dagster.checks.enrichment import ENRICHMENT_CHECKS  # noqa: E402
from phronesis_dagster.sensors.enrichment import ENRICHMENT_SENSORS  # noqa: E402

ENRICHMENT_JOBS: list = [enrichment_batch_job]
ENRICHMENT_SCHEDULES: list = []
# --- end enrichment ---

# --- quotas and operations ---
from phronesis_dagster.assets.ops import (  # noqa: E402
    enrichment_error_feed,
    enrichment_health_daily,
    tenant_activity_daily,
)
from phronesis_dagster.assets.quotas import api_call_log, api_quota_daily, api_usage  # noqa: E402
from phronesis_dagster.schedules.quotas import (  # noqa: E402
    OPS_JOBS,
    OPS_SCHEDULES,
    OPS_SENSORS,
)

# api_quota_daily needs the resource key "web_app_redis" (WebAppRedis() from
# phronesis_dagster.resources.redis_counters), bound in _resources().
OPS_ASSETS: list = [
    api_usage,
    api_call_log,
    api_quota_daily,
    enrichment_health_daily,
    enrichment_error_feed,
    tenant_activity_daily,
]
# api_quota_daily's checks are declared on the asset (check_specs) and evaluated with it.
OPS_CHECKS: list = []
# --- end quotas and operations ---


def _resources() -> dict:
    resources: dict = {"app_db": app_db, "web_app_redis": WebAppRedis()}
    resources.update(build_provider_resources(app_db))
    return resources


defs = dg.Definitions(
    assets=[*USAGE_ASSETS, *ENRICHMENT_ASSETS, *OPS_ASSETS],
    asset_checks=[*USAGE_CHECKS, *ENRICHMENT_CHECKS, *OPS_CHECKS],
    jobs=[*USAGE_JOBS, *ENRICHMENT_JOBS, *OPS_JOBS],
    schedules=[*USAGE_SCHEDULES, *ENRICHMENT_SCHEDULES, *OPS_SCHEDULES],
    sensors=[*USAGE_SENSORS, *ENRICHMENT_SENSORS, *OPS_SENSORS],
    resources=_resources(),
)
