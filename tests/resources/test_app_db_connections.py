"""A run process's connection budget on a PostgreSQL app database: however many provider
threads write their bookkeeping at once, the process keeps a bounded number of connections, so
several concurrent runs fit PostgreSQL's max_connections instead of failing with "too many
clients" and losing usage counts."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from phronesis_dagster.db.engine import (
    DATABASE_URL_ENV,
    PG_POOL_SIZE,
    DatabaseUrlMissing,
    default_database_url,
    engine_for,
    short_write,
)
from phronesis_dagster.db.statements import CALL_POOL_SIZE
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.usage import UsageTracker
from tests.conftest import POSTGRES_ADMIN_URL

pytestmark = pytest.mark.postgres


def connections_to(database: str) -> int:
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return conn.execute(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                {"db": database},
            ).scalar_one()
    finally:
        admin.dispose()


def test_sixty_threads_share_a_bounded_pool_and_lose_no_count(pg_rdb):
    database = sa.make_url(pg_rdb.url).database
    tracker = UsageTracker(pg_rdb)
    peak = 0

    def call(i: int) -> None:
        tracker.record("exa", "/search", "success", http_status=200, latency_ms=1.0)
        # Hold a connection a moment, as a slow write under load would.
        with short_write(pg_rdb.engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(0.02)"))

    with ThreadPoolExecutor(60) as pool:
        futures = [pool.submit(call, i) for i in range(600)]
        while not all(f.done() for f in futures):
            peak = max(peak, connections_to(database))
            time.sleep(0.02)
        for f in futures:
            f.result()

    # The engine's pool (the held connections) and the per-call statements' pool (the counts).
    assert 1 <= peak <= PG_POOL_SIZE + CALL_POOL_SIZE
    with pg_rdb.connect() as conn:
        counted = conn.execute(
            sa.text("SELECT success_count FROM api_usage WHERE provider = 'exa'")
        ).scalar_one()
        logged = conn.execute(sa.text("SELECT count(*) FROM api_call_log")).scalar_one()
    assert counted == logged == 600


def test_an_unset_url_is_one_clear_line_and_definitions_still_load(monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    resource = AppDatabase()  # what definitions.py builds at import: must not fail
    with pytest.raises(DatabaseUrlMissing, match=DATABASE_URL_ENV) as raised:
        resource.engine  # noqa: B018 - the first use is where it must fail
    assert "\n" not in str(raised.value)
    with pytest.raises(DatabaseUrlMissing):
        default_database_url()


def test_a_sqlite_url_is_refused_by_name():
    with pytest.raises(ValueError, match="must be PostgreSQL"):
        engine_for("sqlite:///app.db")
