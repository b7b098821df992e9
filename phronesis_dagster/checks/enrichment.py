"""Asset checks of the enrichment domain, on `enriched_prospects`: no prospect stuck
`in_progress`, and each source's recent failure rate under a threshold (a warning: a provider
having a bad day is not a data error, but someone should look)."""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.assets import enriched_prospects
from phronesis_dagster.assets.table_metadata import BOOL, FLOAT, INT, STRING, table_metadata
from phronesis_dagster.db.models import UtcDateTime
from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.requests import as_utc, utcnow
from phronesis_dagster.resources.app_db import AppDatabase

ENRICHMENT_NOT_STUCK_CHECK = "no_prospect_stuck_in_progress"
ENRICHMENT_FAILURE_RATE_CHECK = "source_failure_rate_below_threshold"
STUCK_AFTER = timedelta(hours=1)
FAILURE_RATE_WINDOW = timedelta(hours=24)
FAILURE_RATE_THRESHOLD = 0.2
# Below this many calls a rate says little (2 failures of 3 calls is not an outage).
FAILURE_RATE_MIN_CALLS = 20


def stuck_prospects_result(
    app_db: AppDatabase, *, now: datetime | None = None, stuck_after: timedelta = STUCK_AFTER
) -> dg.AssetCheckResult:
    """Fails when a prospect has been `in_progress` for longer than `stuck_after`."""
    now = now or utcnow()
    stmt = sa.text(load_sql("enrichment_stuck_prospects")).bindparams(
        sa.bindparam("cutoff", type_=UtcDateTime)
    )
    with app_db.connect() as conn:
        rows = conn.execute(stmt, {"cutoff": now - stuck_after}).all()
    oldest = as_utc(rows[0].updated_at) if rows else None
    return dg.AssetCheckResult(
        check_name=ENRICHMENT_NOT_STUCK_CHECK,
        passed=not rows,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None
        if not rows
        else f"{len(rows)} prospect(s) in_progress for more than {stuck_after}: their run died "
        "without the failure sensor closing the batch; re-run the batch or enqueue them again",
        metadata={
            "stuck_prospects": len(rows),
            "oldest_since": oldest.isoformat() if oldest else "",
            "prospects_sample": table_metadata(
                [
                    {"prospect_id": r.id, "tenant_id": r.tenant_id, "since": as_utc(r.updated_at)}
                    for r in rows[:50]
                ],
                [("prospect_id", STRING), ("tenant_id", STRING), ("since", STRING)],
                {"since": "in_progress since (the 50 longest stuck)"},
            ),
        },
    )


def failure_rate_result(
    app_db: AppDatabase,
    *,
    now: datetime | None = None,
    window: timedelta = FAILURE_RATE_WINDOW,
    threshold: float = FAILURE_RATE_THRESHOLD,
    min_calls: int = FAILURE_RATE_MIN_CALLS,
) -> dg.AssetCheckResult:
    """Warns when a source failed (or hit an open circuit) for more than `threshold` of its
    calls in the last `window`, counting only sources with at least `min_calls` calls."""
    now = now or utcnow()
    stmt = sa.text(load_sql("enrichment_source_failure_rates")).bindparams(
        sa.bindparam("since", type_=UtcDateTime)
    )
    with app_db.connect() as conn:
        rows = conn.execute(stmt, {"since": now - window}).all()
    rates = {r.source: (int(r.failures or 0), int(r.calls)) for r in rows}
    over = {
        s: round(f / c, 3) for s, (f, c) in rates.items() if c >= min_calls and f / c > threshold
    }
    return dg.AssetCheckResult(
        check_name=ENRICHMENT_FAILURE_RATE_CHECK,
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=None
        if not over
        else "failure rate above "
        + f"{threshold:.0%} in the last {window}: "
        + ", ".join(f"{s} {r:.0%}" for s, r in sorted(over.items())),
        metadata={
            "threshold": threshold,
            "failure_rate_by_source": table_metadata(
                [
                    {
                        "source": s,
                        "calls": c,
                        "failures": f,
                        "failure_rate": round(f / c, 3) if c else 0.0,
                        "over_threshold": s in over,
                    }
                    for s, (f, c) in rates.items()
                ],
                [
                    ("source", STRING),
                    ("calls", INT),
                    ("failures", INT),
                    ("failure_rate", FLOAT),
                    ("over_threshold", BOOL),
                ],
                {
                    "failures": "failed or circuit_open",
                    "over_threshold": f"counts only with at least {min_calls} calls",
                },
            ),
        },
    )


@dg.asset_check(asset=enriched_prospects, name=ENRICHMENT_NOT_STUCK_CHECK)
def no_prospect_stuck_in_progress(app_db: AppDatabase) -> dg.AssetCheckResult:
    """No prospect may stay `in_progress` for more than an hour: that means a batch run died
    without its failure sensor marking it failed."""
    return stuck_prospects_result(app_db)


@dg.asset_check(asset=enriched_prospects, name=ENRICHMENT_FAILURE_RATE_CHECK)
def source_failure_rate_below_threshold(app_db: AppDatabase) -> dg.AssetCheckResult:
    """Warns when a provider failed for more than 20% of its enrichment calls in the last 24
    hours (at least 20 calls)."""
    return failure_rate_result(app_db)


ENRICHMENT_CHECKS = [no_prospect_stuck_in_progress, source_failure_rate_below_threshold]
