"""Names shared by the enrichment code: statuses, and the source names and maps the provider
registry defines (kept here under their old names for the store, the sensors and the checks)."""

from __future__ import annotations

from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.registry import DATA_PROVIDERS, PROVIDERS, SUMMARY_PROVIDER

# Source names derived from the provider registry (resources/registry.py), in lineage order: the
# four data sources, then the summary that reads them. These are the web app's
# `enrichment_source_status` keys (../shared/webapp/README.md): EDGAR's key is `sec`.
DATA_SOURCES: tuple[str, ...] = tuple(p.SOURCE for p in DATA_PROVIDERS)
SUMMARY_SOURCE = SUMMARY_PROVIDER.SOURCE
SEC_SOURCE = EdgarResource.SOURCE
ALL_SOURCES: tuple[str, ...] = (*DATA_SOURCES, SUMMARY_SOURCE)

# The provider behind each source: the resource key, and the name in api_usage, api_call_log,
# the breaker, the rate limits and the Redis counters.
PROVIDER: dict[str, str] = {p.SOURCE: p.PROVIDER for p in PROVIDERS}

# Per-source statuses. A source in FINAL_STATUSES is never called again for the same batch.
# PENDING only lives on the prospect row, while its source runs.
COMPLETE = "complete"
NOT_FOUND = "not_found"
FAILED = "failed"
CIRCUIT_OPEN = "circuit_open"
SKIPPED = "skipped"
PENDING = "pending"
SOURCE_STATUSES: tuple[str, ...] = (COMPLETE, NOT_FOUND, FAILED, CIRCUIT_OPEN, SKIPPED)
FINAL_STATUSES: frozenset[str] = frozenset({COMPLETE, NOT_FOUND, SKIPPED})
SUCCESS_STATUSES: frozenset[str] = frozenset({COMPLETE, NOT_FOUND})
ERROR_STATUSES: frozenset[str] = frozenset({FAILED, CIRCUIT_OPEN})

# The prospects JSONB column each source writes its data to. Claude's structured summary goes to
# `ai_summary_structured`; its prose also goes to the web app's TEXT column SUMMARY_TEXT_COLUMN.
DATA_COLUMN: dict[str, str] = {p.SOURCE: p.DATA_COLUMN for p in PROVIDERS}
SUMMARY_TEXT_COLUMN = "ai_summary"

# The asset that materializes each source.
SOURCE_ASSET: dict[str, str] = {p.SOURCE: p.ASSET_KEY for p in PROVIDERS}
