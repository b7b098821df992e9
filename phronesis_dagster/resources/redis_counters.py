"""The web app's Redis call counters `api_usage:{provider}:{YYYY-MM-DD}`: written and read.

The super-admin dashboard's "API Quota Burn" card reads these counters, so every successful
provider call counts there, the web app's own calls and the pipeline's alike: each adds 1 to
the provider's key of its UTC day, with INCR + EXPIRE (90 days) in one pipeline.

- Writing (`count_provider_call`): called by the usage tracker for each successful pipeline call,
  fire-and-forget (see `PipelineCallCounter` for how a slow or dead Redis is kept off the call).
- Reading (`WebAppRedis`): `api_quota_daily` reads the day totals; the web app's share is the
  total minus the pipeline's own successes from `api_usage`.

Redis is configured by `REDIS_URL` (empty or unset: nothing is written, nothing read). The URL
may carry a password: it is never logged, and errors are logged by type only.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg
from pydantic import Field

if TYPE_CHECKING:
    import redis

logger = logging.getLogger(__name__)

REDIS_URL_ENV = "REDIS_URL"
KEY_TEMPLATE = "api_usage:{provider}:{day}"
# The web app's contract: counters expire 90 days after their last increment.
COUNTER_TTL_SECONDS = 90 * 24 * 3600
# The first UTC day the pipeline counted its calls into Redis (SET NX by the counter). Before
# it, Redis held the web app's calls only, so nothing of the pipeline's is subtracted.
COUNTING_SINCE_KEY = "phronesis:pipeline_api_usage_since"
# The counters are a small MGET; a Redis that does not answer within this is treated as down.
CONNECT_TIMEOUT_SECONDS = 2.0
SOCKET_TIMEOUT_SECONDS = 5.0

# Writer bounds. The sender thread waits at most this long for Redis per flush ...
WRITE_TIMEOUT_SECONDS = 0.5
# ... and after a failure skips Redis (dropping what arrives) for this long, so an outage costs
# one timeout per interval, not one per call.
WRITE_BACKOFF_SECONDS = 30.0
# Increments waiting for the sender; beyond this they are dropped (the call never waits).
QUEUE_MAX = 10_000
# At process exit what is still queued gets at most this long to reach Redis.
EXIT_FLUSH_SECONDS = 2.0


class RedisUnavailable(RuntimeError):
    """`REDIS_URL` is set but Redis could not be reached."""


def counter_key(provider: str, day: date) -> str:
    """The web app's Redis key for one provider's calls on one UTC day."""
    return KEY_TEMPLATE.format(provider=provider, day=day.isoformat())


class PipelineCallCounter:
    """Adds the pipeline's successful provider calls to the web app's Redis counters.

    Why a bounded background queue rather than a synchronous INCR with short timeouts: the
    usage tracker counts a call inside its database write transaction, so any network wait
    there would hold a database connection (and the row lock of the day's `api_usage` counter)
    as well as the provider call. `add` is a `put_nowait` on a bounded queue, so it costs the
    call nothing whatever Redis does. A daemon thread drains the queue and sends each batch as
    one MULTI/EXEC pipeline of INCRBY + EXPIRE per key (INCRBY n == n INCRs), with a short
    socket timeout; on any error the batch is dropped, never retried: a reply lost to a timeout
    may hide an increment Redis did apply, and a retry would count it twice, while a lost
    increment during an outage is what the web app's contract already accepts. After a failure
    the sender skips Redis for `WRITE_BACKOFF_SECONDS` (a circuit), discarding what arrives.

    Nothing here must outlive the process: the queue holds increments for milliseconds, and
    what is left at exit is flushed within `EXIT_FLUSH_SECONDS` (atexit, and multiprocessing's
    exit finalizers for step workers it starts, which end without atexit).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = WRITE_TIMEOUT_SECONDS,
        backoff_seconds: float = WRITE_BACKOFF_SECONDS,
        queue_max: int = QUEUE_MAX,
    ) -> None:
        # redis-py is imported here and in `WebAppRedis`, not with the module: importing it
        # (its asyncio client, parsers and OpenTelemetry metrics) was 0.14 s of loading the code
        # location on an idle core, 0.27-0.41 s at load 5 (`python -X importtime`), paid by
        # every run before its first provider call, while a run needs it only after its first
        # successful call (and the quota asset through `WebAppRedis`). Imported before the
        # sender thread starts, like the lazy imports below.
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            # redis-py retries timeouts 3 times with backoff by default: one try, then drop.
            retry=Retry(NoBackoff(), 0),
        )
        self._backoff_seconds = backoff_seconds
        self._queue: queue.Queue[tuple[str, date]] = queue.Queue(maxsize=queue_max)
        self._skip_until = 0.0
        self._idle = threading.Condition()
        self._in_flight = 0
        self._stopped = False
        self.sent = 0
        self.dropped = 0
        self.pid = os.getpid()
        # What redis-py imports lazily on its first connection (the IDNA codec of the host name,
        # the email parser of its URL/response helpers), imported here, before the sender thread
        # exists: a step worker forked while that thread held one of these imports inherited the
        # held import lock, and its own first send failed with ImportError (seen in the suite).
        import email.parser  # noqa: F401
        import encodings.idna  # noqa: F401

        self._thread = threading.Thread(
            target=self._run, name="phronesis-redis-counter", daemon=True
        )
        self._thread.start()

    def add(self, provider: str, day: date) -> None:
        """Queue one successful call of `provider` on UTC `day`; never blocks, never raises."""
        try:
            with self._idle:
                self._in_flight += 1
            self._queue.put_nowait((provider, day))
        except queue.Full:
            with self._idle:
                self._in_flight -= 1
                self.dropped += 1

    def flush(self, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Wait up to `timeout` for everything queued so far to be sent (or dropped)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Flush (bounded) and stop the sender."""
        self.flush()
        self._stopped = True
        try:
            self._queue.put_nowait(("", date.min))  # wakes the sender so it sees _stopped
        except queue.Full:
            pass
        self._thread.join(timeout=WRITE_TIMEOUT_SECONDS * 2)
        self._client.close()

    def _run(self) -> None:
        while not self._stopped:
            first = self._queue.get()
            batch = [first]
            while len(batch) < 1000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [item for item in batch if item[0]]
            try:
                if batch:
                    self._send(batch)
            finally:
                with self._idle:
                    self._in_flight -= len(batch)
                    self._idle.notify_all()

    def _drop(self, n: int) -> None:
        with self._idle:
            self.dropped += n

    def _send(self, batch: list[tuple[str, date]]) -> None:
        if time.monotonic() < self._skip_until:
            self._drop(len(batch))
            return
        counts = Counter(counter_key(p, d) for p, d in batch)
        try:
            pipe = self._client.pipeline(transaction=True)
            for key, n in counts.items():
                pipe.incrby(key, n)
                pipe.expire(key, COUNTER_TTL_SECONDS)
            pipe.set(COUNTING_SINCE_KEY, min(d for _, d in batch).isoformat(), nx=True)
            pipe.execute()
            self.sent += len(batch)
        except Exception as exc:  # noqa: BLE001 - counting must never fail anything
            self._drop(len(batch))
            self._skip_until = time.monotonic() + self._backoff_seconds
            # The type only: a redis error message can carry the host, never worth the risk.
            logger.warning(
                "web app Redis counters unavailable (%s); %d increments dropped, Redis skipped "
                "for %.0f s",
                type(exc).__name__,
                len(batch),
                self._backoff_seconds,
            )


_counters: dict[str, PipelineCallCounter] = {}
_counters_lock = threading.Lock()


def pipeline_counter(url: str | None = None) -> PipelineCallCounter | None:
    """This process's counter for `url` (default `$REDIS_URL`); None when Redis is not
    configured. A forked child gets its own (the parent's sender thread is not in it)."""
    url = (os.environ.get(REDIS_URL_ENV, "") if url is None else url).strip()
    if not url:
        return None
    counter = _counters.get(url)
    if counter is not None and counter.pid == os.getpid():
        return counter
    with _counters_lock:
        counter = _counters.get(url)
        if counter is None or counter.pid != os.getpid():
            counter = _counters[url] = PipelineCallCounter(url)
            # Registered here, in the process that counts: multiprocessing clears the exit
            # finalizers a forked child inherits, and such children end in os._exit (no atexit).
            multiprocessing.util.Finalize(None, counter.flush, exitpriority=100)
    return counter


def count_provider_call(provider: str, day: date) -> None:
    """Add one successful pipeline call of `provider` on UTC `day` to the web app's Redis
    counter, when `REDIS_URL` is set. Returns at once; never raises."""
    try:
        counter = pipeline_counter()
        if counter is not None:
            counter.add(provider, day)
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed REDIS_URL: never fail the call
        logger.warning("web app Redis counter not usable (%s)", type(exc).__name__)


def close_pipeline_counters() -> None:
    """Flush (bounded) and stop every counter of this process; the next call starts afresh."""
    with _counters_lock:
        counters = list(_counters.values())
        _counters.clear()
    for counter in counters:
        if counter.pid == os.getpid():
            counter.close()


def _flush_all() -> None:
    for counter in list(_counters.values()):
        if counter.pid == os.getpid():
            counter.flush()


# An ordinary interpreter exit (the run worker, `dagster asset materialize`); processes started
# by multiprocessing use the finalizer registered with each counter instead.
atexit.register(_flush_all)


class WebAppRedis(dg.ConfigurableResource):
    """The web app's Redis, read for its `api_usage:{provider}:{YYYY-MM-DD}` call counters.

    Optional: with an empty `url` (no `REDIS_URL`) the quota asset uses the pipeline's counters
    only. The counters hold every successful call, the pipeline's included (the provider
    resources add theirs through `count_provider_call`); this resource only reads them.
    """

    url: str = Field(
        default_factory=lambda: os.environ.get(REDIS_URL_ENV, ""),
        description=f"redis:// URL of the web app's Redis. Defaults to ${REDIS_URL_ENV}; "
        "empty means there is no web app Redis.",
    )

    @property
    def is_configured(self) -> bool:
        return bool(self.url.strip())

    def _client(self) -> redis.Redis:
        import redis  # on first use, see `PipelineCallCounter.__init__`

        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
        )

    def daily_counts(
        self, providers: Iterable[str], days: Iterable[date]
    ) -> dict[tuple[str, date], int]:
        """The total successful-call count (web app + pipeline) per (provider, day) for every
        key that exists.

        Missing keys (no calls, or expired) are left out, so callers never overwrite history with
        zeros. Raises `RedisUnavailable` when Redis cannot be reached and `ValueError` when a key
        holds something other than an integer.
        """
        if not self.is_configured:
            return {}
        pairs = [(p, d) for p in providers for d in days]
        if not pairs:
            return {}
        keys = [counter_key(p, d) for p, d in pairs]
        import redis  # for its exception types; `_client` imported it

        client = self._client()
        try:
            values = client.mget(keys)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(f"web app Redis unreachable: {exc}") from exc
        except redis.ResponseError as exc:
            raise ValueError(f"web app Redis refused the counter read: {exc}") from exc
        finally:
            client.close()
        counts: dict[tuple[str, date], int] = {}
        for pair, key, raw in zip(pairs, keys, values, strict=True):
            if raw is None:
                continue
            try:
                value = int(raw)
            except ValueError:
                raise ValueError(
                    f"Redis key {key!r} holds {raw!r}, expected an integer call count"
                ) from None
            if value < 0:
                raise ValueError(f"Redis key {key!r} holds a negative call count {value}")
            counts[pair] = value
        return counts

    def pipeline_counting_since(self) -> date | None:
        """The first UTC day the pipeline's calls were counted into Redis, if ever.

        Raises `RedisUnavailable` when Redis cannot be reached."""
        if not self.is_configured:
            return None
        import redis  # for its exception types; `_client` imported it

        client = self._client()
        try:
            raw = client.get(COUNTING_SINCE_KEY)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise RedisUnavailable(f"web app Redis unreachable: {exc}") from exc
        finally:
            client.close()
        if raw is None:
            return None
        try:
            return date.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
        except ValueError:
            raise ValueError(
                f"Redis key {COUNTING_SINCE_KEY!r} holds {raw!r}, not a date"
            ) from None
