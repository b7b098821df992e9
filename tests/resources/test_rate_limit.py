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
