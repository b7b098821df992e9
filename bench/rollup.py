"""Benchmark: one UTC day with 1,000,000 events on PostgreSQL (the web app's UUID schema).

Creates its own database `bench_rollup_<random>`, runs the partition maintenance, seeds the day
with `insert_activity`, then times three ways of producing the day's per-user counters:

- ours:   `rollup_usage_day` (the SQL path the `usage_metrics_daily` asset runs, lists_created's
          first-ever-add anti-join included), in a transaction
- floor:  a bare `SELECT ... GROUP BY tenant_id, user_id` over the same rows (nothing written)
- pandas: read the day's rows with SQLAlchemy, group in pandas, write the result back

Usage: `.venv/bin/python bench/rollup.py [--events N] [--repeat R]` (median of R for each).
The admin URL comes from PHRONESIS_BENCH_POSTGRES_URL (default: local postgres, trust auth).
"""

import argparse
import os
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime

import pandas as pd
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import ensure_activity_log_partitions
from phronesis_dagster.assets.usage import (
    counter_aggregates,
    day_window_params,
    rollup_usage_day,
    sql_statement,
)
from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import COUNTER_COLUMNS, Tenant, User
from phronesis_dagster.demo_data import insert_activity

ADMIN_URL = os.environ.get(
    "PHRONESIS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DAY = date(2025, 6, 11)
TENANTS, USERS_PER_TENANT = 50, 20
DAY_WINDOW = "created_at >= :start AND created_at < :end"


def seed(engine: sa.Engine, events: int) -> None:
    pairs = []
    with engine.begin() as conn:
        ensure_activity_log_partitions(conn, today=DAY, months_ahead=1)
        for t in range(TENANTS):
            tid = conn.execute(
                sa.insert(Tenant).values(name=f"Bench {t}").returning(Tenant.id)
            ).scalar_one()
            for u in range(USERS_PER_TENANT):
                uid = conn.execute(
                    sa.insert(User)
                    .values(tenant_id=tid, email=f"{u}@{t}.bench", full_name=f"U{u}")
                    .returning(User.id)
                ).scalar_one()
                pairs.append((tid, uid))
    start = datetime.combine(DAY, dtime.min, tzinfo=UTC)
    # The day itself, plus a day either side so the window has to prune (and the day before
    # gives lists_created's anti-join a history to probe).
    for offset, n in ((-1, events // 10), (0, events), (1, events // 10)):
        s = start + timedelta(days=offset)
        insert_activity(
            engine,
            tenant_users=pairs,
            events=n,
            start=s,
            end=s + timedelta(days=1),
            seed=100 + offset,
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
            "VACUUM ANALYZE activity_log"
        )


def time_ours(engine: sa.Engine) -> tuple[float, int]:
    t0 = time.perf_counter()
    with engine.begin() as conn:
        stats = rollup_usage_day(conn, DAY)
    return time.perf_counter() - t0, stats.events


def time_floor(engine: sa.Engine) -> tuple[float, int]:
    sql = (
        f"SELECT tenant_id, user_id, {counter_aggregates()}, COUNT(*) AS total_events "
        f"FROM activity_log WHERE {DAY_WINDOW} GROUP BY tenant_id, user_id"
    )
    t0 = time.perf_counter()
    with engine.connect() as conn:
        rows = conn.execute(sql_statement(sql), day_window_params(DAY)).all()
    return time.perf_counter() - t0, sum(r.total_events for r in rows)


def time_pandas(engine: sa.Engine) -> tuple[float, int]:
    t0 = time.perf_counter()
    with engine.connect() as conn:
        df = pd.read_sql_query(
            sql_statement(
                f"SELECT tenant_id, user_id, action_type FROM activity_log WHERE {DAY_WINDOW}"
            ),
            conn,
            params=day_window_params(DAY),
        )
    counts = pd.crosstab([df["tenant_id"], df["user_id"]], df["action_type"])
    counts = counts.reindex(columns=list(COUNTER_COLUMNS), fill_value=0)
    counts.columns = [COUNTER_COLUMNS[a] for a in counts.columns]
    counts["total_events"] = counts.sum(axis=1)
    out = counts.reset_index()
    now = datetime.now(UTC)
    out.insert(0, "date", DAY)
    out["created_at"] = now
    out["updated_at"] = now
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM usage_metrics_daily WHERE date = :d"), {"d": DAY})
        out.to_sql(
            "usage_metrics_daily",
            conn,
            if_exists="append",
            index=False,
            method="multi",
            chunksize=5000,
            # pandas would send the UUID keys as VARCHAR, which PostgreSQL will not cast.
            dtype={"tenant_id": sa.Uuid(), "user_id": sa.Uuid()},
        )
    return time.perf_counter() - t0, int(out["total_events"].sum())


def median(fn, engine: sa.Engine, repeat: int) -> tuple[float, int]:
    runs = [fn(engine) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), runs[0][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    name = f"bench_rollup_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        engine = engine_for(url)
        t0 = time.perf_counter()
        seed(engine, args.events)
        print(
            f"database {name}: seeded {args.events:,} events on {DAY} "
            f"(+10% on each neighbour day) in {time.perf_counter() - t0:.1f}s"
        )
        floor, n_floor = median(time_floor, engine, args.repeat)
        ours, n_ours = median(time_ours, engine, args.repeat)
        pandas_s, n_pandas = median(time_pandas, engine, args.repeat)
        assert n_ours == n_floor == n_pandas == args.events, (n_ours, n_floor, n_pandas)
        print(f"ours   (rollup_usage_day, delete+insert in a transaction): {ours:8.3f} s")
        print(f"floor  (bare SELECT ... GROUP BY, nothing written):        {floor:8.3f} s")
        print(f"pandas (read rows, group in pandas, write back):           {pandas_s:8.3f} s")
        print(f"ours / floor  = {ours / floor:.2f}x  (target <= 1.5x)")
        print(f"pandas / ours = {pandas_s / ours:.2f}x  (target >= 3x)")
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
