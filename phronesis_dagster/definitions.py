"""The one Dagster code location of phronesis-dagster: every asset, check, job, schedule, sensor
and resource, and the only place resource keys are bound."""

from __future__ import annotations

import gc

import dagster as dg

from phronesis_dagster.assets.activity_partitions import activity_log_partitions
from phronesis_dagster.assets.dashboard import DASHBOARD_ASSETS
from phronesis_dagster.assets.enrichment import ENRICHMENT_ASSETS
from phronesis_dagster.assets.ops import (
    enrichment_error_feed,
    enrichment_health_daily,
    tenant_activity_daily,
)
from phronesis_dagster.assets.quotas import api_call_log, api_quota_daily, api_usage
from phronesis_dagster.assets.usage import activity_log, usage_metrics_daily
from phronesis_dagster.checks.enrichment import ENRICHMENT_CHECKS
from phronesis_dagster.checks.usage import USAGE_CHECKS
from phronesis_dagster.jobs import ENRICHMENT_JOBS, OPS_JOBS, USAGE_JOBS
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.providers import build_provider_resources
from phronesis_dagster.resources.redis_counters import WebAppRedis
from phronesis_dagster.schedules.ops import OPS_SCHEDULES
from phronesis_dagster.schedules.usage import USAGE_SCHEDULES
from phronesis_dagster.sensors.batch_retention import enrichment_batch_retention_sensor
from phronesis_dagster.sensors.dashboard import DASHBOARD_SENSORS
from phronesis_dagster.sensors.enrichment import ENRICHMENT_SENSORS
from phronesis_dagster.sensors.ops import OPS_SENSORS

app_db = AppDatabase()

usage = dict(
    assets=[activity_log, usage_metrics_daily, activity_log_partitions],
    checks=USAGE_CHECKS,
    jobs=USAGE_JOBS,
    schedules=USAGE_SCHEDULES,
    sensors=[],
)
enrichment = dict(
    assets=ENRICHMENT_ASSETS,
    checks=ENRICHMENT_CHECKS,
    jobs=ENRICHMENT_JOBS,
    schedules=[],
    sensors=[*ENRICHMENT_SENSORS, enrichment_batch_retention_sensor],
)
operations = dict(
    assets=[
        api_usage,
        api_call_log,
        api_quota_daily,
        enrichment_health_daily,
        enrichment_error_feed,
        tenant_activity_daily,
        *DASHBOARD_ASSETS,
    ],
    # The checks of api_quota_daily, platform_pulse_daily and funnel_daily are declared on the
    # assets and evaluated with them.
    checks=[],
    jobs=OPS_JOBS,
    schedules=OPS_SCHEDULES,
    sensors=[*OPS_SENSORS, *DASHBOARD_SENSORS],
)
DOMAINS = (usage, enrichment, operations)

# Provider resources point at the emulator or the real APIs depending on the environment
# (see resources/providers.py); with no credentials at all the location still loads.
resources = {
    "app_db": app_db,
    "web_app_redis": WebAppRedis(),
    **build_provider_resources(app_db),
}

defs = dg.Definitions(
    assets=[a for d in DOMAINS for a in d["assets"]],
    asset_checks=[c for d in DOMAINS for c in d["checks"]],
    jobs=[j for d in DOMAINS for j in d["jobs"]],
    schedules=[s for d in DOMAINS for s in d["schedules"]],
    sensors=[s for d in DOMAINS for s in d["sensors"]],
    resources=resources,
)

# The code location's own objects join Dagster's in the permanent generation (see
# phronesis_dagster/__init__.py): the collections of the run that follows skip them too.
gc.freeze()
