"""The one Dagster code location of phronesis-dagster: every asset, check, job, schedule, sensor
and resource, and the only place resource keys are bound."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.resources.app_db import AppDatabase

app_db = AppDatabase()

# --- usage (issue: usage_metrics_daily) ---
USAGE_ASSETS: list = []
USAGE_CHECKS: list = []
USAGE_JOBS: list = []
USAGE_SCHEDULES: list = []
USAGE_SENSORS: list = []
# --- end usage ---

# --- enrichment ---
ENRICHMENT_ASSETS: list = []
ENRICHMENT_CHECKS: list = []
ENRICHMENT_JOBS: list = []
ENRICHMENT_SCHEDULES: list = []
ENRICHMENT_SENSORS: list = []
# --- end enrichment ---

# --- quotas and operations ---
OPS_ASSETS: list = []
OPS_CHECKS: list = []
OPS_JOBS: list = []
OPS_SCHEDULES: list = []
OPS_SENSORS: list = []
# --- end quotas and operations ---


def _resources() -> dict:
    resources: dict = {"app_db": app_db}
    # --- provider resources ---
    # --- end provider resources ---
    return resources


defs = dg.Definitions(
    assets=[*USAGE_ASSETS, *ENRICHMENT_ASSETS, *OPS_ASSETS],
    asset_checks=[*USAGE_CHECKS, *ENRICHMENT_CHECKS, *OPS_CHECKS],
    jobs=[*USAGE_JOBS, *ENRICHMENT_JOBS, *OPS_JOBS],
    schedules=[*USAGE_SCHEDULES, *ENRICHMENT_SCHEDULES, *OPS_SCHEDULES],
    sensors=[*USAGE_SENSORS, *ENRICHMENT_SENSORS, *OPS_SENSORS],
    resources=_resources(),
)
