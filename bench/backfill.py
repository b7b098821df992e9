"""Benchmark: a 30-day backfill of `usage_metrics_daily` over 1,000,000 events per day on
PostgreSQL.

Creates its own database `bench_backfill_<random>` (dropped at the end), lets the
`activity_log_partitions` asset create the monthly partitions of `activity_log` (one run before
the load; a sentinel event in each earlier month is parked in DEFAULT so the asset creates that
month too, the way it rescues late rows), bulk-loads `--events-per-day` events for each of the
`--days` UTC days before today, then backfills `usage_metrics_daily_job` one run per day (what
a Dagster backfill of the daily partitions launches) on one Dagster instance. Every rolled-up
day is compared with a direct `GROUP BY tenant_id, user_id, action_type` over `activity_log`.

Usage: `.venv/bin/python bench/backfill.py [--days 30] [--events-per-day 1000000]
[--verify-days N]` (N = how many days to verify, evenly spread; default all).
The admin URL comes from PHRONESIS_BENCH_POSTGRES_URL (default: local postgres, trust auth).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import (
    activity_log_partitions,
    add_months,
    month_start,
)
from phronesis_dagster.assets.usage import activity_log, usage_metrics_daily
from phronesis_dagster.checks.usage import USAGE_CHECKS
from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import COUNTER_COLUMNS, Tenant, User
from phronesis_dagster.demo_data import insert_activity
from phronesis_dagster.jobs import usage_metrics_daily_job
from phronesis_dagster.resources.app_db import AppDatabase

ADMIN_URL = os.environ.get(
    "PHRONESIS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TENANTS, USERS_PER_TENANT = 50, 20


def seed_users(engine: sa.Engine) -> list[tuple[int, int]]:
    pairs = []
    with engine.begin() as conn:
        for t in range(TENANTS):
            tid = conn.execute(
                sa.insert(Tenant).values(name=f"Bench {t}").returning(Tenant.id)
            ).scalar_one()
            users = conn.execute(
                sa.insert(User).returning(User.id),
                [
                    {"tenant_id": tid, "email": f"{u}@{t}.bench", "full_name": f"U{u}"}
                    for u in range(USERS_PER_TENANT)
                ],
            ).scalars()
            pairs += [(tid, uid) for uid in users]
    return pairs


def expected_counts(conn: sa.Connection, day: date) -> dict[tuple[int, int], Counter]:
    """The day's counters straight from `activity_log`: an independent GROUP BY."""
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    rows = conn.execute(
        sa.text(
            "SELECT tenant_id, user_id, action_type, COUNT(*) AS n FROM activity_log "
            "WHERE created_at >= :s AND created_at < :e GROUP BY tenant_id, user_id, action_type"
        ),
        {"s": start, "e": start + timedelta(days=1)},
    )
    out: dict[tuple[int, int], Counter] = {}
    for r in rows:
        counter = out.setdefault((r.tenant_id, r.user_id), Counter())
        if r.action_type in COUNTER_COLUMNS:
            counter[COUNTER_COLUMNS[r.action_type]] += r.n
        counter["total_events"] += r.n
    return out


def stored_counts(conn: sa.Connection, day: date) -> dict[tuple[int, int], Counter]:
    columns = [*COUNTER_COLUMNS.values(), "total_events"]
    rows = conn.execute(
        sa.text(
            f"SELECT tenant_id, user_id, {', '.join(columns)} FROM usage_metrics_daily "
            "WHERE date = :d"
        ),
        {"d": day},
    ).mappings()
    return {
        (r["tenant_id"], r["user_id"]): Counter({c: r[c] for c in columns if r[c]}) for r in rows
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--verify-days", type=int, default=None, help="default: every day")
    args = parser.parse_args()

    today = datetime.now(UTC).date()
    days = [today - timedelta(days=args.days - i) for i in range(args.days)]
    name = f"bench_backfill_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    print(
        f"database {name}: {args.days} days ({days[0]} .. {days[-1]}) x "
        f"{args.events_per_day:,} events per day = {args.days * args.events_per_day:,} events"
    )
    try:
        migrate.upgrade(url)
        engine = engine_for(url)
        app_db = AppDatabase(url=url)
        pairs = seed_users(engine)
        defs = dg.Definitions(
            assets=[activity_log, usage_metrics_daily],
            asset_checks=USAGE_CHECKS,
            jobs=[usage_metrics_daily_job],
            resources={"app_db": app_db},
        )
        with dg.instance_for_test() as instance:
            # 1. partitions, by the asset: this month and ahead, then the earlier months.
            t0 = time.perf_counter()
            assert dg.materialize(
                [activity_log_partitions], instance=instance, resources={"app_db": app_db}
            ).success
            month = month_start(days[0])
            sentinels = []
            while month < month_start(today):
                sentinels.append(datetime.combine(month, dtime(12), tzinfo=UTC))
                month = add_months(month, 1)
            with engine.begin() as conn:
                for at in sentinels:
                    conn.execute(
                        sa.text(
                            "INSERT INTO activity_log (tenant_id, user_id, action_type, "
                            "created_at) VALUES (:t, :u, 'login', :at)"
                        ),
                        {"t": pairs[0][0], "u": pairs[0][1], "at": at},
                    )
            assert dg.materialize(
                [activity_log_partitions], instance=instance, resources={"app_db": app_db}
            ).success
            with engine.connect() as conn:
                parts = conn.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'activity_log' "
                        "ORDER BY 1"
                    )
                ).scalars()
                print(f"partitions (by activity_log_partitions): {', '.join(parts)}")
            print(f"  {time.perf_counter() - t0:.1f} s")

            # 2. load
            t0 = time.perf_counter()
            for i, day in enumerate(days):
                start = datetime.combine(day, dtime.min, tzinfo=UTC)
                insert_activity(
                    engine,
                    tenant_users=pairs,
                    events=args.events_per_day,
                    start=start,
                    end=start + timedelta(days=1),
                    seed=1000 + i,
                )
            load = time.perf_counter() - t0
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE activity_log"
                )
                default_rows = conn.execute(
                    sa.text("SELECT COUNT(*) FROM activity_log_default")
                ).scalar_one()
            total = args.days * args.events_per_day
            print(
                f"load: {total:,} events in {load:.1f} s ({total / load:,.0f} rows/s, COPY); "
                f"rows left in activity_log_default: {default_rows}"
            )

            # 3. backfill: one run of usage_metrics_daily_job per day.
            job = defs.resolve_job_def(usage_metrics_daily_job.name)
            per_day: list[float] = []
            t0 = time.perf_counter()
            for day in days:
                started = time.perf_counter()
                result = job.execute_in_process(instance=instance, partition_key=day.isoformat())
                assert result.success, day
                per_day.append(time.perf_counter() - started)
            backfill = time.perf_counter() - t0
            ordered = sorted(per_day)
            print(
                f"backfill: {len(days)} runs in {backfill:.1f} s; seconds per day: "
                f"mean {backfill / len(days):.2f}, median {ordered[len(ordered) // 2]:.2f}, "
                f"max {ordered[-1]:.2f}"
            )

        # 4. exactness against a direct GROUP BY.
        n_verify = args.verify_days or len(days)
        step = max(1, len(days) // n_verify)
        sample = days[::step][:n_verify]
        t0 = time.perf_counter()
        with engine.connect() as conn:
            for day in sample:
                expected, stored = expected_counts(conn, day), stored_counts(conn, day)
                if expected != stored:
                    diff = {
                        k
                        for k in expected.keys() | stored.keys()
                        if expected.get(k) != stored.get(k)
                    }
                    raise SystemExit(f"MISMATCH on {day}: {len(diff)} (tenant, user) rows differ")
            events = conn.execute(
                sa.text("SELECT SUM(total_events) FROM usage_metrics_daily")
            ).scalar_one()
        print(
            f"exact: {len(sample)} day(s) equal to GROUP BY over activity_log "
            f"({time.perf_counter() - t0:.1f} s); {events:,} events rolled up in total"
        )
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
