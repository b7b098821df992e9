"""Materialization metadata of the enrichment assets: status counts, latencies, and the batch's
prospects as Dagster tables (`assets/table_metadata.py`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from phronesis_dagster.assets.table_metadata import FLOAT, INT, STRING, table_metadata
from phronesis_dagster.enrichment.constants import SOURCE_STATUSES
from phronesis_dagster.enrichment.store import SourceOutcome

PREVIEW_ROWS = 100
# An error message is kept whole up to this length; past it, the table cell would be a wall.
ERROR_CHARS = 200


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return round(ordered[rank], 1)


def latency_summary(outcomes: Iterable[SourceOutcome]) -> dict[str, float | None]:
    """p50 / p95 / max of the call latencies (ms) of `outcomes` that made a call."""
    values = [o.latency_ms for o in outcomes if o.latency_ms is not None]
    return {
        "p50": percentile(values, 0.5),
        "p95": percentile(values, 0.95),
        "max": round(max(values), 1) if values else None,
    }


def status_counts(outcomes: Iterable[SourceOutcome]) -> dict[str, int]:
    counts = dict.fromkeys(SOURCE_STATUSES, 0)
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts


def _clip(text: str | None, limit: int = ERROR_CHARS) -> str | None:
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


_PREVIEW_DESCRIPTIONS = {"name": f"the batch's first {PREVIEW_ROWS} prospects, by id"}


def source_table(
    prospects: Sequence[Mapping[str, Any]],
    results: Mapping[tuple[Any, str], SourceOutcome],
    source: str,
) -> dg.TableMetadataValue:
    """One row per prospect (the first PREVIEW_ROWS) with the source's status, latency and
    error; `status` is empty for a prospect the source has no answer for yet."""
    rows = []
    for p in prospects[:PREVIEW_ROWS]:
        o = results.get((p["id"], source))
        rows.append(
            {
                "prospect_id": p["id"],
                "name": p["name"],
                "status": o.status if o else None,
                "latency_ms": None if o is None or o.latency_ms is None else round(o.latency_ms),
                "error": _clip(o.error) if o else None,
            }
        )
    return table_metadata(
        rows,
        [
            ("prospect_id", STRING),
            ("name", STRING),
            ("status", STRING),
            ("latency_ms", INT),
            ("error", STRING),
        ],
        _PREVIEW_DESCRIPTIONS,
        free_text=("name", "error"),
    )


def matrix_table(
    prospects: Sequence[Mapping[str, Any]],
    records: Mapping[Any, Mapping[str, Mapping[str, Any]]],
    sources: Sequence[str],
    final: Mapping[Any, str],
) -> dg.TableMetadataValue:
    """Prospects (the first PREVIEW_ROWS) × sources: each source's status, and the merged
    `enrichment_status`."""
    rows = []
    for p in prospects[:PREVIEW_ROWS]:
        record = records.get(p["id"], {})
        rows.append(
            {
                "prospect_id": p["id"],
                "name": p["name"],
                **{s: record.get(s, {}).get("status") for s in sources},
                "enrichment_status": final.get(p["id"]),
            }
        )
    return table_metadata(
        rows,
        [
            ("prospect_id", STRING),
            ("name", STRING),
            *((s, STRING) for s in sources),
            ("enrichment_status", STRING),
        ],
        _PREVIEW_DESCRIPTIONS,
        free_text=("name",),
    )


def by_source_table(
    outcomes_by_source: Mapping[str, Sequence[SourceOutcome]],
) -> dg.TableMetadataValue:
    """One row per source: how many prospects ended in each status, and the call latencies."""
    rows = []
    for source, outcomes in outcomes_by_source.items():
        latency = latency_summary(outcomes)
        rows.append(
            {
                "source": source,
                **status_counts(outcomes),
                "latency_p50_ms": latency["p50"],
                "latency_p95_ms": latency["p95"],
                "latency_max_ms": latency["max"],
            }
        )
    return table_metadata(
        rows,
        [
            ("source", STRING),
            *((s, INT) for s in SOURCE_STATUSES),
            ("latency_p50_ms", FLOAT),
            ("latency_p95_ms", FLOAT),
            ("latency_max_ms", FLOAT),
        ],
    )


def rate_limits_table(limits: Mapping[str, str]) -> dg.TableMetadataValue:
    """The limits a run enforced, one row per endpoint group (`*` = the provider's own)."""
    return table_metadata(
        [{"endpoint_group": group, "limit": limit} for group, limit in limits.items()],
        [("endpoint_group", STRING), ("limit", STRING)],
        {"limit": "calls per second (`10/s`) or per minute (`1000/min`)"},
    )
