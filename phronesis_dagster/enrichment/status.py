"""Reading `prospects.enrichment_source_status`, and how per-source outcomes merge into a
prospect's `enrichment_status`.

The column is the web app's contract (../shared/webapp/README.md): an object keyed by source,
each value `{status, error?, at}`. Rows from before that shape hold plain strings, read as
`{status: value}` and never re-dated. Anything else (the whole column a scalar or an array, a
record that is neither an object with a string `status` nor a string) is malformed: it fails that
one prospect with a reason, before any provider is called for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from phronesis_dagster.enrichment.constants import DATA_SOURCES, SKIPPED, SUCCESS_STATUSES


class MalformedSourceStatus(ValueError):
    """`enrichment_source_status` holds something no reader of the contract understands."""


def json_kind(value: Any) -> str:
    """The JSON type name of a decoded JSONB value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def read_record(source: str, value: Any) -> dict[str, Any]:
    """One source's record as `{status, ...}`; a legacy string `v` is `{status: v}` (no `at`
    is invented for it). Raises MalformedSourceStatus for anything else."""
    if isinstance(value, str):
        return {"status": value}
    if isinstance(value, Mapping) and isinstance(value.get("status"), str):
        return dict(value)
    what = "object without a string status" if isinstance(value, Mapping) else json_kind(value)
    raise MalformedSourceStatus(
        f"enrichment_source_status[{source!r}] is {_article(what)}, not a "
        "{status, error?, at} record or a status string"
    )


def read_source_status(value: Any) -> dict[str, dict[str, Any]]:
    """The whole column as {source: record}. NULL is no record yet. Raises
    MalformedSourceStatus (with a reason a person can act on) when it is not readable."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        shown = f" {value!r}" if isinstance(value, str | int | float) else ""
        raise MalformedSourceStatus(
            f"enrichment_source_status holds a JSON {json_kind(value)}{shown}, not an object "
            "of per-source records; set it to '{}' (or remove the bad value) to enrich again"
        )
    return {source: read_record(source, record) for source, record in value.items()}


def lenient_source_status(value: Any) -> dict[str, dict[str, Any]]:
    """Like `read_source_status`, for display and counting: unreadable parts are left out
    instead of raising."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for source, record in value.items():
        try:
            out[source] = read_record(source, record)
        except MalformedSourceStatus:
            continue
    return out


def _article(what: str) -> str:
    return f"an {what}" if what[0] in "aeiou" else f"a {what}"


def overall_status(source_status: Mapping[str, Any]) -> str:
    """`complete` or `failed` for a prospect whose sources have all run.

    `complete` when at least one applicable data source succeeded or found nothing - including
    the mixed case where others failed (usable data and a summary arrived; the per-source record
    and the job's error log show the failures). `failed` when no applicable data source
    succeeded. A prospect where no data source applies at all is `complete`: there was nothing to
    fetch. The summary (claude) does not decide the status: it only re-reads the data sources.
    Legacy string records count as `{status: value}`; unreadable ones as not succeeded.
    """
    records = lenient_source_status(source_status)
    applicable = [
        entry.get("status")
        for source, entry in records.items()
        if source in DATA_SOURCES and entry.get("status") != SKIPPED
    ]
    if not applicable:
        return "complete"
    return "complete" if any(s in SUCCESS_STATUSES for s in applicable) else "failed"
