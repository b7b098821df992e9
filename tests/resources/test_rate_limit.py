"""The shared client-side rate limit holds across processes (`phronesis_rate_limit_ask` in the
PostgreSQL app database), waiting threads do not poll it (one ask per grant in one process), a
slow ask's slot is not used, and a lost database connection neither fails the caller nor leaves
the bucket unpruned.

Every test needs PostgreSQL: the bucket lives only in the PostgreSQL app database."""

from __future__ import annotations

import bisect
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
import sqlalchemy as sa

from phronesis_dagster.db import statements
from phronesis_dagster.db.statements import libpq_url
from phronesis_dagster.resources.errors import RateLimitWaitExceeded
from phronesis_dagster.resources.rate_limit import SharedRateLimiter
from tests.resources import _workers
from tests.resources.conftest import first_ask_answered_late

pytestmark = pytest.mark.postgres


def max_in_any_second(stamps: list[float]) -> int:
    """Most grants inside any window of (almost) one second. The stamps are taken when
    `acquire()` returns, a few ms after the bucket recorded the grant, so the window is
    shortened by that jitter; without the shared limit it would still hold 24."""
    stamps = sorted(stamps)
    return max(bisect.bisect_left(stamps, t + 0.95) - i for i, t in enumerate(stamps))


def _two_processes(url: str, provider: str) -> list[float]:
    ctx = get_context("spawn")
    start = time.time() + 3.0  # both children connected before the first acquire
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        futures = [
            pool.submit(_workers.acquire_many, url, provider, 10, 12, start) for _ in range(2)
        ]
        return [t for f in futures for t in f.result()]


def test_two_processes_share_ten_per_second(pg_rdb):
    stamps = _two_processes(pg_rdb.url, "edgar")
    assert len(stamps) == 24
    assert max_in_any_second(stamps) <= 10
    assert max(stamps) - min(stamps) >= 2.0


def test_wait_is_bounded(pg_rdb):
    limiter = SharedRateLimiter("apollo", pg_rdb, 1, max_wait_seconds=0.2)
    limiter.acquire()
    with pytest.raises(RateLimitWaitExceeded):
        limiter.acquire()


def test_the_bucket_is_the_postgresql_app_db_and_nothing_else(tmp_path):
    assert libpq_url("postgresql+psycopg://u:p@h/db") == "postgresql://u:p@h/db"
    with pytest.raises(ValueError, match="needs the PostgreSQL app database"):
        libpq_url(f"sqlite:///{tmp_path}/app.db")


def _counting_asks(monkeypatch) -> list[bool]:
    """Whether each ask of the bucket was granted, in order."""
    asks: list[bool] = []
    real = SharedRateLimiter._ask

    def counting(self):  # noqa: ANN001, ANN202
        answer = real(self)
        asks.append(answer[0])
        return answer

    monkeypatch.setattr(SharedRateLimiter, "_ask", counting)
    return asks


def _grants(app_db, bucket: str) -> int:
    with app_db.connect() as conn:
        return conn.execute(
            sa.text("SELECT count(*) FROM provider_rate_limit_grants WHERE bucket = :b"),
            {"b": bucket},
        ).scalar_one()


def test_waiting_threads_do_not_poll_the_bucket(pg_rdb, monkeypatch):
    """16 threads of one process want 15 slots at 5/s: they wait about two windows, one thread
    at a time asks the bucket (a database round trip per ask), and only when its last answer
    said a slot frees: one ask per grant, not a refusal after each grant nor an ask by every
    thread on every wake-up. The grants still respect the limit."""
    from concurrent.futures import ThreadPoolExecutor

    asks = _counting_asks(monkeypatch)
    limiter = SharedRateLimiter("exa", pg_rdb, 5)

    def one(_: int) -> float:
        limiter.acquire()
        return time.monotonic()

    with ThreadPoolExecutor(16) as pool:
        stamps = list(pool.map(one, range(15)))
    assert max_in_any_second(stamps) <= 5
    # 17-19 asks with a refusal after each grant that filled the window (0006's function);
    # 30-38 with every waiting thread asking on its wake-up (pyrate-limiter).
    assert asks.count(True) == 15
    assert asks.count(False) <= 2, f"{asks.count(False)} refused asks for 15 grants"


def test_a_slot_granted_long_after_the_ask_is_not_used(pg_rdb, monkeypatch):
    """An ask that took longer than half the window margin (a saturated CPU or database) would
    send its request that much after the grant's stamp, so the slot stays spent and another is
    taken."""
    asks = first_ask_answered_late(monkeypatch)
    limiter = SharedRateLimiter("exa", pg_rdb, 5)
    limiter.acquire()
    assert asks == [True, True]  # two slots granted, the first one not used
    assert limiter.stale_grants == 1
    assert _grants(pg_rdb, "exa") == 2  # the unused slot still counts against the limit


def test_the_bucket_answers_how_long_until_a_slot_frees(pg_rdb):
    """The grant that fills the window, and a refusal, are answered with the wait until the
    oldest grant leaves it; the grants are stamped by the database when they are decided."""
    limiter = SharedRateLimiter("contactout", pg_rdb, 2)
    assert limiter._ask()[:2] == (True, 0.0)  # room left after it
    time.sleep(0.3)
    granted, wait_ms, _ = limiter._ask()  # fills the window: the first grant leaves ~0.85 s on
    assert granted
    assert limiter.window_ms - 300 - 150 < wait_ms <= limiter.window_ms - 300
    granted, wait_ms, _ = limiter._ask()
    assert not granted
    assert limiter.window_ms - 300 - 150 < wait_ms <= limiter.window_ms - 300
    assert _grants(pg_rdb, "contactout") == 2  # a refusal records nothing


def test_a_wait_longer_than_the_budget_fails_at_once(pg_rdb, monkeypatch):
    """When the bucket's last answer says the next slot frees after the caller's maximum wait,
    acquire fails without sleeping to the deadline or asking again."""
    asks = _counting_asks(monkeypatch)
    limiter = SharedRateLimiter("apollo", pg_rdb, 1, max_wait_seconds=0.5)
    limiter.acquire()  # fills the window of one: the answer says ~1.15 s until the next slot
    started = time.monotonic()
    with pytest.raises(RateLimitWaitExceeded):
        limiter.acquire()
    assert time.monotonic() - started < limiter.max_wait_seconds
    assert asks == [True]


def test_the_function_refuses_a_bucket_without_a_limit(pg_rdb):
    import psycopg

    with pytest.raises(psycopg.errors.InvalidParameterValue, match="a limit >= 1"):
        with psycopg.connect(libpq_url(pg_rdb.url), autocommit=True) as conn:
            conn.execute("SELECT phronesis_rate_limit_take('exa', 0, 1150)")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="a limit >= 1"):
        with psycopg.connect(libpq_url(pg_rdb.url), autocommit=True) as conn:
            conn.execute("SELECT * FROM phronesis_rate_limit_ask('exa', 1, 0)")
    assert _grants(pg_rdb, "exa") == 0


def test_a_dropped_bucket_connection_is_not_the_callers_failure(pg_rdb, monkeypatch):
    """The first asks lose their connection (a failover, a DBA's kill): acquire still gets a
    slot; only a connection that keeps failing reaches the caller."""
    import psycopg

    real = SharedRateLimiter._ask
    failures = iter([True, True])

    def flaky(self):  # noqa: ANN001, ANN202
        if next(failures, False):
            raise psycopg.errors.AdminShutdown("terminating connection")
        return real(self)

    monkeypatch.setattr(SharedRateLimiter, "_ask", flaky)
    SharedRateLimiter("apollo", pg_rdb, 5).acquire()
    assert _grants(pg_rdb, "apollo") == 1

    def down(self):  # noqa: ANN001, ANN202
        raise psycopg.OperationalError("server closed")

    monkeypatch.setattr(SharedRateLimiter, "_ask", down)
    with pytest.raises(psycopg.OperationalError):
        SharedRateLimiter("apollo", pg_rdb, 5).acquire()


def _kill_bucket_connections(app_db) -> int:
    """Terminate the per-call pool's server connections, as a PostgreSQL restart or failover
    does."""
    with app_db.connect() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND application_name = :name"
                ),
                {"name": statements.CALL_APPLICATION_NAME},
            ).all()
        )


def test_killed_bucket_connections_are_ridden_out_and_expired_grants_pruned(pg_rdb):
    """The limiter's server connections are killed (a restart, a failover): the next asks get
    fresh ones, no thread is left to die, and the grants that left the window are deleted by
    the next ask, so the table stays a window long."""
    limiter = SharedRateLimiter("contactout", pg_rdb, 50)
    for _ in range(5):
        limiter.acquire()
    before = set(threading.enumerate())
    assert _kill_bucket_connections(pg_rdb) >= 1
    for _ in range(5):
        limiter.acquire()
    assert _grants(pg_rdb, "contactout") == 10
    assert not [t for t in set(threading.enumerate()) - before if "rate" in t.name.lower()]

    time.sleep(limiter.window_ms / 1000 + 0.2)
    limiter.acquire()
    assert _grants(pg_rdb, "contactout") == 1
