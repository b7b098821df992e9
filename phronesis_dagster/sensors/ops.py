"""The automation sensor of the operations datasets: `tenant_activity_daily` follows
`usage_metrics_daily` (its eager automation condition)."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.assets.ops import tenant_activity_daily

# Evaluates tenant_activity_daily's eager condition, so a new or re-run day of
# usage_metrics_daily is followed by the same day of the heatmap without anyone starting it.
ops_automation_sensor = dg.AutomationConditionSensorDefinition(
    "ops_automation_sensor",
    target=[tenant_activity_daily],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs tenant_activity_daily after each new day of usage_metrics_daily.",
)

OPS_SENSORS = [ops_automation_sensor]
