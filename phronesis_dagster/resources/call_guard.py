"""The call guard: the bookkeeping around every provider call, in one place.

Every provider call, the HTTP ones (`ProviderResource._call`) and the anthropic SDK's
(`ClaudeResource.summarize_prospect`), runs inside `CallGuard.call(endpoint)`:

1. admission: the provider's shared circuit breaker admits the call, or it is skipped with
   `CircuitOpenError` (recorded as `circuit_open`, no request made);
2. each attempt (`ProviderCall.attempt`) starts its clock, and takes a slot of the shared rate
   limit of the endpoint's group at the moment its request goes on the wire (`on_wire`, called
   by the transport's `trace` hook once the connection is ready: each redirect hop takes one
   too);
3. the request (the caller's: httpx with tenacity retries, or the SDK with its own);
4. ONE write (`call_ledger.write_call`) when the call is decided: the deciding attempt's
   `api_usage` counts and `api_call_log` row, and the outcome in the breaker's window (or the
   probe's verdict). An attempt that is retried is written before the retry waits, so a
   process killed at any point has lost at most the attempt in flight.

How an outcome counts in the breaker (the provider's health, not the call's success):
- an answer (2xx, 404 = none, 401/403/other 4xx, a truncated or refused LLM answer) is healthy;
- 5xx/429/timeouts that outlasted the retries and malformed bodies are failures;
- a refusal that says when the provider takes calls again (`hold_until`: a spent quota window,
  credentials or credits) holds the breaker open for every process until then;
- running out of our own rate-limit wait (`RateLimitWaitExceeded`) is not the provider's
  health: the breaker is not told.

Bookkeeping never fails a call: a database error is logged and the call's answer returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.call_ledger import (
    BreakerCount,
    CallRecord,
    Outcome,
    write_call,
)
from phronesis_dagster.resources.circuit_breaker import CircuitBreaker
from phronesis_dagster.resources.errors import (
    CircuitOpenError,
    MalformedResponseError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitWaitExceeded,
)
from phronesis_dagster.resources.rate_limit import SharedRateLimiter
from phronesis_dagster.resources.transport import SEND_HEADERS_EVENT

# The call this thread (or asyncio task) is making: how the SDK's HTTP hooks, which only see a
# request, find the call their attempt belongs to.
_current: ContextVar[ProviderCall | None] = ContextVar("phronesis_provider_call", default=None)


class ProviderCall:
    """One logical call inside `CallGuard.call`: its attempts and how it was decided."""

    def __init__(self, guard: CallGuard, endpoint: str, probe: bool) -> None:
        self.guard = guard
        self.endpoint = endpoint
        self.probe = probe
        self._started: float | None = None  # the attempt in flight (slot taken)
        self._latency_ms: float | None = None  # its answer arrived after this long
        self._pending: CallRecord | None = None  # its record, written when the call is decided
        self.decided = False

    # -- attempts ------------------------------------------------------------------------------

    def attempt(self) -> None:
        """Before each request: write the previous attempt (it is being retried) and start the
        clock. The rate-limit slot is taken later, by `on_wire`."""
        self.flush()
        self._started = time.perf_counter()
        self._latency_ms = None

    def on_wire(self, event: str, info: object) -> None:
        """The transport's `trace` hook (the request extension "trace": `resources/transport.py`,
        or httpcore's under a proxy, which names the event alike): take a slot of the shared
        rate limit (may raise `RateLimitWaitExceeded`) just before the request's headers are
        written, and restart the attempt's clock there.

        Why here and not before `client.request`: the slot is stamped when it is granted, the
        provider counts a request when it arrives, and opening a connection (TCP, and TLS with
        the real providers) comes between the two. Measured on the two-run scale-out test: a
        request on a reused connection reached the emulator within 40-90 ms of its slot (p99),
        the first request of a new connection 50-360 ms after it, more than the limiter's
        250 ms margin: Exa and ContactOut answered 429 and SEC blocked "the IP". Taken after
        the connection is ready, the slot is what arrives. Every redirect hop is a request the
        provider counts, and each takes its own slot here."""
        if event == SEND_HEADERS_EVENT:
            self.guard.limiter(self.endpoint).acquire()
            self._started = time.perf_counter()

    def received(self) -> None:
        """The attempt's answer arrived (its latency ends here, before any parsing)."""
        if self._started is not None:
            self._latency_ms = (time.perf_counter() - self._started) * 1000

    def answered(
        self, outcome: Outcome, *, http_status: int | None, cost_usd: float | None = None
    ) -> None:
        """The attempt's record; written with the call's outcome, or when it is retried."""
        if self._latency_ms is None:
            self.received()
        self._pending = CallRecord(
            self.guard.provider, self.endpoint, outcome, http_status, self._latency_ms, cost_usd
        )
        self._started = None

    def flush(self) -> None:
        """Write the attempt now (usage and call log only): it is retried, or its outcome must
        not wait for a retry's backoff (a kill during the sleep would lose it)."""
        record = self._take()
        if record is not None:
            self.guard.write(record, None)

    def _take(self, *, unanswered: bool = True) -> CallRecord | None:
        """The attempt's record, once; `unanswered` = an attempt without an answer counts as a
        failure (a timeout or a lost connection)."""
        record, self._pending = self._pending, None
        if record is None and self._started is not None and unanswered:
            # Slot taken, request sent, no answer: a timeout or a lost connection.
            self.received()
            record = CallRecord(
                self.guard.provider, self.endpoint, "failure", latency_ms=self._latency_ms
            )
        self._started = None
        return record

    # -- the decision --------------------------------------------------------------------------

    def finish(
        self,
        outcome: Outcome,
        *,
        http_status: int | None,
        cost_usd: float | None = None,
        failed: bool = False,
        error: str | None = None,
    ) -> None:
        """The call is decided by an answer: its record and the breaker's count, one write."""
        self.answered(outcome, http_status=http_status, cost_usd=cost_usd)
        self.settle(failed=failed, error=error)

    def settle(self, *, failed: bool, error: str | None = None) -> None:
        """Write the deciding attempt (if not written yet) with the breaker's count."""
        self.decided = True
        self.guard.write(
            self._take(), self.guard.count(failed=failed, probe=self.probe, error=error)
        )

    def fail(self, exc: BaseException) -> None:
        """The call ended with `exc`: settle it by what the error says of the provider."""
        if self.decided:
            return
        self.decided = True
        if isinstance(exc, RateLimitWaitExceeded):
            # Our own budget, not the provider's health: the breaker is not told (a probe that
            # never reports back is taken over after the probe timeout).
            self.flush()
        elif isinstance(exc, ProviderError) and exc.hold_until is not None:
            self.flush()
            self.guard.hold(exc)
        else:
            failed = isinstance(exc, ProviderUnavailableError | MalformedResponseError)
            # A request that got no answer is a failure only when it timed out or lost its
            # connection (then wrapped as ProviderUnavailableError); another error raised
            # during it is a provider module reading the answer in a hook (EDGAR's missing
            # document), which records that answer itself.
            unanswered = isinstance(exc, ProviderUnavailableError)
            self.guard.write(
                self._take(unanswered=unanswered),
                self.guard.count(failed=failed, probe=self.probe, error=str(exc) or None),
            )


class CallGuard:
    """Admission, rate-limit slots and the one write of every call to one provider.

    Holds handles only (the breaker's row, the limiters' buckets and the counters all live in
    the app database): one per resource instance."""

    def __init__(
        self,
        provider: str,
        app_db: AppDatabase,
        breaker: CircuitBreaker,
        limiter_for: Callable[[str], SharedRateLimiter],
        *,
        run_id: str | None,
        scrub: Callable[[str], str],
        log: logging.Logger | logging.LoggerAdapter,
    ) -> None:
        self.provider = provider
        self.app_db = app_db
        self.breaker = breaker
        self.run_id = run_id
        self._limiter_for = limiter_for
        self._limiters: dict[str, SharedRateLimiter] = {}
        self._scrub = scrub
        self.log = log

    @staticmethod
    def current() -> ProviderCall | None:
        """The call being made in this thread or task, if any."""
        return _current.get()

    @contextmanager
    def call(self, endpoint: str) -> Iterator[ProviderCall]:
        """One logical call to `endpoint`: admitted (or `CircuitOpenError`), then the caller's
        attempts, settled by `ProviderCall.finish` or by the exception that ends the block."""
        call = ProviderCall(self, endpoint, self._admit(endpoint))
        token = _current.set(call)
        try:
            yield call
        except BaseException as exc:
            call.fail(exc)
            raise
        finally:
            _current.reset(token)
            if not call.decided:  # the block returned without deciding: keep its attempt
                call.flush()

    def limiter(self, endpoint: str) -> SharedRateLimiter:
        """The shared limiter of `endpoint`'s group (a handle, kept per endpoint)."""
        limiter = self._limiters.get(endpoint)
        if limiter is None:
            limiter = self._limiters[endpoint] = self._limiter_for(endpoint)
        return limiter

    def stale_grants(self) -> int:
        """Rate-limit slots this guard's limiters were granted too late to use
        (`SharedRateLimiter.stale_grants`): a sign of a saturated CPU or database."""
        return sum(limiter.stale_grants for limiter in self._limiters.values())

    def count(self, *, failed: bool, probe: bool, error: str | None) -> BreakerCount:
        """The breaker's count of an outcome; only a failure's error becomes `last_error`."""
        return self.breaker.count(failed=failed, probe=probe, error=error if failed else None)

    def _admit(self, endpoint: str) -> bool:
        """Ask the breaker; True = this call is the half-open probe."""
        try:
            return self.breaker.before_call()
        except CircuitOpenError:
            self.write(CallRecord(self.provider, endpoint, "circuit_open"), None)
            raise
        except Exception as exc:  # noqa: BLE001 - a breaker store outage must not stop calls
            self.log.warning(
                "circuit breaker %s unavailable (%s); calling anyway", self.provider, exc
            )
            return False

    def write(self, record: CallRecord | None, count: BreakerCount | None) -> None:
        """The one write (`write_call`); never raises: bookkeeping must not fail enrichment."""
        if record is None and count is None:
            return
        try:
            # One statement (db/sql/provider_call_record.sql), atomic by itself.
            row = write_call(self.app_db.database_url, record, count, run_id=self.run_id)
        except Exception as exc:  # noqa: BLE001
            self.log.warning(
                "usage and circuit breaker %s not updated for %s: %s",
                self.provider,
                record.endpoint if record else "-",
                exc,
            )
            return
        if count is not None:
            self.breaker.note(row, probe=count.probe, error=count.error)

    def hold(self, exc: ProviderError) -> None:
        """Hold the shared breaker open until `exc.hold_until`; never raises."""
        assert exc.hold_until is not None
        try:
            self.breaker.hold_open(exc.hold_until, self._scrub(str(exc)))
        except Exception as err:  # noqa: BLE001 - bookkeeping must not hide the refusal
            self.log.warning("circuit breaker %s not held open: %s", self.provider, err)
