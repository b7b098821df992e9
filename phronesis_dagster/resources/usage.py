"""Usage tracking for provider calls: `api_usage` counters and the `api_call_log`.

Every attempt appends one `api_call_log` row and increments the (provider, UTC date, origin)
counter in `api_usage`, in the one statement of `call_ledger.write_call` (which a provider
call's guard also uses to count the breaker's outcome in the same write).

Tracking must never break enrichment: any database error is logged as a warning and swallowed.
"""

from __future__ import annotations

import logging

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.call_ledger import (
    PIPELINE_ORIGIN,
    CallRecord,
    Outcome,
    write_call,
)

logger = logging.getLogger(__name__)

__all__ = ["PIPELINE_ORIGIN", "Outcome", "UsageTracker"]


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
        """Count one call attempt (the breaker is not told). Never raises."""
        call = CallRecord(provider, endpoint, outcome, http_status, latency_ms, cost_usd)
        try:
            write_call(self.app_db.database_url, call, origin=self.origin, run_id=self.run_id)
        except Exception as exc:  # noqa: BLE001 - tracking must never block enrichment
            logger.warning("usage tracking failed for %s %s: %s", provider, endpoint, exc)
