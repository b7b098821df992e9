"""Faults: rollups stay exact. A backfill of several days of `usage_metrics_daily` on
PostgreSQL (one run of `usage_metrics_daily_job` per day, as a Dagster backfill launches them),
with late events landing between the runs - in days already rolled up, on the exact midnight
boundaries, and in the day being rolled up next. The reconciliation check flags each stale day,
and after the days are re-run every day equals a direct GROUP BY over `activity_log`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import activity_log_partitions
from phronesis_dagster.assets.usage import activity_log, usage_metrics_daily
from phronesis_dagster.checks.usage import USAGE_CHECKS, reconcile_result
from phronesis_dagster.db.models import ActivityLog, Tenant, User
from phronesis_dagster.demo_data import insert_activity
from phronesis_dagster.jobs import usage_metrics_daily_job
from tests.reliability.conftest import day_bounds, expected_usage, stored_usage

pytestmark = pytest.mark.postgres

DAYS = 5
EVENTS_PER_DAY = 3_000
MATCHES_CHECK = "usage_metrics_daily_matches_activity_log"


def seed_pairs(engine: sa.Engine) -> list[tuple[uuid.UUID, uuid.UUID]]:
    pairs = []
    with engine.begin() as conn:
        for t in range(3):
            tid = conn.execute(
                sa.insert(Tenant).values(name=f"Late {t}").returning(Tenant.id)
            ).scalar_one()
            for u in range(4):
                uid = conn.execute(
                    sa.insert(User)
                    .values(tenant_id=tid, email=f"{u}@late{t}.test", full_name=f"U{u}")
                    .returning(User.id)
                ).scalar_one()
                pairs.append((tid, uid))
    return pairs


def late_events(pairs, day, n: int, action: str) -> list[dict]:
    """`n` events of `day`, including both edges of its half-open window and one just outside."""
    start, end = day_bounds(day)
    stamps = [start, end - timedelta(microseconds=1), end]  # the last belongs to the next day
    stamps += [start + timedelta(minutes=37 * i) for i in range(n - len(stamps))]
    return [
        {"tenant_id": t, "user_id": u, "action_type": action, "created_at": at}
        for (t, u), at in zip(pairs * n, stamps, strict=False)
    ]


def run_day(job, instance, day) -> dict[str, bool]:
    """One backfill run for `day`; {check name: passed}."""
    result = job.execute_in_process(instance=instance, partition_key=day.isoformat())
    assert result.success
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_backfill_with_late_events_ends_exact(pg_app_db):
    engine = pg_app_db.engine
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=DAYS - i) for i in range(DAYS)]
    pairs = seed_pairs(engine)
    defs = dg.Definitions(
        assets=[activity_log, usage_metrics_daily],
        asset_checks=USAGE_CHECKS,
        jobs=[usage_metrics_daily_job],
        resources={"app_db": pg_app_db},
    )
    job = defs.resolve_job_def(usage_metrics_daily_job.name)

    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [activity_log_partitions], instance=instance, resources={"app_db": pg_app_db}
        ).success
        for i, day in enumerate(days):
            start, end = day_bounds(day)
            insert_activity(
                engine, tenant_users=pairs, events=EVENTS_PER_DAY, start=start, end=end, seed=i
            )

        # The backfill, with late events arriving between its runs.
        for i, day in enumerate(days):
            checks = run_day(job, instance, day)
            assert checks[MATCHES_CHECK], day
            if i in (1, 3):
                # Late events for the day just rolled up and for the one before it.
                for late_day in (day, days[i - 1]):
                    with engine.begin() as conn:
                        conn.execute(
                            sa.insert(ActivityLog), late_events(pairs, late_day, 20, "login")
                        )
        with engine.connect() as conn:
            differs = {d for d in days if expected_usage(conn, d) != stored_usage(conn, d)}
        # Late events after their run: days 0-1 (after day 1's run) and 2-3 (after day 3's);
        # an event at a day's `end` belongs to the next day, so day 4, rolled up last, is exact.
        assert differs == set(days[:4])

        # The reconciliation check flags exactly those days; re-running them fixes them.
        flagged = {d for d in days if not reconcile_result(pg_app_db, d).passed}
        assert flagged == differs
        for day in sorted(differs):
            assert run_day(job, instance, day)[MATCHES_CHECK]

    with engine.connect() as conn:
        for day in days:
            expected = expected_usage(conn, day)
            assert expected, day
            assert stored_usage(conn, day) == expected, day
        total = conn.execute(sa.text("SELECT SUM(total_events) FROM usage_metrics_daily")).scalar()
        window = conn.execute(
            sa.text("SELECT COUNT(*) FROM activity_log WHERE created_at >= :s AND created_at < :e"),
            {"s": day_bounds(days[0])[0], "e": day_bounds(days[-1])[1]},
        ).scalar()
    assert total == window
