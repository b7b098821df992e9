"""The shared client-side rate limit holds across processes (pyrate-limiter buckets)."""

from __future__ import annotations

import bisect
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from phronesis_dagster.resources.errors import RateLimitWaitExceeded
from phronesis_dagster.resources.rate_limit import SharedRateLimiter, bucket_location
from tests.resources import _workers


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


def test_two_processes_share_ten_per_second_sqlite(rdb):
    stamps = _two_processes(rdb.url, "edgar")
    assert len(stamps) == 24
    # Each process alone would do its 12 in ~1.1 s; together 24 need > 2 windows.
    assert max_in_any_second(stamps) <= 10
    assert max(stamps) - min(stamps) >= 2.0


@pytest.mark.postgres
def test_two_processes_share_ten_per_second_postgres(pg_rdb):
    stamps = _two_processes(pg_rdb.url, "edgar")
    assert len(stamps) == 24
    assert max_in_any_second(stamps) <= 10
    assert max(stamps) - min(stamps) >= 2.0


def test_wait_is_bounded(rdb):
    limiter = SharedRateLimiter("apollo", rdb, 1, max_wait_seconds=0.2)
    limiter.acquire()
    with pytest.raises(RateLimitWaitExceeded):
        limiter.acquire()


def test_bucket_lives_next_to_the_sqlite_app_db(tmp_path):
    assert bucket_location(f"sqlite:///{tmp_path}/app.db") == str(tmp_path / "ratelimit.sqlite")
    assert bucket_location("postgresql://u:p@h/db").startswith("postgresql://u:p@h/db")


def test_waiting_threads_do_not_poll_the_bucket(rdb, monkeypatch):
    """16 threads of one process want 15 slots at 5/s: they wait about two windows, and the
    bucket (a database round trip per ask) is asked little more than once per grant, not by
    every thread on every wake-up. The grants still respect the limit."""
    from concurrent.futures import ThreadPoolExecutor

    from pyrate_limiter import Limiter

    asks = []
    real = Limiter.try_acquire

    def counting(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        asks.append(time.monotonic())
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Limiter, "try_acquire", counting)
    limiter = SharedRateLimiter("exa", rdb, 5)

    def one(_: int) -> float:
        limiter.acquire()
        return time.monotonic()

    with ThreadPoolExecutor(16) as pool:
        stamps = list(pool.map(one, range(15)))
    assert max_in_any_second(stamps) <= 5
    # Without the shared hint each waiting thread asks on every wake-up: about twice as many.
    assert len(asks) <= 22, f"{len(asks)} bucket asks for 15 grants"


@pytest.mark.postgres
def test_a_dropped_bucket_connection_is_not_the_callers_failure(pg_rdb, monkeypatch):
    """The first asks lose their connection (a failover, a DBA's kill): acquire still gets a
    slot; only a connection that keeps failing reaches the caller."""
    import psycopg
    from pyrate_limiter import Limiter

    real = Limiter.try_acquire
    failures = iter([True, True])

    def flaky(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if next(failures, False):
            raise psycopg.errors.AdminShutdown("terminating connection")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Limiter, "try_acquire", flaky)
    SharedRateLimiter("apollo", pg_rdb, 5).acquire()

    monkeypatch.setattr(
        Limiter,
        "try_acquire",
        lambda *a, **k: (_ for _ in ()).throw(psycopg.OperationalError("server closed")),
    )
    with pytest.raises(psycopg.OperationalError):
        SharedRateLimiter("apollo", pg_rdb, 5).acquire()
