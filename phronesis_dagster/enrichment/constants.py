"""Names shared by the enrichment code: sources, statuses and the prospect columns they fill."""

from __future__ import annotations

# The four data sources, in lineage order, and the summary source that reads them.
DATA_SOURCES: tuple[str, ...] = ("apollo", "contactout", "exa", "edgar")
SUMMARY_SOURCE = "claude"
ALL_SOURCES: tuple[str, ...] = (*DATA_SOURCES, SUMMARY_SOURCE)

# Per-source statuses. A source in FINAL_STATUSES is never called again for the same batch.
COMPLETE = "complete"
NOT_FOUND = "not_found"
FAILED = "failed"
CIRCUIT_OPEN = "circuit_open"
SKIPPED = "skipped"
SOURCE_STATUSES: tuple[str, ...] = (COMPLETE, NOT_FOUND, FAILED, CIRCUIT_OPEN, SKIPPED)
FINAL_STATUSES: frozenset[str] = frozenset({COMPLETE, NOT_FOUND, SKIPPED})
SUCCESS_STATUSES: frozenset[str] = frozenset({COMPLETE, NOT_FOUND})
ERROR_STATUSES: frozenset[str] = frozenset({FAILED, CIRCUIT_OPEN})

# The prospects column each source writes its data to.
DATA_COLUMN: dict[str, str] = {
    "apollo": "person_data",
    "contactout": "contact_data",
    "exa": "web_data",
    "edgar": "insider_data",
    "claude": "ai_summary",
}

# The asset that materializes each source.
SOURCE_ASSET: dict[str, str] = {
    "apollo": "person_match",
    "contactout": "contact_enrichment",
    "exa": "web_enrichment",
    "edgar": "insider_enrichment",
    "claude": "ai_summary",
}
