"""Prospect enrichment assets, partitioned by request batch (see docs/architecture.md)."""

from phronesis_dagster.assets.enrichment.assets import (
    enrich_batch,
    enriched_prospects,
    prospects,
)
from phronesis_dagster.assets.enrichment.partitions import enrichment_batch_partitions

ENRICHMENT_ASSETS = [prospects, enrich_batch, enriched_prospects]

__all__ = [
    "ENRICHMENT_ASSETS",
    "enrich_batch",
    "enrichment_batch_partitions",
    "enriched_prospects",
    "prospects",
]
