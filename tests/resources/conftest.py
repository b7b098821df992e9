"""Fixtures of the provider-resource tests: a fresh migrated PostgreSQL app database per test,
the emulator, fast retry settings, and helpers to read usage counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import ApiCallLog, ApiUsage
from phronesis_dagster.emulator import EmulatorConfig, EmulatorServer
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.rate_limit import STALE_GRANT_SECONDS, SharedRateLimiter

# Small waits so retry tests stay fast; Retry-After is still honoured (it wins over backoff).
FAST = {
    "retry_min_wait_seconds": 0.01,
    "retry_max_wait_seconds": 0.05,
    "max_retries": 2,
    "timeout_seconds": 2.0,
}


@pytest.fixture
def rdb(postgres_url: str) -> AppDatabase:
    """A fresh, migrated PostgreSQL app database of the test's own (see tests/conftest.py)."""
    return AppDatabase(url=postgres_url)


@pytest.fixture
def pg_rdb(rdb: AppDatabase) -> AppDatabase:
    """The same as `rdb`, for tests that were written when `rdb` was SQLite."""
    return rdb


@pytest.fixture
def emu() -> Iterator[EmulatorServer]:
    server = EmulatorServer(EmulatorConfig(seed=0, latency_ms=0)).start()
    try:
        yield server
    finally:
        server.stop()


def usage_row(db: AppDatabase, provider: str) -> dict[str, Any]:
    """Today's pipeline counters of `provider` (zeros when there is no row)."""
    t = ApiUsage.__table__
    with db.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.provider == provider)).mappings().first()
    if row is None:
        return {"success_count": 0, "failure_count": 0, "rate_limited_count": 0, "cost_usd": 0}
    return dict(row)


def call_log(db: AppDatabase, provider: str) -> list[dict[str, Any]]:
    t = ApiCallLog.__table__
    with db.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.c.provider == provider).order_by(t.c.id))
        return [dict(r) for r in rows.mappings()]


def heal_after_first_failure(
    client: httpx.Client, emu: EmulatorServer, provider: str, **clear: Any
) -> list[int]:
    """After the first error answer, switch the emulator's fault off again; returns the list of
    statuses seen, so a test can assert "fault, then success"."""
    seen: list[int] = []

    def hook(response: Any) -> None:
        seen.append(response.status_code)
        if response.status_code >= 400:
            emu.configure(faults={provider: clear})

    client.event_hooks["response"].append(hook)
    return seen


def first_ask_answered_late(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Make the limiter's first ask of the bucket look as if the database had answered it
    later than `STALE_GRANT_SECONDS` (the grant itself is real). Returns whether each ask was
    granted, in order."""
    real = SharedRateLimiter._ask
    answers: list[bool] = []

    def slow_first(self: SharedRateLimiter) -> tuple[bool, float, float]:
        granted, wait_ms, took = real(self)
        if not answers:
            took += STALE_GRANT_SECONDS + 0.05
        answers.append(granted)
        return granted, wait_ms, took

    monkeypatch.setattr(SharedRateLimiter, "_ask", slow_first)
    return answers
