"""The enrichment batch job: one run per batch partition."""

from __future__ import annotations

import dagster as dg

from phronesis_dagster.assets.enrichment.assets import enrich_batch, enriched_prospects

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
