"""Materialization metadata of the enrichment assets: status counts, latencies, markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import dagster as dg

from phronesis_dagster.enrichment.constants import SOURCE_STATUSES
from phronesis_dagster.enrichment.store import SourceOutcome

PREVIEW_ROWS = 100


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


def _cell(text: Any, limit: int = 60) -> str:
    text = "" if text is None else str(text)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def source_table(
    prospects: Sequence[Mapping[str, Any]],
    results: Mapping[tuple[int, str], SourceOutcome],
    source: str,
) -> str:
    """Markdown: one row per prospect with the source's status, latency and error."""
    lines = ["| prospect | name | status | latency ms | error |", "|---|---|---|---|---|"]
    for p in prospects[:PREVIEW_ROWS]:
        o = results.get((p["id"], source))
        lines.append(
            f"| {p['id']} | {_cell(p['name'], 30)} | {o.status if o else '-'} | "
            f"{'' if not o or o.latency_ms is None else round(o.latency_ms)} | "
            f"{_cell(o.error if o else '')} |"
        )
    if len(prospects) > PREVIEW_ROWS:
        lines.append(f"| … | {len(prospects) - PREVIEW_ROWS} more | | | |")
    return "\n".join(lines)


def matrix_table(
    prospects: Sequence[Mapping[str, Any]],
    records: Mapping[int, Mapping[str, Mapping[str, Any]]],
    sources: Sequence[str],
    final: Mapping[int, str],
) -> str:
    """Markdown: prospects × sources with each source's status, and the merged status."""
    head = "| prospect | name | " + " | ".join(sources) + " | enrichment_status |"
    lines = [head, "|" + "---|" * (len(sources) + 3)]
    for p in prospects[:PREVIEW_ROWS]:
        record = records.get(p["id"], {})
        cells = [record.get(s, {}).get("status", "-") for s in sources]
        lines.append(
            f"| {p['id']} | {_cell(p['name'], 30)} | "
            + " | ".join(cells)
            + f" | {final.get(p['id'], '-')} |"
        )
    if len(prospects) > PREVIEW_ROWS:
        lines.append(f"| … | {len(prospects) - PREVIEW_ROWS} more |" + " |" * (len(sources) + 1))
    return "\n".join(lines)


def json_meta(value: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(value)
