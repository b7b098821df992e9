"""The one write of a provider call: usage counters, the call log and the breaker's count.

Every provider call attempt ends in `write_call`, one statement (`db/sql/provider_call_record.sql`)
and so one database round trip in one transaction: the attempt's counts in `api_usage`, its
`api_call_log` row and, for the attempt that decides the call, its outcome in the provider's
shared circuit breaker (`provider_circuit_state`). Nothing is buffered in memory: a process
killed after an attempt has either written all of it or none of it.

`api_usage` is incremented with `INSERT ... ON CONFLICT DO UPDATE SET x = api_usage.x +
excluded.x`, atomic on PostgreSQL, so concurrent runs never lose an increment; the breaker's
window and its closed -> open transition are one conditional UPDATE of the provider's row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from phronesis_dagster.db.sql_files import load_statement
from phronesis_dagster.db.statements import compile_statement, execute
from phronesis_dagster.resources.redis_counters import count_provider_call

Outcome = Literal["success", "not_found", "failure", "rate_limited", "circuit_open"]
PIPELINE_ORIGIN = "pipeline"
ENDPOINT_MAX_CHARS = 200
LAST_ERROR_MAX_CHARS = 500


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One attempt at a provider (or a call the breaker skipped: outcome `circuit_open`)."""

    provider: str
    endpoint: str
    outcome: Outcome
    http_status: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class BreakerCount:
    """How the attempt that decided a call counts in its provider's breaker: `failed` (the
    provider's own failure: 5xx, timeouts, malformed bodies) or healthy; `probe` = the call was
    the half-open probe, whose outcome closes or re-opens the circuit."""

    provider: str
    failed: bool
    probe: bool
    error: str | None
    min_calls: int
    failure_rate_threshold: float
    window_seconds: float


@dataclass(frozen=True, slots=True)
class BreakerRow:
    """The breaker row as the write left it."""

    state: str
    tripped: bool  # this write opened the circuit (closed -> open)
    window_failures: int
    window_calls: int


_STATEMENT = compile_statement(sa.text(load_statement("provider_call_record")))


def write_call(
    app_db_url: str,
    call: CallRecord | None,
    breaker: BreakerCount | None = None,
    *,
    origin: str = PIPELINE_ORIGIN,
    run_id: str | None = None,
) -> BreakerRow | None:
    """Record `call` (usage + call log; None = nothing to log) and count `breaker` (None =
    the breaker is not told), in one statement on a connection of `db.statements` (autocommit:
    the statement is atomic by itself). Returns the breaker row as left by the write (None when
    the breaker was not counted, or its row does not exist)."""
    now = datetime.now(UTC)
    outcome: Outcome = call.outcome if call is not None else "circuit_open"
    # A no-match is a successful call (and free at ContactOut/Apollo).
    success = outcome in ("success", "not_found")
    if call is not None and success:
        # The web app's Redis card counts every successful call (fire-and-forget, queued).
        count_provider_call(call.provider, now.date())
    error = breaker.error[:LAST_ERROR_MAX_CHARS] if breaker and breaker.error else None
    window = breaker.window_seconds if breaker else 0.0
    params = {
        "logged": call is not None,
        "provider": call.provider if call is not None else breaker.provider if breaker else "",
        "day": now.date(),
        "origin": origin,
        "outcome": outcome,
        "success": int(success),
        "failure": int(outcome == "failure"),
        "limited": int(outcome == "rate_limited"),
        "usage_cost": float(call.cost_usd or 0.0) if call is not None and success else 0.0,
        "endpoint": call.endpoint[:ENDPOINT_MAX_CHARS] if call is not None else "",
        "http_status": call.http_status if call is not None else None,
        "latency_ms": call.latency_ms if call is not None else None,
        "cost_usd": call.cost_usd if call is not None else None,
        "run_id": run_id,
        "now": now,
        "counted": breaker is not None,
        "probe": bool(breaker and breaker.probe),
        "fail": int(bool(breaker and breaker.failed)),
        "error": error,
        "window_start": now - timedelta(seconds=window),
        "min_calls": breaker.min_calls if breaker else 0,
        "threshold": breaker.failure_rate_threshold if breaker else 1.0,
    }
    row = execute(app_db_url, _STATEMENT, params)
    if row is None:
        return None
    state, tripped, window_failures, window_calls = row
    return BreakerRow(
        state=state,
        tripped=bool(tripped),
        window_failures=int(window_failures),
        window_calls=int(window_calls),
    )
