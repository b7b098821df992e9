"""Client-side rate limit per provider, shared by every process, built on pyrate-limiter.

pyrate-limiter (v4) keeps the sliding-window log in a database bucket, so every process that
points at the same bucket shares one budget:

- embedded default (SQLite app DB): a `SQLiteBucket` in `ratelimit.sqlite` next to the app
  database file, guarded by a file lock (`use_file_lock=True`) so processes on the machine
  serialise their check-and-insert;
- PostgreSQL app DB: a `PostgresBucket` (table `ratelimit___<provider>` created on first use)
  that takes an exclusive table lock for each check-and-insert, so it holds across machines.

The window is 1.25 s rather than 1 s (`WINDOW_MARGIN_MS`) so that jitter between granting a slot
and the request reaching the provider never puts n + 1 requests into one of its seconds.

`acquire()` blocks until a slot is free, at most `max_wait_seconds`, then raises
`RateLimitWaitExceeded`. The `Limiter` objects cached here are only handles (connections, a
file lock); the budget itself lives in the bucket, never in process memory.
"""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import sqlalchemy as sa
from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

from phronesis_dagster.resources.app_db import AppDatabase, local_data_dir, normalize_url
from phronesis_dagster.resources.errors import RateLimitWaitExceeded

logger = logging.getLogger(__name__)

RATE_LIMIT_FILE = "ratelimit.sqlite"
_CONNECTION_ERRORS = (psycopg.OperationalError, sqlite3.OperationalError)
# Extra sleep pyrate-limiter adds to a computed wait, for clock drift between processes.
BUFFER_MS = 20
# The bucket records when a slot was granted, the provider counts when the request arrives;
# thread scheduling and network jitter between the two could put n + 1 arrivals into one of
# the provider's one-second windows, so our window is a little longer than a second.
# 250 ms: grant-to-arrival delays past 100 ms happen on a saturated 2-core machine. After the
# CPU the runs wasted was removed, 100 ms passed the two-run scale-out test five times alone but
# EDGAR still answered one 429 while the full test suite loaded the machine; SEC blocks an IP
# for ten minutes when its limit is exceeded, so the margin errs on the safe side (it costs
# EDGAR 2 of its 10 requests/s, the bulk of what separates the benchmark from its bound).
WINDOW_MARGIN_MS = 250
# Connections per provider bucket and process: the threads of a process take turns at the
# bucket (one attempt at a time), plus pyrate-limiter's background leak task.
BUCKET_POOL_SIZE = 2
# Consecutive lost bucket connections an acquire rides out before the error reaches the call.
MAX_DROPPED_CONNECTIONS = 5

# Keyed by process id too: a forked child must open its own connections and file lock.
_limiters: dict[tuple[int, str, str, int], Limiter] = {}
# One lock per limiter: the threads of a process take turns at the bucket's check-and-insert.
# With PostgreSQL each attempt takes an exclusive table lock with NOWAIT, so a dozen threads
# of one process mostly failed against each other (and queued for the 4 pooled connections);
# now they contend only with other processes. The lock holds no state: the budget stays in
# the bucket and every attempt still reads the clock when it runs.
_attempt_locks: dict[tuple[int, str, str, int], threading.Lock] = {}
# When the bucket last refused this process, it also said when a slot frees up; until then
# the process's other threads sleep instead of asking the bucket again (each ask is a database
# round trip: with dozens of waiting threads per provider, most of the limiter's cost). Only a
# hint: the budget stays in the bucket, and an attempt after the hint still asks it.
_not_before: dict[tuple[int, str, str, int], float] = {}
_lock = threading.Lock()


def bucket_location(app_db_url: str) -> str:
    """Where the bucket of an app database lives: the SQLite file next to a SQLite app DB, or
    the PostgreSQL database itself."""
    url = sa.make_url(normalize_url(app_db_url))
    if url.get_backend_name() == "sqlite":
        db_path = url.database
        folder = Path(db_path).resolve().parent if db_path and db_path != ":memory:" else None
        return str((folder or local_data_dir()) / RATE_LIMIT_FILE)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _build_limiter(location: str, provider: str, requests_per_second: int) -> Limiter:
    rates = [Rate(requests_per_second, Duration.SECOND + WINDOW_MARGIN_MS)]
    if location.startswith("postgresql"):
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import PostgresBucket

        pool = ConnectionPool(location, min_size=0, max_size=BUCKET_POOL_SIZE, open=True)
        try:
            bucket = PostgresBucket(pool, f"provider_{provider}", rates)
        except BaseException:
            pool.close()
            raise
    else:
        bucket = SQLiteBucket.init_from_file(
            rates, table=f"provider_{provider}", db_path=location, use_file_lock=True
        )
    return Limiter(bucket, buffer_ms=BUFFER_MS)


class SharedRateLimiter:
    """At most `requests_per_second` calls per second to one provider across all processes."""

    def __init__(
        self,
        provider: str,
        app_db: AppDatabase,
        requests_per_second: int,
        *,
        max_wait_seconds: float = 60.0,
    ) -> None:
        if requests_per_second < 1:
            raise ValueError("requests_per_second must be >= 1")
        self.provider = provider
        self.requests_per_second = requests_per_second
        self.max_wait_seconds = max_wait_seconds
        self.location = bucket_location(app_db.url)
        self._dropped = 0  # consecutive attempts that lost their bucket connection

    @property
    def _key(self) -> tuple[int, str, str, int]:
        return (os.getpid(), self.location, self.provider, self.requests_per_second)

    @property
    def limiter(self) -> Limiter:
        key = self._key
        with _lock:
            if key not in _limiters:
                _limiters[key] = _build_limiter(*key[1:])
            return _limiters[key]

    def _try_acquire(self) -> tuple[bool, float]:
        """(True, 0) with a slot, else (False, seconds until the next attempt may succeed)."""
        key = self._key
        with _lock:
            attempt_lock = _attempt_locks.setdefault(key, threading.Lock())
        with attempt_lock:
            not_before = _not_before.get(key, 0.0) - time.monotonic()
            if not_before > 0:
                return False, not_before
            try:
                # The first use in a process creates the bucket (and its table): inside the
                # try, so a connection lost right then is ridden out like any other.
                granted = self.limiter.try_acquire(self.provider, blocking=True, timeout=0)
            except _CONNECTION_ERRORS as exc:
                # A dropped bucket connection (a failover, a DBA's kill) is discarded by the
                # pool; the next attempt gets a fresh one. Not the call's failure.
                self._dropped += 1
                if self._dropped > MAX_DROPPED_CONNECTIONS:
                    raise
                logger.warning(
                    "rate limiter %s: bucket connection lost (%s); trying again",
                    self.provider,
                    exc,
                )
                return False, BUFFER_MS / 1000
            self._dropped = 0
            if granted:
                return True, 0.0
            wait = self._wait_hint()
            _not_before[key] = time.monotonic() + wait
            return False, wait

    def acquire(self) -> None:
        """Wait for a slot; raise `RateLimitWaitExceeded` after `max_wait_seconds`.

        Each attempt is a non-blocking check-and-insert stamped with the clock at that moment.
        pyrate-limiter's own blocking mode records a waiter at its *planned* wake-up time, so a
        thread that wakes late (a busy CPU) is logged earlier than it really went out and lets
        an extra request into the provider's second; two runs sharing EDGAR's 10/s showed it.
        """
        deadline = time.monotonic() + self.max_wait_seconds
        # timeout=0 rather than blocking=False: the latter hands `False` to the file lock as a
        # timeout (pyrate-limiter 4.5) and raises.
        while True:
            granted, wait = self._try_acquire()
            if granted:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RateLimitWaitExceeded(
                    self.provider,
                    f"no rate-limit slot within {self.max_wait_seconds:.0f} s "
                    f"({self.requests_per_second} requests/s shared by all runs)",
                )
            # Jitter keeps the waiters of several processes from retrying in lock step.
            time.sleep(min(remaining, wait + random.uniform(0, BUFFER_MS) / 1000))

    def _wait_hint(self) -> float:
        """Seconds until the bucket expects a free slot (a fraction of a slot if unknown)."""
        fallback = 1 / (2 * self.requests_per_second)
        try:
            factory = self.limiter.bucket_factory
            item = factory.wrap_item(self.provider, 1)
            delay_ms = factory.get(item).waiting(item)
        except Exception:  # noqa: BLE001 - only a hint; the next attempt re-checks anyway
            return fallback
        if not isinstance(delay_ms, int | float) or delay_ms < 0:
            return fallback
        return max(delay_ms / 1000, 0.001)
