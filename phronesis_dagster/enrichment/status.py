"""How per-source outcomes merge into a prospect's `enrichment_status`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phronesis_dagster.enrichment.constants import DATA_SOURCES, SKIPPED, SUCCESS_STATUSES


def overall_status(source_status: Mapping[str, Mapping[str, Any]]) -> str:
    """`complete` or `failed` for a prospect whose sources have all run.

    `complete` when at least one applicable data source succeeded or found nothing - including
    the mixed case where others failed (usable data and a summary arrived; the per-source record
    and the job's error log show the failures). `failed` when no applicable data source
    succeeded. A prospect where no data source applies at all is `complete`: there was nothing to
    fetch. The summary (claude) does not decide the status: it only re-reads the data sources.
    """
    applicable = [
        entry.get("status")
        for source, entry in source_status.items()
        if source in DATA_SOURCES and entry.get("status") != SKIPPED
    ]
    if not applicable:
        return "complete"
    return "complete" if any(s in SUCCESS_STATUSES for s in applicable) else "failed"
