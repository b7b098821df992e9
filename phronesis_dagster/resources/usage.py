"""Usage tracking for provider calls: `api_usage` counters and the `api_call_log`.

Every attempt appends one `api_call_log` row; the (provider, UTC date, origin) counter in
`api_usage` is incremented in the same transaction with a single
`INSERT ... ON CONFLICT DO UPDATE SET x = api_usage.x + excluded.x`, which is atomic on
PostgreSQL, so concurrent runs never lose an increment.

Tracking must never break enrichment: any database error is logged as a warning and swallowed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db.models import ApiCallLog, ApiUsage
from phronesis_dagster.resources.app_db import AppDatabase

logger = logging.getLogger(__name__)

Outcome = Literal["success", "not_found", "failure", "rate_limited", "circuit_open"]
PIPELINE_ORIGIN = "pipeline"


class UsageTracker:
    """Records provider calls in the app database. Cheap to build; holds no state itself."""

    def __init__(
        self, app_db: AppDatabase, *, origin: str = PIPELINE_ORIGIN, run_id: str | None = None
    ) -> None:
        self.app_db = app_db
        self.origin = origin
        self.run_id = run_id

    def record(
        self,
        provider: str,
        endpoint: str,
        outcome: Outcome,
        *,
        http_status: int | None = None,
        latency_ms: float | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Count one call attempt. Never raises."""
        try:
            with self.app_db.begin_short_write() as conn:
                self.write(
                    conn,
                    provider,
                    endpoint,
                    outcome,
                    http_status=http_status,
                    latency_ms=latency_ms,
                    cost_usd=cost_usd,
                )
        except Exception as exc:  # noqa: BLE001 - tracking must never block enrichment
            logger.warning("usage tracking failed for %s %s: %s", provider, endpoint, exc)

    def write(
        self,
        conn: sa.Connection,
        provider: str,
        endpoint: str,
        outcome: Outcome,
        *,
        http_status: int | None = None,
        latency_ms: float | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """`record` inside the caller's transaction `conn` (which then owns any error): lets a
        call's usage and its circuit-breaker count share one write."""
        # A no-match is a successful call (and free at ContactOut/Apollo).
        success = 1 if outcome in ("success", "not_found") else 0
        failure = 1 if outcome == "failure" else 0
        limited = 1 if outcome == "rate_limited" else 0
        cost = float(cost_usd or 0.0) if success else 0.0
        now = datetime.now(UTC)
        if outcome != "circuit_open":
            conn.execute(
                _USAGE_UPSERT,
                {
                    "u_provider": provider,
                    "u_date": now.date(),
                    "u_origin": self.origin,
                    "u_success": success,
                    "u_failure": failure,
                    "u_limited": limited,
                    "u_cost": cost,
                },
            )
        conn.execute(
            _CALL_LOG_INSERT,
            {
                "provider": provider,
                "endpoint": endpoint[:200],
                "outcome": outcome,
                "http_status": http_status,
                "latency_ms": latency_ms,
                "cost_usd": cost_usd,
                "run_id": self.run_id,
                "called_at": now,
            },
        )


# Built once with bound parameters and reused for every call: building the statement objects
# per call cost more CPU than the database work (and that time was spent holding the lock).
_CALL_LOG_INSERT = sa.insert(ApiCallLog.__table__)


def _usage_upsert() -> sa.Insert:
    """`INSERT ... ON CONFLICT DO UPDATE` adding one call's counts to its `api_usage` row."""
    table = ApiUsage.__table__
    stmt = postgresql.insert(table).values(
        provider=sa.bindparam("u_provider", type_=table.c.provider.type),
        date=sa.bindparam("u_date", type_=table.c.date.type),
        origin=sa.bindparam("u_origin", type_=table.c.origin.type),
        success_count=sa.bindparam("u_success", type_=table.c.success_count.type),
        failure_count=sa.bindparam("u_failure", type_=table.c.failure_count.type),
        rate_limited_count=sa.bindparam("u_limited", type_=table.c.rate_limited_count.type),
        cost_usd=sa.bindparam("u_cost", type_=table.c.cost_usd.type),
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.provider, table.c.date, table.c.origin],
        set_={
            "success_count": table.c.success_count + stmt.excluded.success_count,
            "failure_count": table.c.failure_count + stmt.excluded.failure_count,
            "rate_limited_count": table.c.rate_limited_count + stmt.excluded.rate_limited_count,
            "cost_usd": table.c.cost_usd + stmt.excluded.cost_usd,
            "updated_at": sa.text("now()"),
        },
    )


_USAGE_UPSERT = _usage_upsert()
