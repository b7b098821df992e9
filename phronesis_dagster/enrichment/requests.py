"""The request contract with the web app and the sensor's planning of a tick.

The web app inserts `enrichment_requests` rows (see docs/web_app_contract.md), one per prospect,
optionally under an `enrichment_jobs` row for bulk requests. `enqueue_enrichment` is the Python
helper for that insert. `plan_tick` decides, for the pending requests of one sensor tick, which are
rejected, which are already fresh, and how the rest are coalesced and batched; `apply_plan` writes
that decision in one transaction.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest, UtcDateTime
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.progress import write_job_progress

DEFAULT_BATCH_SIZE = 100
# The sensor's freshness window, and the default `p_staleness` of the SQL function
# `phronesis_request_enrichment` (migration 0005), which cannot import it: changing it takes a
# new migration, and tests/db/test_request_enrichment.py fails until there is one.
DEFAULT_STALENESS = timedelta(days=7)
# 50 batches of 100: a 5,000-prospect list is queued in one tick, and a tick over 10,000 pending
# requests stays far under Dagster's 60 s budget (bench/enrichment.py measures it).
DEFAULT_MAX_REQUESTS_PER_TICK = 5_000
DEFAULT_MAX_REEMIT_PER_TICK = 100
# A rep's single "Enrich" click (a request without a job) is waited for: such requests go in small
# batches of their own, launched ahead of every bulk batch, so one run finishes them in seconds.
DEFAULT_INTERACTIVE_BATCH_SIZE = 10
INTERACTIVE = "interactive"
BULK = "bulk"
# Both lanes: one sensor for all requests (tests, the local runner).
ALL_LANES = "all"
LANES = (INTERACTIVE, BULK, ALL_LANES)
# The run tag that carries a batch's lane (the run queue's limits and a bulk run's CPU priority
# read it).
LANE_TAG = "phronesis/lane"
# Dagster's run queue launches higher `dagster/priority` first, oldest first among equals.
# Interactive batches outrank every bulk batch; a tenant's n-th outstanding bulk batch gets
# priority -n, so the queue takes turns between tenants instead of draining one tenant's
# 50,000-prospect job before another tenant's first batch.
INTERACTIVE_PRIORITY = 100
JOB_ERROR_LOG_LIMIT = 1_000
_IN_CHUNK = 500


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | str | None) -> datetime | None:
    """A timezone-aware UTC datetime from a database value or an ISO-8601 string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def enqueue_enrichment(
    engine: sa.Engine,
    *,
    tenant_id: uuid.UUID | str,
    prospect_ids: Iterable[uuid.UUID | str],
    requested_by: uuid.UUID | str | None = None,
    force: bool = False,
) -> uuid.UUID | None:
    """Ask for `prospect_ids` of `tenant_id` to be enriched; what the web app's "Enrich" button
    and bulk enqueue do. Ids are the web app's UUIDs (`uuid.UUID` or their text form).

    Inserts one pending `enrichment_requests` row per distinct prospect. For more than one
    prospect it first creates an `enrichment_jobs` row (total = number of prospects) and returns
    its UUID, which the web app polls for progress; for a single prospect it returns None. Every
    id is checked before anything is written, so a malformed one raises and writes nothing. The
    sensor validates the rows later, so an unknown prospect is accepted here and rejected there
    with a reason. (For one click the web app calls the SQL function
    `phronesis_request_enrichment` instead, which answers a fresh prospect `done` at once and
    refuses an unknown one: docs/web_app_contract.md.)
    """
    tenant = _require_uuid("tenant_id", tenant_id)
    user = _require_uuid("requested_by", requested_by) if requested_by is not None else None
    if isinstance(prospect_ids, str | bytes | uuid.UUID):
        raise TypeError("prospect_ids must be a list of prospect ids, not a single id")
    ids = list(dict.fromkeys(_require_uuid("prospect id", p) for p in prospect_ids))
    if not ids:
        raise ValueError("enqueue_enrichment needs at least one prospect id")
    with engine.begin() as conn:
        job_id = None
        if len(ids) > 1:
            job_id = conn.execute(
                sa.insert(EnrichmentJob).returning(EnrichmentJob.id),
                {
                    "tenant_id": tenant,
                    "requested_by": user,
                    "status": "pending",
                    "total": len(ids),
                    "errors": [],
                },
            ).scalar_one()
        conn.execute(
            sa.insert(EnrichmentRequest),
            [
                {
                    "tenant_id": tenant,
                    "prospect_id": pid,
                    "requested_by": user,
                    "force": force,
                    "status": "pending",
                    "job_id": job_id,
                }
                for pid in ids
            ],
        )
    return job_id


def _require_uuid(what: str, value: Any) -> uuid.UUID:
    """`value` as a UUID if it is one (a `uuid.UUID` or its text form); a clear error otherwise.
    An integer, a bool or a near-miss string is refused rather than guessed at: a wrong guess
    would enrich (and bill) the wrong prospect. A UUID that names no row is accepted: the
    sensor rejects it later with a reason the web app can show."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            raise ValueError(f"{what} must be a UUID, got {value[:80]!r}") from None
    raise TypeError(f"{what} must be a UUID, got {type(value).__name__} {value!r}"[:200])


@dataclass(frozen=True)
class SensorSettings:
    """Tunables of the request sensor."""

    batch_size: int = DEFAULT_BATCH_SIZE
    staleness: timedelta = DEFAULT_STALENESS
    max_requests_per_tick: int = DEFAULT_MAX_REQUESTS_PER_TICK
    max_reemit_per_tick: int = DEFAULT_MAX_REEMIT_PER_TICK
    interactive_batch_size: int = DEFAULT_INTERACTIVE_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.interactive_batch_size < 1:
            raise ValueError(
                f"interactive_batch_size must be >= 1, got {self.interactive_batch_size}"
            )
        if self.max_requests_per_tick < 1:
            raise ValueError(
                f"max_requests_per_tick must be >= 1, got {self.max_requests_per_tick}"
            )


@dataclass(frozen=True)
class Batch:
    """One batch: a dynamic partition and one run.

    `lane` is `interactive` (requests without a job: someone is waiting) or `bulk`; a bulk batch
    holds one tenant's prospects (`tenant_id`), so the run queue can take turns between tenants.
    `priority` is the run's `dagster/priority`."""

    key: str
    request_ids: tuple[int, ...]
    prospect_ids: tuple[uuid.UUID, ...]
    lane: str = BULK
    tenant_id: uuid.UUID | None = None
    priority: int = 0


@dataclass
class TickPlan:
    """What one sensor tick decided."""

    scanned: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    fresh: list[tuple[int, str]] = field(default_factory=list)
    batches: list[Batch] = field(default_factory=list)
    deferred: int = 0
    next_after_id: int = 0
    job_ids: set[uuid.UUID] = field(default_factory=set)


# The batch keys of a sensor start with its prefix: a sensor re-emits only the batches it made
# (Dagster de-duplicates a run key per sensor).
DEFAULT_KEY_PREFIX = "batch"


def batch_key_for(first_request_id: int, prefix: str = DEFAULT_KEY_PREFIX) -> str:
    """Deterministic batch key: a request belongs to one batch, so the smallest request id of a
    batch names it uniquely, and recomputing the same tick yields the same key (and run_key)."""
    return f"{prefix}-{first_request_id}"


def _require_lane(lane: str) -> str:
    if lane not in LANES:
        raise ValueError(f"lane must be one of {', '.join(LANES)}, got {lane!r}")
    return lane


def lock_planning(conn: sa.Connection) -> None:
    """Take the planning lock until `conn`'s transaction ends: the sensors of the two lanes
    read, plan and queue under it one at a time, so a prospect that one of them has just queued
    is `busy` for the other (never two batches enriching one prospect at once)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('phronesis_enrichment_plan'))"))


def load_pending(
    conn: sa.Connection, *, after_id: int, limit: int, lane: str = ALL_LANES
) -> list[dict[str, Any]]:
    """Pending requests after `after_id` (oldest first) with their prospect, for `plan_tick`;
    of one `lane` (by prospect: every request of a prospect that a rep clicked is interactive)."""
    stmt = sa.text(load_sql("enrichment_pending_requests")).columns(p_last_enriched_at=UtcDateTime)
    params = {"after_id": after_id, "limit": limit, "lane": _require_lane(lane)}
    return [dict(r) for r in conn.execute(stmt, params).mappings()]


def _rejection(row: Mapping[str, Any]) -> str | None:
    pid = row["prospect_id"]
    if row["p_id"] is None:
        return f"prospect {pid} does not exist"
    if row["p_tenant_id"] != row["tenant_id"]:
        return f"prospect {pid} belongs to another tenant"
    missing = [
        what
        for what, key in (("name", "p_name"), ("company", "p_company"))
        if not (row[key] or "").strip()
    ]
    if missing:
        return f"prospect {pid} has no {' and no '.join(missing)}: nothing to search providers by"
    return None


def plan_tick(
    rows: Sequence[Mapping[str, Any]],
    settings: SensorSettings,
    *,
    now: datetime,
    limit: int,
    outstanding: Mapping[Any, int] | None = None,
    lane: str = ALL_LANES,
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> TickPlan:
    """Validate, coalesce and batch the pending `rows` of one tick (no I/O). The rows of the
    `interactive` lane (`load_pending`) all go into interactive batches, even a prospect whose
    click fell outside this tick's scan: that sensor re-emits only interactive batches.

    - unknown prospect, another tenant's prospect, no name or no company: rejected with a reason;
    - a prospect already queued or running in another batch: left pending (deferred) so two runs
      never enrich the same prospect at once;
    - several requests for one prospect: coalesced into the same batch (force if any asks);
    - enriched successfully within the staleness window and no force: done, nothing called;
    - the rest, in two lanes. Interactive (no request of the prospect has a job: a rep clicked
      "Enrich" and waits): batches of at most `interactive_batch_size`, first, with priority
      `INTERACTIVE_PRIORITY`. Bulk: batches of at most `batch_size` prospects of one tenant in
      request order, public-company prospects (slow: EDGAR) in batches of their own first; a
      tenant's n-th outstanding bulk batch (counting the `outstanding` ones already queued or
      running) gets priority -n, so tenants take turns in the run queue.
    """
    outstanding = outstanding or {}
    plan = TickPlan(scanned=len(rows))
    groups: dict[uuid.UUID, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["job_id"] is not None:
            plan.job_ids.add(row["job_id"])
        reason = _rejection(row)
        if reason:
            plan.rejected.append((int(row["id"]), reason))
        elif row["busy"] or row["p_status"] == "in_progress":
            plan.deferred += 1
        else:
            groups.setdefault(row["prospect_id"], []).append(row)

    cutoff = now - settings.staleness
    to_enrich: list[tuple[uuid.UUID, list[int]]] = []
    public = {pid: bool(group[0].get("p_public")) for pid, group in groups.items()}
    tenant = {pid: group[0]["tenant_id"] for pid, group in groups.items()}
    waited_for = {
        pid: lane == INTERACTIVE or any(r["job_id"] is None for r in group)
        for pid, group in groups.items()
    }
    for pid, group in groups.items():
        ids = [int(r["id"]) for r in group]
        first = group[0]
        last = as_utc(first["p_last_enriched_at"])
        force = any(bool(r["force"]) for r in group)
        if not force and first["p_status"] == "complete" and last is not None and last >= cutoff:
            days = settings.staleness.total_seconds() / 86400
            reason = (
                f"already enriched at {last.isoformat(timespec='seconds')}, within the "
                f"{days:g}-day staleness window; request with force to re-enrich"
            )
            plan.fresh += [(i, reason) for i in ids]
        else:
            to_enrich.append((pid, ids))
    to_enrich.sort(key=lambda item: min(item[1]))

    def chunked(members: list[tuple[uuid.UUID, list[int]]], size: int, **kw: Any) -> list[Batch]:
        out = []
        for start in range(0, len(members), size):
            chunk = members[start : start + size]
            request_ids = tuple(sorted(i for _, ids in chunk for i in ids))
            out.append(
                Batch(
                    key=batch_key_for(request_ids[0], key_prefix),
                    request_ids=request_ids,
                    prospect_ids=tuple(pid for pid, _ in chunk),
                    **kw,
                )
            )
        return out

    interactive = [item for item in to_enrich if waited_for[item[0]]]
    plan.batches += chunked(
        interactive,
        settings.interactive_batch_size,
        lane=INTERACTIVE,
        priority=INTERACTIVE_PRIORITY,
    )
    bulk: list[Batch] = []
    for tenant_id in dict.fromkeys(tenant[pid] for pid, _ in to_enrich if not waited_for[pid]):
        queued_before = outstanding.get(tenant_id, 0)
        # Public-company prospects (EDGAR: ~10 SEC requests each at 10/s) are batched apart and
        # launched first: the slow batches start first and never hold back a batch of prospects
        # that only need the fast providers.
        mine: list[Batch] = []
        for is_public in (True, False):
            members = [
                item
                for item in to_enrich
                if not waited_for[item[0]]
                and tenant[item[0]] == tenant_id
                and public[item[0]] is is_public
            ]
            mine += chunked(members, settings.batch_size, lane=BULK, tenant_id=tenant_id)
        bulk += [dataclasses.replace(b, priority=-(queued_before + n)) for n, b in enumerate(mine)]
    # Stable: among equal priorities (the n-th batch of each tenant), request order.
    plan.batches += sorted(bulk, key=lambda b: -b.priority)
    # Fewer rows than asked for: the scan reached the end, so the next tick starts over and sees
    # the deferred requests at the front again.
    plan.next_after_id = int(rows[-1]["id"]) if len(rows) >= limit else 0
    return plan


def _chunks(values: Sequence[int], size: int = _IN_CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def apply_plan(conn: sa.Connection, plan: TickPlan, *, now: datetime) -> None:
    """Write a tick's decisions in `conn`'s transaction (the one that read the requests, under
    the planning lock). Every update is guarded by `status = 'pending'`, so a request the web
    app changed meanwhile is left alone."""
    req = EnrichmentRequest.__table__
    guarded = sa.and_(req.c.id == sa.bindparam("rid"), req.c.status == "pending")
    for status, decided in (("rejected", plan.rejected), ("done", plan.fresh)):
        if decided:
            conn.execute(
                sa.update(req)
                .where(guarded)
                .values(status=status, reason=sa.bindparam("why"), updated_at=now),
                [{"rid": rid, "why": why} for rid, why in decided],
            )
    for batch in plan.batches:
        for ids in _chunks(batch.request_ids):
            conn.execute(
                sa.update(req)
                .where(req.c.id.in_(ids), req.c.status == "pending")
                .values(status="queued", batch_key=batch.key, reason=None, updated_at=now)
            )
    refresh_jobs(conn, plan.job_ids, now=now)


def queued_batches(
    conn: sa.Connection,
    *,
    limit: int,
    lane: str = ALL_LANES,
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> list[Batch]:
    """Batches of `lane` whose key starts with `key_prefix` (one sensor's) queued in the
    database whose run has not started, with their lane and tenant (request ids are not loaded:
    a re-emitted run request needs only the key and the tags)."""
    rows = conn.execute(
        sa.text(load_sql("enrichment_queued_batches")),
        {"limit": limit, "lane": _require_lane(lane), "key_prefix": key_prefix},
    )
    return [
        Batch(
            key=r.batch_key,
            request_ids=(),
            prospect_ids=tuple(r.prospect_ids),
            lane=INTERACTIVE if r.interactive else BULK,
            tenant_id=r.tenant_id,
            priority=INTERACTIVE_PRIORITY if r.interactive else 0,
        )
        for r in rows
    ]


def outstanding_bulk_batches(conn: sa.Connection) -> dict[uuid.UUID, int]:
    """{tenant_id: bulk batches queued or running}: where each tenant's next batch queues."""
    rows = conn.execute(sa.text(load_sql("enrichment_outstanding_bulk_batches")))
    return {r.tenant_id: int(r.batches) for r in rows}


def refresh_jobs(conn: sa.Connection, job_ids: Iterable[uuid.UUID], *, now: datetime) -> None:
    """Recompute counters, live progress, status and error log of the given bulk jobs from
    their requests and stored results (`write_job_progress`).

    That first locks the job rows, so the reads after it see every commit before it and two runs
    finishing batches of one job at once cannot overwrite each other with stale counts or a
    stale error log.
    """
    errors_sql = sa.text(load_sql("enrichment_job_errors")).columns(at=UtcDateTime)
    job = EnrichmentJob.__table__
    write_job_progress(conn, job_ids, now=now)
    for job_id in sorted(set(job_ids), key=str):
        row = conn.execute(
            sa.select(job.c.total, job.c.processed, job.c.succeeded, job.c.failed).where(
                job.c.id == job_id
            )
        ).one_or_none()
        if row is None:
            continue
        active = conn.execute(
            sa.select(sa.func.count())
            .select_from(EnrichmentRequest.__table__)
            .where(
                EnrichmentRequest.job_id == job_id,
                EnrichmentRequest.status.in_(("queued", "running")),
            )
        ).scalar_one()
        # Live counts reach the total while the last batch still closes its requests.
        finished = row.processed >= row.total and not active
        if finished:
            status = "failed" if row.total and row.succeeded == 0 else "done"
        elif active or row.processed:
            status = "running"
        else:
            status = "pending"
        errors = [
            {
                "prospect_id": str(e.prospect_id),
                "source": e.source,
                "error": e.error,
                "at": as_utc(e.at).isoformat() if e.at else None,
            }
            for e in conn.execute(errors_sql, {"job_id": job_id, "limit": JOB_ERROR_LOG_LIMIT})
        ]
        conn.execute(
            sa.update(job)
            .where(job.c.id == job_id)
            .values(
                status=status,
                errors=errors,
                finished_at=sa.func.coalesce(job.c.finished_at, now) if finished else None,
                updated_at=now,
            )
        )


def cursor_after_id(cursor: str | None) -> int:
    """The scan position stored in the sensor cursor; 0 when missing or unreadable."""
    try:
        value = json.loads(cursor or "{}").get("after_id", 0)
        return max(int(value), 0)
    except (ValueError, TypeError, AttributeError):
        return 0
