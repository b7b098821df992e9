"""The shared circuit breaker: failure rate, open, one half-open probe, across processes."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from phronesis_dagster.resources.circuit_breaker import BreakerSettings, CircuitBreaker
from phronesis_dagster.resources.errors import CircuitOpenError
from tests.resources import _workers

SETTINGS = _workers.SETTINGS


def breaker(db, **overrides) -> CircuitBreaker:
    settings = BreakerSettings(**{**SETTINGS.__dict__, **overrides})
    return CircuitBreaker("exa", db, settings)


def test_stays_closed_below_min_calls_and_below_threshold(rdb):
    b = breaker(rdb)
    for _ in range(3):  # below min_calls
        b.record_failure("HTTP 500", probe=False)
    assert b.snapshot().state == "closed"
    b.reset()
    for failed in (True, False, False, False, True):  # never >= 50 % once at min_calls
        b.record_failure("x", probe=False) if failed else b.record_success(probe=False)
    assert b.snapshot().state == "closed"
    assert b.before_call() is False


def test_opens_at_failure_rate_then_skips_calls(rdb, caplog):
    caplog.set_level(logging.INFO)
    b = breaker(rdb)
    b.record_success(probe=False)
    for _ in range(3):
        b.record_failure("HTTP 503 from /search", probe=False)
    snap = b.snapshot()
    assert snap.state == "open" and snap.last_error == "HTTP 503 from /search"
    assert "closed -> open" in caplog.text
    with pytest.raises(CircuitOpenError) as info:
        b.before_call()
    assert info.value.provider == "exa" and "HTTP 503" in str(info.value)


def test_window_expiry_starts_a_new_window(rdb):
    b = breaker(rdb, window_seconds=0.2)
    for _ in range(3):
        b.record_failure("x", probe=False)
    time.sleep(0.3)
    b.record_failure("x", probe=False)  # new window: 1 call, below min_calls
    snap = b.snapshot()
    assert (snap.state, snap.window_calls, snap.window_failures) == ("closed", 1, 1)


def test_half_open_single_probe_then_close(rdb, caplog):
    caplog.set_level(logging.INFO)
    b, other = breaker(rdb), breaker(rdb)
    for _ in range(4):
        b.record_failure("x", probe=False)
    with pytest.raises(CircuitOpenError):
        b.before_call()
    time.sleep(0.6)  # past reset_timeout
    assert b.before_call() is True  # this caller is the probe ...
    assert b.snapshot().state == "half_open"
    with pytest.raises(CircuitOpenError):  # ... and nobody else gets through meanwhile
        other.before_call()
    b.record_success(probe=True)
    assert b.snapshot().state == "closed" and b.snapshot().window_calls == 0
    assert "half_open -> closed" in caplog.text
    assert other.before_call() is False


def test_failed_probe_reopens(rdb):
    b = breaker(rdb)
    for _ in range(4):
        b.record_failure("x", probe=False)
    time.sleep(0.6)
    assert b.before_call() is True
    b.record_failure("still down", probe=True)
    snap = b.snapshot()
    assert snap.state == "open" and snap.last_error == "still down"
    with pytest.raises(CircuitOpenError):
        b.before_call()


def test_stale_probe_is_taken_over(rdb):
    b = breaker(rdb, probe_timeout_seconds=0.2)
    for _ in range(4):
        b.record_failure("x", probe=False)
    time.sleep(0.6)
    assert b.before_call() is True  # this probe's process "dies" without reporting
    time.sleep(0.3)
    assert b.before_call() is True


def _run_cross_process(url: str) -> None:
    ctx = get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        # Process A sees failures and trips the breaker ...
        assert pool.submit(_workers.fail_calls, url, 4).result() == "open"
        # ... a different process is refused without calling the provider.
        assert pool.submit(_workers.check_admission, url).result() == "circuit_open"
        time.sleep(0.6)
        # After the reset timeout, two processes race: exactly one probes.
        start = time.time() + 1.0
        results = [pool.submit(_workers.race_for_probe, url, start) for _ in range(2)]
        assert sorted(r.result() for r in results) == ["circuit_open", "probe"]


def test_state_shared_between_processes(rdb):
    _run_cross_process(rdb.url)
