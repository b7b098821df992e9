"""Functions run in child processes (spawned, so they import everything afresh, like a
separate Dagster run would)."""

from __future__ import annotations

import time

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.circuit_breaker import BreakerSettings, CircuitBreaker
from phronesis_dagster.resources.errors import CircuitOpenError
from phronesis_dagster.resources.rate_limit import SharedRateLimiter

SETTINGS = BreakerSettings(
    failure_rate_threshold=0.5, min_calls=4, window_seconds=60, reset_timeout_seconds=0.5
)


def acquire_many(url: str, provider: str, rps: int, n: int, start_at: float) -> list[float]:
    """Take `n` slots of the shared limiter; returns when each was granted."""
    limiter = SharedRateLimiter(provider, AppDatabase(url=url), rps, max_wait_seconds=30)
    limiter.connect()  # before the common start, so set-up time does not skew
    time.sleep(max(0.0, start_at - time.time()))
    stamps = []
    for _ in range(n):
        limiter.acquire()
        stamps.append(time.time())
    return stamps


def fail_calls(url: str, n: int) -> str:
    """Report `n` failures to the shared breaker; returns the state this process sees."""
    breaker = CircuitBreaker("exa", AppDatabase(url=url), SETTINGS)
    for _ in range(n):
        breaker.record_failure("HTTP 503", probe=False)
    return breaker.snapshot().state


def check_admission(url: str) -> str:
    """What a new call in this process is told: `closed`, `probe` or `circuit_open`."""
    breaker = CircuitBreaker("exa", AppDatabase(url=url), SETTINGS)
    try:
        return "probe" if breaker.before_call() else "closed"
    except CircuitOpenError:
        return "circuit_open"


def race_for_probe(url: str, start_at: float) -> str:
    breaker = CircuitBreaker("exa", AppDatabase(url=url), SETTINGS)
    breaker.snapshot()  # connect first
    time.sleep(max(0.0, start_at - time.time()))
    try:
        return "probe" if breaker.before_call() else "closed"
    except CircuitOpenError:
        return "circuit_open"


def hold_open(url: str, seconds: float, reason: str) -> str:
    """Hold the shared breaker open for `seconds` from now; returns the state this process sees."""
    from datetime import UTC, datetime, timedelta

    breaker = CircuitBreaker("exa", AppDatabase(url=url), SETTINGS)
    breaker.hold_open(datetime.now(UTC) + timedelta(seconds=seconds), reason)
    return breaker.snapshot().state


def admission_message(url: str) -> str:
    """Like `check_admission`, with the refusal's message (the reason a source shows)."""
    breaker = CircuitBreaker("exa", AppDatabase(url=url), SETTINGS)
    try:
        return "probe" if breaker.before_call() else "closed"
    except CircuitOpenError as exc:
        return f"circuit_open: {exc}"


def provider_call(db_url: str, emulator_url: str, provider: str) -> str:
    """One call of `provider` through the real client in a fresh process, as another run
    would make it: `ok`, `none` (not found) or `<ErrorClass>: <message>`."""
    from phronesis_dagster.emulator.server import base_urls_for
    from phronesis_dagster.resources.apollo import ApolloResource
    from phronesis_dagster.resources.contactout import ContactOutResource
    from phronesis_dagster.resources.exa import ExaResource

    urls = base_urls_for(emulator_url)
    common = {"app_db": AppDatabase(url=db_url), "provider_mode": "emulator", "max_retries": 0}
    calls = {
        "apollo": lambda: ApolloResource(
            api_key="k", base_url=urls["apollo"], **common
        ).match_person(email="jane.doe@acme.com"),
        "contactout": lambda: ContactOutResource(
            api_key="k", base_url=urls["contactout"], **common
        ).enrich_person(email="jane.doe@acme.com"),
        "exa": lambda: ExaResource(api_key="k", base_url=urls["exa"], **common).search_mentions(
            name="Jane Doe", company="Acme"
        ),
    }
    try:
        return "none" if calls[provider]() is None else "ok"
    except Exception as exc:  # noqa: BLE001 - the outcome is the answer
        return f"{type(exc).__name__}: {exc}"
