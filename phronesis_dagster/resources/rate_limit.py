"""Client-side rate limit per provider, shared by every process, built on pyrate-limiter.

pyrate-limiter (v4) keeps the sliding-window log in a database bucket, so every process that
points at the same bucket shares one budget: a `PostgresBucket` in the PostgreSQL app database
(table `ratelimit___provider_<provider>`, created on first use) that takes an exclusive table
lock for each check-and-insert, so it holds across processes and machines.

The window is 1.15 s rather than 1 s (`WINDOW_MARGIN_MS`) so that jitter between granting a slot
and the request reaching the provider never puts n + 1 requests into one of its seconds.

`acquire()` blocks until a slot is free, at most `max_wait_seconds`, then raises
`RateLimitWaitExceeded`. The `Limiter` objects cached here are only handles (a connection pool);
the budget itself lives in the bucket, never in process memory.

No background thread: pyrate-limiter prunes expired rows from a leaker thread whose loop only
catches `RuntimeError`, so a lost PostgreSQL connection or a pool timeout during a prune killed
the thread for good (the bucket then grew without bound, and the test suite saw
`PytestUnhandledThreadExceptionWarning`). The limiter is built with `schedule_leak=False`
instead and the acquiring thread prunes every `PRUNE_INTERVAL_SECONDS` (`_maybe_prune`); a
failed prune is logged and tried again at the next interval.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time

import psycopg
import sqlalchemy as sa
from psycopg_pool import ConnectionPool, PoolTimeout
from pyrate_limiter import Duration, Limiter, Rate
from pyrate_limiter.limiter import SingleBucketFactory

from phronesis_dagster.db.engine import normalize_url
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.errors import RateLimitWaitExceeded

logger = logging.getLogger(__name__)

# What a lost or exhausted bucket connection raises: the server went away (psycopg) or no pooled
# connection came free in time (psycopg_pool).
_CONNECTION_ERRORS = (psycopg.OperationalError, PoolTimeout)
# Extra sleep pyrate-limiter adds to a computed wait, for clock drift between processes.
BUFFER_MS = 20
# The bucket records when a slot was granted, the provider counts when the request arrives;
# thread scheduling and network jitter between the two could put n + 1 arrivals into one of
# the provider's one-second windows, so our window is a little longer than a second.
# 150 ms: measured grant-to-arrival since the slot is taken on the wire (call_guard.on_wire)
# and the emulator accepts at once: p99 10-47 ms, single stalls of 100-240 ms under load, which
# the stale-grant check below keeps out (a slot whose ask took over 75 ms is not used). With
# both, the two-run scale-out test passed three times in a row and the 2,000-prospect benchmark
# at published limits ran at 1.19x its bound with no 429 (BENCHMARKS.md, 2026-12-03). It was
# 250 ms before (8/s of Exa's and SEC's 10/s), after EDGAR once answered 429 at 100 ms while
# the full suite loaded the machine; SEC blocks an IP for ten minutes when its limit is
# exceeded, so if an over-limit answer shows up again, widen this first.
WINDOW_MARGIN_MS = 150
# A slot whose ask took longer than this is not used (another is taken): the bucket stamps a
# slot when the ask begins, and a slow ask (a saturated CPU or database) leaves the request
# going out that much later than its stamp. Half the margin, so that a used slot has at least
# the other half for the way from here to the provider. Measured in the benchmark at published
# limits (2,000 prospects, 4 niced bulk runs on 2 cores): a ContactOut 429 with every slot used
# as granted, none after.
STALE_GRANT_SECONDS = WINDOW_MARGIN_MS / 2 / 1000
# Connections per provider bucket and process: the threads of a process take turns at the
# bucket (one attempt at a time), plus a prune now and then.
BUCKET_POOL_SIZE = 2
# Consecutive lost bucket connections an acquire rides out before the error reaches the call.
MAX_DROPPED_CONNECTIONS = 5
BUCKET_APPLICATION_NAME = "phronesis-rate-limit"
# How often a process deletes the expired rows of a bucket (pyrate-limiter's leak interval).
PRUNE_INTERVAL_SECONDS = 10.0

# Keyed by process id too: a forked child must open its own connections.
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
# When this process prunes each bucket next (monotonic clock). Which process prunes does not
# matter: every one that uses a bucket does it now and then.
_next_prune: dict[tuple[int, str, str, int], float] = {}
_lock = threading.Lock()


def bucket_location(app_db_url: str) -> str:
    """The PostgreSQL database that holds the buckets: the app database itself (as a libpq
    URL for the bucket's psycopg pool). Any other database is an error: the budget must be
    shared by every process, and only the PostgreSQL app database is."""
    url = sa.make_url(normalize_url(app_db_url))
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            "the shared rate limiter needs the PostgreSQL app database, got a "
            f"{url.get_backend_name()!r} URL"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _build_limiter(location: str, provider: str, requests_per_second: int) -> Limiter:
    from pyrate_limiter import PostgresBucket

    rates = [Rate(requests_per_second, Duration.SECOND + WINDOW_MARGIN_MS)]
    pool = ConnectionPool(
        location,
        min_size=0,
        max_size=BUCKET_POOL_SIZE,
        # Named, so pg_stat_activity tells the limiter's connections from the app's.
        kwargs={"application_name": BUCKET_APPLICATION_NAME},
        open=True,
    )
    try:
        bucket = PostgresBucket(pool, f"provider_{provider}", rates)
    except BaseException:
        pool.close()
        raise
    # schedule_leak=False: no leaker thread (see the module docstring); `_maybe_prune` leaks.
    return Limiter(SingleBucketFactory(bucket, schedule_leak=False), buffer_ms=BUFFER_MS)


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
        self._app_db_url = app_db.url
        self._dropped = 0  # consecutive attempts that lost their bucket connection
        self.stale_grants = 0  # slots not used: granted too long after the ask

    @functools.cached_property
    def location(self) -> str:
        """The bucket's database (`bucket_location`); a non-PostgreSQL app database is an
        error at the first acquire."""
        return bucket_location(self._app_db_url)

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
        """(True, 0) with a slot, else (False, seconds until the next attempt may succeed).
        A slot granted later than `STALE_GRANT_SECONDS` after the ask began is (False, 0): it
        stays spent in the bucket (a conservative error) and the caller asks again."""
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
                # timeout=0 rather than blocking=False: pyrate-limiter 4.5 hands `False` on to
                # its lock as a timeout and raises.
                asked = time.monotonic()
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
            self._maybe_prune(key)
            if granted:
                late = time.monotonic() - asked
                if late > STALE_GRANT_SECONDS:
                    self.stale_grants += 1
                    logger.debug(
                        "rate limiter %s: slot granted %.0f ms after the ask; taking another",
                        self.provider,
                        late * 1000,
                    )
                    return False, 0.0
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

    def _maybe_prune(self, key: tuple[int, str, str, int]) -> None:
        """Delete the bucket's expired rows if this process has not for a while. Called with
        the attempt lock held; a failure (lost connection, pool timeout) is logged and the
        prune is tried again at the next interval - never the caller's failure."""
        now = time.monotonic()
        if now < _next_prune.get(key, 0.0):
            return
        _next_prune[key] = now + PRUNE_INTERVAL_SECONDS
        bucket = self.limiter.bucket_factory.bucket
        try:
            bucket.leak(bucket.now())
        except Exception as exc:  # noqa: BLE001 - pruning is housekeeping; the next one retries
            logger.warning("rate limiter %s: pruning the bucket failed (%s)", self.provider, exc)

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
