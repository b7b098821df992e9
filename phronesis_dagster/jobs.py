"""Every job of the code location: what a schedule, a sensor or a person in the UI launches.

Each job selects assets; the assets say what is computed, the job how it is run and tagged."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.assets.activity_partitions import activity_log_partitions
from phronesis_dagster.assets.enrichment import enrich_batch, enriched_prospects
from phronesis_dagster.assets.ops import enrichment_error_feed, enrichment_health_daily
from phronesis_dagster.assets.quotas import api_quota_daily
from phronesis_dagster.assets.usage import usage_metrics_daily

# -- usage ---------------------------------------------------------------------------------

usage_metrics_daily_job = dg.define_asset_job(
    "usage_metrics_daily_job",
    # Downstream datasets (the dashboard's platform_pulse_daily, funnel_daily and
    # tenant_activity_daily) share the daily partitions, so a backfill of past days refreshes
    # them too instead of leaving them on the old numbers.
    selection=dg.AssetSelection.assets(usage_metrics_daily).downstream(),
    description="Recompute usage_metrics_daily (and its checks) and the dashboard datasets "
    "that follow it (platform_pulse_daily, funnel_daily, tenant_activity_daily) for the "
    "selected UTC days. Use it for backfills from the UI.",
    tags={"domain": "usage"},
)

activity_log_partitions_job = dg.define_asset_job(
    "activity_log_partitions_job",
    selection=dg.AssetSelection.assets(activity_log_partitions),
    description="Create the coming months' activity_log partitions and rescue rows parked in "
    "the DEFAULT partition.",
    tags={"domain": "usage"},
)

# -- enrichment ----------------------------------------------------------------------------

# In-process executor: the whole batch runs in the run's own process. The multiprocess default
# would start one more Python process per step (two per batch) for no gain - the concurrency
# that matters is inside the steps, on the provider thread pools.
enrichment_batch_job = dg.define_asset_job(
    "enrichment_batch_job",
    selection=dg.AssetSelection.assets(enrich_batch, enriched_prospects),
    executor_def=dg.in_process_executor,
    description="Enrich one batch of prospects (a dynamic partition added by "
    "enrichment_request_sensor): the four data sources and the AI summary at once, then the "
    "merged status, requests and job progress.",
    tags={
        "phronesis/domain": "enrichment",
        # A run whose process died (OOM, evicted pod, SIGKILL) is re-executed from failure:
        # finished steps are not run again, and inside enrich_batch the stored source results
        # keep finished sources from being called again (sensors/recovery.py). More retries
        # than the instance's default (2): a retry pays no provider call twice, only a process
        # start, and the chaos benchmark saw a batch killed 7 times on a loaded machine.
        "dagster/max_retries": "10",
        "dagster/retry_strategy": "FROM_FAILURE",
    },
)

# -- operations datasets -------------------------------------------------------------------

api_quota_daily_job = dg.define_asset_job(
    "api_quota_daily_job",
    selection=[api_quota_daily],
    description="Materializes api_quota_daily (and its checks) for one UTC day.",
)
enrichment_health_daily_job = dg.define_asset_job(
    "enrichment_health_daily_job",
    selection=[enrichment_health_daily],
    description="Materializes enrichment_health_daily for one UTC day.",
)
enrichment_error_feed_job = dg.define_asset_job(
    "enrichment_error_feed_job",
    selection=[enrichment_error_feed],
    description="Rebuilds enrichment_error_feed.",
)

USAGE_JOBS = [usage_metrics_daily_job, activity_log_partitions_job]
ENRICHMENT_JOBS = [enrichment_batch_job]
OPS_JOBS = [api_quota_daily_job, enrichment_health_daily_job, enrichment_error_feed_job]
