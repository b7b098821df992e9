"""The per-source result store and the batch lifecycle in the app database.

`enrichment_source_results` holds one row per (batch, prospect, source), written as soon as a
provider call returns. A re-run of the batch (Dagster retry, re-execution after a crash) reads it
first and does not call a provider again for a source whose row is final (complete, not_found,
skipped): no double charge. Failed and circuit_open rows are retried.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql, sqlite

from phronesis_dagster.db.models import (
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
)
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.constants import (
    COMPLETE,
    DATA_COLUMN,
    DATA_SOURCES,
    ERROR_STATUSES,
)
from phronesis_dagster.enrichment.requests import as_utc, refresh_jobs
from phronesis_dagster.enrichment.status import overall_status
from phronesis_dagster.resources.app_db import short_write

_REQ = EnrichmentRequest.__table__
_RES = EnrichmentSourceResult.__table__
_PROS = Prospect.__table__


@dataclasses.dataclass(frozen=True)
class SourceOutcome:
    """The result of one source for one prospect."""

    status: str
    data: dict[str, Any] | None = None
    error: str | None = None
    latency_ms: float | None = None
    at: datetime | None = None

    def record(self) -> dict[str, Any]:
        """The entry for `prospects.enrichment_source_status[source]`."""
        entry: dict[str, Any] = {"status": self.status}
        if self.error:
            entry["error"] = self.error
        if self.latency_ms is not None:
            entry["latency_ms"] = round(self.latency_ms, 1)
        entry["at"] = as_utc(self.at).isoformat() if self.at else None
        return entry


def to_jsonable(value: Any) -> Any:
    """A provider result (frozen dataclass or pydantic model) as plain JSON data."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def batch_prospects(conn: sa.Connection, batch_key: str) -> list[dict[str, Any]]:
    """The prospects of `batch_key`, one dict each, ordered by id."""
    rows = conn.execute(sa.text(load_sql("enrichment_batch_prospects")), {"batch_key": batch_key})
    out = []
    for r in rows.mappings():
        row = dict(r)
        status = row["enrichment_source_status"]
        if isinstance(status, str):  # raw JSON text from a text() query on SQLite
            row["enrichment_source_status"] = json.loads(status)
        row["is_public_company"] = bool(row["is_public_company"])
        row["force"] = bool(row["force"])
        out.append(row)
    return out


def batch_job_ids(conn: sa.Connection, batch_key: str) -> set[int]:
    rows = conn.execute(
        sa.select(_REQ.c.job_id).where(_REQ.c.batch_key == batch_key, _REQ.c.job_id.is_not(None))
    )
    return {int(r.job_id) for r in rows}


def start_batch(engine: sa.Engine, batch_key: str, *, run_id: str | None, now: datetime) -> int:
    """Mark the batch's requests `running` (with the run id) and its prospects `in_progress`.
    Idempotent; also picks up requests a failed earlier run left `failed`, so re-executing the
    batch from the UI resumes it. Returns the number of requests now running."""
    with engine.begin() as conn:
        n = conn.execute(
            sa.update(_REQ)
            .where(_REQ.c.batch_key == batch_key, _REQ.c.status.in_(("queued", "failed")))
            .values(status="running", run_id=run_id, reason=None, updated_at=now)
        ).rowcount
        running = sa.select(_REQ.c.prospect_id).where(
            _REQ.c.batch_key == batch_key, _REQ.c.status == "running"
        )
        conn.execute(
            sa.update(_PROS)
            .where(_PROS.c.id.in_(running), _PROS.c.enrichment_status != "in_progress")
            .values(enrichment_status="in_progress", updated_at=now)
        )
        if n:
            refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return n


def load_results(
    conn: sa.Connection, batch_key: str, sources: Iterable[str] | None = None
) -> dict[tuple[int, str], SourceOutcome]:
    """Stored outcomes of `batch_key`, keyed by (prospect_id, source)."""
    stmt = sa.select(
        _RES.c.prospect_id,
        _RES.c.source,
        _RES.c.status,
        _RES.c.data,
        _RES.c.error,
        _RES.c.latency_ms,
        _RES.c.updated_at,
    ).where(_RES.c.batch_key == batch_key)
    if sources is not None:
        stmt = stmt.where(_RES.c.source.in_(list(sources)))
    return {
        (int(r.prospect_id), r.source): SourceOutcome(
            status=r.status,
            data=r.data,
            error=r.error,
            latency_ms=r.latency_ms,
            at=as_utc(r.updated_at),
        )
        for r in conn.execute(stmt)
    }


_RESULT_COLUMNS = (
    "batch_key",
    "prospect_id",
    "tenant_id",
    "source",
    "status",
    "data",
    "error",
    "latency_ms",
    "run_id",
    "created_at",
    "updated_at",
)
_result_upserts: dict[str, sa.Insert] = {}


def _result_upsert(dialect: str) -> sa.Insert:
    """The outcome upsert, built once per dialect with bound parameters: it runs once per
    provider call, and building it per call cost more CPU than executing it."""
    stmt = _result_upserts.get(dialect)
    if stmt is not None:
        return stmt
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_RES)
    stmt = insert.values(
        attempts=1,
        **{c: sa.bindparam(f"r_{c}", type_=_RES.c[c].type) for c in _RESULT_COLUMNS},
    ).on_conflict_do_update(
        index_elements=["batch_key", "prospect_id", "source"],
        set_={
            "status": insert.excluded.status,
            "data": insert.excluded.data,
            "error": insert.excluded.error,
            "latency_ms": insert.excluded.latency_ms,
            "attempts": _RES.c.attempts + 1,
            "run_id": insert.excluded.run_id,
            "updated_at": insert.excluded.updated_at,
        },
    )
    _result_upserts[dialect] = stmt
    return stmt


def save_result(
    engine: sa.Engine,
    *,
    batch_key: str,
    prospect_id: int,
    tenant_id: int,
    source: str,
    outcome: SourceOutcome,
    run_id: str | None,
) -> None:
    """Upsert one outcome right after the call, in its own transaction, so a crash a moment
    later does not lose it (and the re-run does not pay for it again)."""
    values = {
        "r_batch_key": batch_key,
        "r_prospect_id": prospect_id,
        "r_tenant_id": tenant_id,
        "r_source": source,
        "r_status": outcome.status,
        "r_data": outcome.data,
        "r_error": outcome.error,
        "r_latency_ms": outcome.latency_ms,
        "r_run_id": run_id,
        "r_created_at": outcome.at,
        "r_updated_at": outcome.at,
    }
    stmt = _result_upsert(engine.dialect.name)
    with short_write(engine) as conn:
        conn.execute(stmt, values)


def write_sources_to_prospects(
    engine: sa.Engine, batch_key: str, sources: Iterable[str], *, now: datetime
) -> int:
    """Copy the batch's stored outcomes of `sources` onto the prospects: the data column of each
    `complete` source, and the per-source record in `enrichment_source_status`. Data is only
    replaced by new data: a failure or an empty answer keeps what the prospect had."""
    sources = list(sources)
    with engine.begin() as conn:
        results = load_results(conn, batch_key, sources)
        prospects = batch_prospects(conn, batch_key)
        for p in prospects:
            status = dict(p["enrichment_source_status"] or {})
            values: dict[str, Any] = {}
            for source in sources:
                outcome = results.get((p["id"], source))
                if outcome is None:
                    continue
                status[source] = outcome.record()
                if outcome.status == COMPLETE:
                    values[DATA_COLUMN[source]] = outcome.data
            conn.execute(
                sa.update(_PROS)
                .where(_PROS.c.id == p["id"])
                .values(enrichment_source_status=status, updated_at=now, **values)
            )
    return len(prospects)


def finish_batch(engine: sa.Engine, batch_key: str, *, now: datetime) -> dict[int, str]:
    """Merge each prospect's per-source records into `enrichment_status` (complete / failed),
    close the batch's requests (done / failed) and refresh the bulk jobs. Returns
    {prospect_id: status}."""
    with engine.begin() as conn:
        prospects = batch_prospects(conn, batch_key)
        final: dict[int, str] = {}
        for p in prospects:
            record = p["enrichment_source_status"] or {}
            status = overall_status({s: record.get(s, {}) for s in DATA_SOURCES if s in record})
            final[p["id"]] = status
            values: dict[str, Any] = {"enrichment_status": status, "updated_at": now}
            if status == "complete":
                values["last_enriched_at"] = now
            conn.execute(sa.update(_PROS).where(_PROS.c.id == p["id"]).values(**values))
            errors = [
                f"{s}: {record[s].get('error') or record[s]['status']}"
                for s in DATA_SOURCES
                if s in record and record[s].get("status") in ERROR_STATUSES
            ]
            conn.execute(
                sa.update(_REQ)
                .where(
                    _REQ.c.batch_key == batch_key,
                    _REQ.c.prospect_id == p["id"],
                    _REQ.c.status.in_(("queued", "running", "failed")),
                )
                .values(
                    status="done" if status == "complete" else "failed",
                    reason=None
                    if status == "complete"
                    else "no source succeeded; " + "; ".join(errors),
                    updated_at=now,
                )
            )
        refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return final


def fail_batch(
    engine: sa.Engine, batch_key: str, *, error: str, run_id: str | None, now: datetime
) -> int:
    """What a failed or canceled run leaves behind: the batch's `in_progress` prospects become
    `failed` and its open requests `failed` with the run's error, and the jobs are refreshed.
    Prospects the run already finished keep their status. Returns the prospects marked failed."""
    reason = f"run {run_id or '?'} failed: {error}"[:2000]
    with engine.begin() as conn:
        open_requests = sa.select(_REQ.c.prospect_id).where(
            _REQ.c.batch_key == batch_key, _REQ.c.status.in_(("queued", "running"))
        )
        n = conn.execute(
            sa.update(_PROS)
            .where(_PROS.c.id.in_(open_requests), _PROS.c.enrichment_status == "in_progress")
            .values(enrichment_status="failed", updated_at=now)
        ).rowcount
        conn.execute(
            sa.update(_REQ)
            .where(_REQ.c.batch_key == batch_key, _REQ.c.status.in_(("queued", "running")))
            .values(status="failed", reason=reason, updated_at=now)
        )
        refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return n


def outcome_counts(
    results: Mapping[tuple[int, str], SourceOutcome],
) -> dict[str, dict[str, int]]:
    """{source: {status: count}} of stored outcomes."""
    counts: dict[str, dict[str, int]] = {}
    for (_, source), outcome in results.items():
        per = counts.setdefault(source, {})
        per[outcome.status] = per.get(outcome.status, 0) + 1
    return counts
