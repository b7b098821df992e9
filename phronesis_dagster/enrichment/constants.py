"""Names shared by the enrichment code: sources, statuses and the prospect columns they fill."""

from __future__ import annotations

# The four data sources, in lineage order, and the summary source that reads them. These are the
# web app's `enrichment_source_status` keys (../shared/webapp/README.md): EDGAR's key is `sec`.
SEC_SOURCE = "sec"
DATA_SOURCES: tuple[str, ...] = ("apollo", "contactout", "exa", SEC_SOURCE)
SUMMARY_SOURCE = "claude"
ALL_SOURCES: tuple[str, ...] = (*DATA_SOURCES, SUMMARY_SOURCE)

# The provider behind each source: the resource key, and the name in api_usage, api_call_log,
# the breaker, the rate limits and the Redis counters. The one place a source becomes a provider.
PROVIDER: dict[str, str] = {
    "apollo": "apollo",
    "contactout": "contactout",
    "exa": "exa",
    SEC_SOURCE: "edgar",
    SUMMARY_SOURCE: "claude",
}

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
DATA_COLUMN: dict[str, str] = {
    "apollo": "person_data",
    "contactout": "contact_data",
    "exa": "web_data",
    SEC_SOURCE: "insider_data",
    SUMMARY_SOURCE: "ai_summary_structured",
}
SUMMARY_TEXT_COLUMN = "ai_summary"

# The asset that materializes each source.
SOURCE_ASSET: dict[str, str] = {
    "apollo": "person_match",
    "contactout": "contact_enrichment",
    "exa": "web_enrichment",
    SEC_SOURCE: "insider_enrichment",
    SUMMARY_SOURCE: "ai_summary",
}
