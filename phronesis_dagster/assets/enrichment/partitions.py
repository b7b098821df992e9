"""The enrichment batch partitions: one dynamic partition per batch of requests, added by
`enrichment_request_sensor`."""

from __future__ import annotations

import dagster as dg

ENRICHMENT_GROUP = "enrichment"
BATCH_TAG = "phronesis/enrichment_batch"
PARTITION_TAG = "dagster/partition"

enrichment_batch_partitions = dg.DynamicPartitionsDefinition(name="enrichment_batches")

# Provider calls are retried by the resources; this covers the rest (the database restarting, a
# lost worker). Safe because completed sources are never called again for the same batch.
ENRICHMENT_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
