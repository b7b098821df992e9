"""Fixtures of the provider-resource tests: a fresh app database per test (tables from the
models), the emulator, fast retry settings, and helpers to read usage counters."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import ApiCallLog, ApiUsage, Base
from phronesis_dagster.emulator import EmulatorConfig, EmulatorServer
from phronesis_dagster.resources.app_db import AppDatabase, engine_for

POSTGRES_ADMIN_URL = os.environ.get(
    "PHRONESIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

# Small waits so retry tests stay fast; Retry-After is still honoured (it wins over backoff).
FAST = {
    "retry_min_wait_seconds": 0.01,
    "retry_max_wait_seconds": 0.05,
    "max_retries": 2,
    "timeout_seconds": 2.0,
}


def create_schema(url: str) -> AppDatabase:
    db = AppDatabase(url=url)
    Base.metadata.create_all(db.engine)
    return db


@pytest.fixture
def rdb(tmp_path) -> AppDatabase:
    """A fresh SQLite app database in the test's own folder."""
    return create_schema(f"sqlite:///{tmp_path / 'app.db'}")


@pytest.fixture
def pg_rdb() -> Iterator[AppDatabase]:
    """A fresh PostgreSQL database of the test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield create_schema(url)
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
