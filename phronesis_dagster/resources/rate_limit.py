"""Client-side rate limit per provider, shared by every process, in the PostgreSQL app database.

Each slot is one call of `phronesis_rate_limit_ask(bucket, limit, window_ms)` (migration 0008,
`db/sql/migration_0008_rate_limit_ask.sql`; 0006's `phronesis_rate_limit_take` before it): under
a per-bucket advisory lock it drops the grants that left the window, counts the rest and records
a grant if there is room, and answers how long until a slot frees (after a refusal, or after the
grant that filled the window). The grants live in the table `provider_rate_limit_grants`, so every
process and machine that points at the app database shares one budget per bucket.

Why our own function and not pyrate-limiter's PostgreSQL bucket (used until 2026-12-03): an ask
there was six to eight round trips (the database clock, `LOCK TABLE ... NOWAIT`, a count, a peek
on refusal, the insert, commits) and a busy table lock was a refusal that had to be asked again;
in the 2,000-prospect benchmark at published limits the buckets saw 7-13 scans per grant with
four runs asking, the largest single share of a run's CPU per provider request. Its leaker thread
also died on a lost connection (we pruned by hand) and its blocking mode stamped waiters at
their planned wake-up (we asked without blocking). The function is one round trip, waits for
the lock instead of failing on it, stamps the grant when it is decided and prunes as it goes.

The window is 1.15 s rather than 1 s (`WINDOW_MARGIN_MS`) so that jitter between granting a slot
and the request reaching the provider never puts n + 1 requests into one of its seconds.

`acquire()` blocks until a slot is free, at most `max_wait_seconds`, then raises
`RateLimitWaitExceeded`. Its connections are the per-call pool's (`db/statements.py`), only
handles; the budget itself lives in the table, never in process memory.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time

from phronesis_dagster.db.statements import CONNECTION_ERRORS, call_connection, libpq_url
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.errors import RateLimitWaitExceeded

logger = logging.getLogger(__name__)

# Added to a wait the function computed, for clock drift between processes and the time the
# next ask takes to reach the database; and the most jitter added to a wait, so that the waiters
# of several processes do not ask in lock step.
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
# A slot whose ask took longer than this is not used (another is taken): a slow ask (a
# saturated CPU or database) leaves the request going out that much later than the grant's
# stamp. Half the margin, so that a used slot has at least the other half for the way from here
# to the provider. Measured in the benchmark at published limits (2,000 prospects, 4 niced bulk
# runs on 2 cores): a ContactOut 429 with every slot used as granted, none after.
STALE_GRANT_SECONDS = WINDOW_MARGIN_MS / 2 / 1000
# Consecutive lost bucket connections an acquire rides out before the error reaches the call.
MAX_DROPPED_CONNECTIONS = 5
_ASK = "SELECT granted, wait_ms FROM phronesis_rate_limit_ask(%s, %s, %s)"

# One lock per (process, database, bucket, rate): the thread that holds it is the process's only
# asker of the bucket, and the process's other threads that want a slot wait on the lock, so
# they contend only with other processes. It holds no state: the budget stays in the table and
# every grant is decided by the database's clock.
_askers: dict[tuple[int, str, str, int], threading.Lock] = {}
# When the bucket's last answer to this process said a slot frees up (after a refusal, or after
# a grant that filled the window): the next asker sleeps until then instead of asking only to
# be refused. Only a hint: the ask after it is still decided by the bucket.
_not_before: dict[tuple[int, str, str, int], float] = {}
_lock = threading.Lock()


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
        self._app_db = app_db
        self._dropped = 0  # consecutive attempts that lost their bucket connection
        self.stale_grants = 0  # slots not used: granted too long after the ask

    @functools.cached_property
    def location(self) -> str:
        """The bucket's database, the app database (`db.statements.libpq_url`); any other
        database is an error at the first acquire."""
        return libpq_url(self._app_db.database_url)

    @property
    def _key(self) -> tuple[int, str, str, int]:
        return (os.getpid(), self.location, self.provider, self.requests_per_second)

    @property
    def window_ms(self) -> int:
        """The sliding window: a second and the margin (`WINDOW_MARGIN_MS`)."""
        return 1000 + WINDOW_MARGIN_MS

    def connect(self) -> None:
        """Open a connection of this process's per-call pool now (else the first ask does)."""
        with call_connection(self.location):
            pass

    def _ask(self) -> tuple[bool, float, float]:
        """One ask of the bucket: (granted, milliseconds until a slot frees - after a refusal,
        or after a grant that filled the window; 0 = room now -, the seconds the ask took once
        it had a connection)."""
        with call_connection(self.location) as conn:
            # Not counting the wait for a pooled connection (or opening one): the grant is
            # stamped by the database once the ask reaches it.
            asked = time.monotonic()
            row = conn.execute(
                _ASK, (self.provider, self.requests_per_second, self.window_ms)
            ).fetchone()
            took = time.monotonic() - asked
        assert row is not None
        return bool(row[0]), float(row[1]), took

    def _attempt(self, key: tuple[int, str, str, int]) -> bool:
        """One ask, by the process's asker of the bucket: True = a slot to use. Leaves the
        bucket's answer of when a slot frees in `_not_before`. A slot whose ask took longer than
        `STALE_GRANT_SECONDS` is not used: it stays spent in the bucket (a conservative error)
        and the caller asks again."""
        try:
            granted, wait_ms, took = self._ask()
        except CONNECTION_ERRORS as exc:
            # A dropped bucket connection (a failover, a DBA's kill) is discarded by the pool;
            # the next attempt gets a fresh one. Not the call's failure.
            self._dropped += 1
            if self._dropped > MAX_DROPPED_CONNECTIONS:
                raise
            logger.warning(
                "rate limiter %s: bucket connection lost (%s); trying again", self.provider, exc
            )
            _not_before[key] = time.monotonic() + BUFFER_MS / 1000
            return False
        self._dropped = 0
        _not_before[key] = time.monotonic() + (wait_ms + BUFFER_MS) / 1000 if wait_ms > 0 else 0.0
        if granted and took > STALE_GRANT_SECONDS:
            self.stale_grants += 1
            logger.debug(
                "rate limiter %s: slot granted %.0f ms after the ask; taking another",
                self.provider,
                took * 1000,
            )
            return False
        return granted

    def acquire(self) -> None:
        """Wait for a slot; raise `RateLimitWaitExceeded` after `max_wait_seconds`, or at once
        when the bucket says no slot frees up before then.

        The process's threads take turns as the bucket's asker (`_askers`); the asker sleeps
        until the bucket's last answer said a slot frees, then asks: one ask per grant while
        only this process waits. In the 2,000-prospect benchmark (four runs, published limits)
        that took the asks from 1.75 to 1.10 per grant, and the limiter's time in the database
        from 4.9 s to 1.8 s per 1,000 prospects (pg_stat_user_functions, 2026-12-08); what is
        left are the askers of other processes racing for the same freed slot. Each ask is
        decided and stamped by the database's clock when it runs: a thread that wakes late asks
        late, and is counted then."""
        deadline = time.monotonic() + self.max_wait_seconds
        key = self._key
        with _lock:
            asker = _askers.setdefault(key, threading.Lock())
        if not asker.acquire(timeout=self.max_wait_seconds):
            raise self._exceeded()
        try:
            while True:
                now = time.monotonic()
                wait = _not_before.get(key, 0.0) - now
                if wait > 0:
                    if now + wait > deadline:
                        raise self._exceeded()
                    # Jitter keeps the askers of several processes from asking in lock step.
                    time.sleep(wait + random.uniform(0, BUFFER_MS) / 1000)
                if self._attempt(key):
                    return
                if time.monotonic() >= deadline:
                    raise self._exceeded()
        finally:
            asker.release()

    def _exceeded(self) -> RateLimitWaitExceeded:
        return RateLimitWaitExceeded(
            self.provider,
            f"no rate-limit slot within {self.max_wait_seconds:.0f} s "
            f"({self.requests_per_second} requests/s shared by all runs)",
        )
