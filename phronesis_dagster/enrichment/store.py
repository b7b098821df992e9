"""The per-source result store and the batch lifecycle in the app database.

`enrichment_source_results` holds one row per (batch, prospect, source), written as soon as a
provider call returns. A re-run of the batch (Dagster retry, re-execution after a crash) reads it
first and does not call a provider again for a source whose row is final (complete, not_found,
skipped): no double charge. Failed and circuit_open rows are retried.

The prospect row follows the batch as it runs, for the web app's prospect page (a spinner per
source): when a prospect's enrichment starts, `enrichment_status = 'in_progress'` and each
applicable source `{status: "pending", at}`; each source's outcome (its record and its data
column) lands on the row in the same transaction as its stored result, merged into
`enrichment_source_status` with `||` so sources of one prospect finishing at once never overwrite
each other's records.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb
from pydantic import BaseModel
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.engine import short_write
from phronesis_dagster.db.models import (
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
)
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.db.statements import Statement, compile_statement, execute
from phronesis_dagster.enrichment.constants import (
    COMPLETE,
    DATA_COLUMN,
    DATA_SOURCES,
    ERROR_STATUSES,
    FAILED,
    SUMMARY_SOURCE,
    SUMMARY_TEXT_COLUMN,
)
from phronesis_dagster.enrichment.requests import as_utc, refresh_jobs, utcnow
from phronesis_dagster.enrichment.status import (
    MalformedSourceStatus,
    overall_status,
    read_source_status,
)

_REQ = EnrichmentRequest.__table__
_RES = EnrichmentSourceResult.__table__
_PROS = Prospect.__table__
_JSONB = postgresql.JSONB()


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


def pending_record(now: datetime) -> dict[str, Any]:
    """The record of a source that is about to be called (the web app shows a spinner)."""
    return {"status": "pending", "at": as_utc(now).isoformat()}


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
    """The prospects of `batch_key`, one dict each, ordered by id.

    `enrichment_source_status` is read as {source: record} (legacy strings as {status: v});
    when the column cannot be read, it is {} and `malformed` holds the reason (else None)."""
    rows = conn.execute(sa.text(load_sql("enrichment_batch_prospects")), {"batch_key": batch_key})
    out = []
    for r in rows.mappings():
        row = dict(r)
        try:
            row["enrichment_source_status"] = read_source_status(row["enrichment_source_status"])
            row["malformed"] = None
        except MalformedSourceStatus as exc:
            row["enrichment_source_status"] = {}
            row["malformed"] = str(exc)
        row["is_public_company"] = bool(row["is_public_company"])
        row["force"] = bool(row["force"])
        out.append(row)
    return out


def batch_job_ids(conn: sa.Connection, batch_key: str) -> set[uuid.UUID]:
    rows = conn.execute(
        sa.select(_REQ.c.job_id).where(_REQ.c.batch_key == batch_key, _REQ.c.job_id.is_not(None))
    )
    return {r.job_id for r in rows}


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
            .where(
                _PROS.c.id.in_(running),
                sa.or_(
                    _PROS.c.enrichment_status.is_(None),
                    _PROS.c.enrichment_status != "in_progress",
                ),
            )
            .values(enrichment_status="in_progress", updated_at=now)
        )
        if n:
            refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return n


def _object_or_empty() -> sa.ColumnElement:
    """The prospect's record column, or {} when it holds something else: `||` on a JSONB
    scalar would turn it into an array."""
    col = _PROS.c.enrichment_source_status
    return sa.case(
        (sa.func.jsonb_typeof(col) == "object", col),
        else_=sa.cast(sa.literal_column("'{}'"), _JSONB),
    )


def _merged_records(records_param: str = "records") -> sa.ColumnElement:
    return _object_or_empty().op("||")(sa.bindparam(records_param, type_=_JSONB))


def begin_prospects(
    engine: sa.Engine,
    batch_key: str,
    records: Mapping[uuid.UUID, Mapping[str, Mapping[str, Any]]],
    malformed: Mapping[uuid.UUID, str],
    *,
    now: datetime,
) -> None:
    """What the prospect page shows when enrichment starts: `records[pid]` ({source: record},
    pending for each source about to be called, skipped / earlier final records for the others)
    merged into each prospect's `enrichment_source_status`. The `malformed` prospects (column
    unreadable) fail at once with their reason, before any provider is paid for them: prospect
    `failed`, request `failed` with the reason; their column is left as the web app wrote it."""
    with engine.begin() as conn:
        if records:
            conn.execute(
                sa.update(_PROS)
                .where(_PROS.c.id == sa.bindparam("pid"))
                .values(
                    enrichment_source_status=_merged_records(),
                    enrichment_status="in_progress",
                    updated_at=now,
                ),
                [{"pid": pid, "records": dict(r)} for pid, r in records.items()],
            )
        if malformed:
            _fail_malformed(conn, batch_key, malformed, now=now)
            refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)


def _fail_malformed(
    conn: sa.Connection, batch_key: str, malformed: Mapping[uuid.UUID, str], *, now: datetime
) -> None:
    # Rare (a web-app bug), so one statement per prospect is fine.
    for pid, why in malformed.items():
        conn.execute(
            sa.update(_PROS)
            .where(_PROS.c.id == pid)
            .values(enrichment_status="failed", updated_at=now)
        )
        conn.execute(
            sa.update(_REQ)
            .where(
                _REQ.c.batch_key == batch_key,
                _REQ.c.prospect_id == pid,
                _REQ.c.status.in_(("queued", "running", "failed")),
            )
            .values(status="failed", reason=why[:2000], updated_at=now)
        )


def load_results(
    conn: sa.Connection, batch_key: str, sources: Iterable[str] | None = None
) -> dict[tuple[uuid.UUID, str], SourceOutcome]:
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
        (r.prospect_id, r.source): SourceOutcome(
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


def _build_result_upsert() -> sa.Insert:
    """The outcome upsert, built once with bound parameters: it runs once per provider call, and
    building it per call cost more CPU than executing it."""
    insert = postgresql.insert(_RES)
    return insert.values(
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


_RESULT_UPSERT = _build_result_upsert()


def _build_prospect_write(source: str, with_data: bool) -> sa.Update:
    """One source's outcome onto the prospect row: its record merged into
    `enrichment_source_status` (`||` is evaluated on the row version the update locks, so two
    sources of one prospect finishing together both land), and, for a complete outcome, its
    data column (the summary also fills the web app's `ai_summary` text)."""
    values: dict[str, Any] = {
        "enrichment_source_status": _merged_records(),
        "updated_at": sa.bindparam("now", type_=_PROS.c.updated_at.type),
    }
    if with_data:
        values[DATA_COLUMN[source]] = sa.bindparam("data", type_=_JSONB)
        if source == SUMMARY_SOURCE:
            values[SUMMARY_TEXT_COLUMN] = sa.bindparam("text", type_=sa.Text())
    return sa.update(_PROS).where(_PROS.c.id == sa.bindparam("pid")).values(**values)


_PROSPECT_WRITES = {
    (source, with_data): _build_prospect_write(source, with_data)
    for source in DATA_COLUMN
    for with_data in (False, True)
}


def summary_text(data: Mapping[str, Any] | None) -> str | None:
    """The prose the web app shows from a structured Claude summary."""
    text = (data or {}).get("summary")
    return text if isinstance(text, str) else None


def write_to_prospect(
    conn: sa.Connection,
    *,
    prospect_id: uuid.UUID,
    source: str,
    outcome: SourceOutcome,
    now: datetime,
) -> None:
    """Write one source's record (and data when complete) to the prospect row. Data is only
    replaced by new data: a failure or an empty answer keeps what the prospect had."""
    with_data = outcome.status == COMPLETE and outcome.data is not None
    params: dict[str, Any] = {
        "pid": prospect_id,
        "records": {source: outcome.record()},
        "now": now,
    }
    if with_data:
        params["data"] = outcome.data
        if source == SUMMARY_SOURCE:
            params["text"] = summary_text(outcome.data)
    conn.execute(_PROSPECT_WRITES[(source, with_data)], params)


def _build_save(source: str, with_data: bool) -> Statement:
    """The stored outcome of one call as ONE statement: the result upsert as a CTE, then the
    prospect's record (and data column). Run in autocommit, it is atomic by itself: a crash a
    moment later loses neither, and the re-run does not pay for the call again."""
    return compile_statement(
        _PROSPECT_WRITES[(source, with_data)].add_cte(_RESULT_UPSERT.cte("saved_result"))
    )


_SAVES = {key: _build_save(*key) for key in _PROSPECT_WRITES}


def _jsonb(value: Any) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def save_result(
    app_db_url: str,
    *,
    batch_key: str,
    prospect_id: uuid.UUID,
    tenant_id: uuid.UUID,
    source: str,
    outcome: SourceOutcome,
    run_id: str | None,
    now: datetime | None = None,
) -> None:
    """Store one outcome right after the call: the result row and the prospect's record (and
    data), one statement and one round trip on a per-call connection (`db/statements.py`). Data
    is only replaced by new data: a failure or an empty answer keeps what the prospect had."""
    with_data = outcome.status == COMPLETE and outcome.data is not None
    params: dict[str, Any] = {
        "r_batch_key": batch_key,
        "r_prospect_id": prospect_id,
        "r_tenant_id": tenant_id,
        "r_source": source,
        "r_status": outcome.status,
        "r_data": _jsonb(outcome.data),
        "r_error": outcome.error,
        "r_latency_ms": outcome.latency_ms,
        "r_run_id": run_id,
        "r_created_at": outcome.at,
        "r_updated_at": outcome.at,
        "pid": prospect_id,
        "records": Jsonb({source: outcome.record()}),
        "now": now or outcome.at or utcnow(),
    }
    if with_data:
        params["data"] = params["r_data"]
        if source == SUMMARY_SOURCE:
            params["text"] = summary_text(outcome.data)
    execute(app_db_url, _SAVES[(source, with_data)], params)


def write_records(
    engine: sa.Engine,
    outcomes: Mapping[tuple[uuid.UUID, str], SourceOutcome],
    *,
    now: datetime,
) -> None:
    """Put stored outcomes back on their prospects (a reused summary whose pending record the
    start of the run had set)."""
    if not outcomes:
        return
    with short_write(engine) as conn:
        for (pid, source), outcome in outcomes.items():
            write_to_prospect(conn, prospect_id=pid, source=source, outcome=outcome, now=now)


def finish_batch(engine: sa.Engine, batch_key: str, *, now: datetime) -> dict[uuid.UUID, str]:
    """Merge each prospect's per-source records into `enrichment_status` (complete / failed),
    close the batch's requests (done / failed) and refresh the bulk jobs. A prospect whose
    record column is unreadable stays failed with its reason. Returns {prospect_id: status}."""
    with engine.begin() as conn:
        prospects = batch_prospects(conn, batch_key)
        final: dict[uuid.UUID, str] = {}
        malformed = {p["id"]: p["malformed"] for p in prospects if p["malformed"]}
        for p in prospects:
            if p["malformed"]:
                final[p["id"]] = "failed"
                continue
            record = p["enrichment_source_status"]
            status = overall_status({s: record[s] for s in DATA_SOURCES if s in record})
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
        if malformed:
            _fail_malformed(conn, batch_key, malformed, now=now)
        refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return final


def fail_batch(
    engine: sa.Engine, batch_key: str, *, error: str, run_id: str | None, now: datetime
) -> int:
    """What a failed or canceled run leaves behind: the batch's `in_progress` prospects become
    `failed`, the sources it left `pending` on them `failed` with the run's error (no spinner
    forever), its open requests `failed` with the run's error, and the jobs are refreshed.
    Prospects the run already finished keep their status. Returns the prospects marked failed."""
    reason = f"run {run_id or '?'} failed: {error}"[:2000]
    with engine.begin() as conn:
        open_requests = sa.select(_REQ.c.prospect_id).where(
            _REQ.c.batch_key == batch_key, _REQ.c.status.in_(("queued", "running"))
        )
        ids = [
            r.id
            for r in conn.execute(
                sa.select(_PROS.c.id).where(
                    _PROS.c.id.in_(open_requests), _PROS.c.enrichment_status == "in_progress"
                )
            )
        ]
        if ids:
            conn.execute(
                sa.text(load_sql("enrichment_fail_pending_sources")).bindparams(
                    sa.bindparam("ids", type_=postgresql.ARRAY(sa.Uuid(as_uuid=True))),
                    sa.bindparam("now", type_=_PROS.c.updated_at.type),
                ),
                {
                    "ids": ids,
                    "now": now,
                    "record": json.dumps(
                        {"status": FAILED, "error": reason, "at": as_utc(now).isoformat()}
                    ),
                },
            )
        conn.execute(
            sa.update(_REQ)
            .where(_REQ.c.batch_key == batch_key, _REQ.c.status.in_(("queued", "running")))
            .values(status="failed", reason=reason, updated_at=now)
        )
        refresh_jobs(conn, batch_job_ids(conn, batch_key), now=now)
    return len(ids)


def outcome_counts(
    results: Mapping[tuple[uuid.UUID, str], SourceOutcome],
) -> dict[str, dict[str, int]]:
    """{source: {status: count}} of stored outcomes."""
    counts: dict[str, dict[str, int]] = {}
    for (_, source), outcome in results.items():
        per = counts.setdefault(source, {})
        per[outcome.status] = per.get(outcome.status, 0) + 1
    return counts
