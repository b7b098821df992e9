"""Usage tracking: atomic per-day counters, one log row per attempt, never raising."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.usage import UsageTracker
from tests.resources.conftest import call_log, usage_row


def test_outcomes_go_to_separate_counters(rdb):
    tracker = UsageTracker(rdb, run_id="run-1")
    tracker.record("exa", "/search", "success", http_status=200, latency_ms=12.0, cost_usd=0.005)
    tracker.record("exa", "/search", "success", http_status=200, cost_usd=0.005)
    tracker.record("exa", "/search", "not_found", http_status=404, cost_usd=0.0)
    tracker.record("exa", "/search", "failure", http_status=500, cost_usd=9.9)
    tracker.record("exa", "/search", "rate_limited", http_status=429)
    tracker.record("exa", "/search", "circuit_open")
    row = usage_row(rdb, "exa")
    assert (row["success_count"], row["failure_count"], row["rate_limited_count"]) == (3, 1, 1)
    assert float(row["cost_usd"]) == pytest.approx(0.01)  # failures never add cost
    assert row["origin"] == "pipeline"
    log = call_log(rdb, "exa")
    assert [r["outcome"] for r in log] == [
        "success",
        "success",
        "not_found",
        "failure",
        "rate_limited",
        "circuit_open",
    ]
    assert log[0]["run_id"] == "run-1" and log[0]["latency_ms"] == 12.0


def test_concurrent_increments_are_not_lost(rdb):
    tracker = UsageTracker(rdb)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: tracker.record("apollo", "/m", "success"), range(40)))
    assert usage_row(rdb, "apollo")["success_count"] == 40


@pytest.mark.postgres
def test_counters_on_postgres(pg_rdb):
    tracker = UsageTracker(pg_rdb)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(lambda _: tracker.record("claude", "/v1", "success", cost_usd=0.5), range(20))
        )
    tracker.record("claude", "/v1", "rate_limited", http_status=429)
    row = usage_row(pg_rdb, "claude")
    assert (row["success_count"], row["rate_limited_count"]) == (20, 1)
    assert float(row["cost_usd"]) == pytest.approx(10.0)


def test_tracking_never_raises(empty_postgres_url, caplog):
    # No tables at all: the insert fails, the caller must not notice.
    broken = AppDatabase(url=empty_postgres_url)
    UsageTracker(broken).record("exa", "/search", "success")
    assert "usage tracking failed" in caplog.text
