"""Automation of the dashboard datasets: each day of `platform_pulse_daily` and `funnel_daily`
follows the same day of `usage_metrics_daily` (and the pulse also `api_quota_daily`)."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.assets.dashboard import funnel_daily, platform_pulse_daily

# Evaluates the eager conditions of the two assets: a new or re-run day of usage_metrics_daily
# (or of api_quota_daily, which copies the web app's provider calls in) is followed by the same
# day of the dashboard datasets without anyone starting it.
dashboard_automation_sensor = dg.AutomationConditionSensorDefinition(
    "dashboard_automation_sensor",
    target=[platform_pulse_daily, funnel_daily],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Runs platform_pulse_daily and funnel_daily after each new day of "
    "usage_metrics_daily (and api_quota_daily for the pulse).",
)

DASHBOARD_SENSORS = [dashboard_automation_sensor]
