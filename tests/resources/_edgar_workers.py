"""EDGAR calls run in child processes (spawned, so they import everything afresh, like a
separate Dagster run would)."""

from __future__ import annotations

from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.errors import CircuitOpenError


def edgar_call(db_url: str, www: str, data: str) -> str:
    """One EDGAR call from a new process: `ok`, or `circuit_open: <the reason it was told>`."""
    res = EdgarResource(
        user_agent="phronesis tests tests@example.com",
        www_base_url=www,
        data_base_url=data,
        app_db=AppDatabase(url=db_url),
        provider_mode="emulator",
        max_retries=0,
    )
    try:
        return "ok" if res.cik_for_ticker("AAPL") == "0000320193" else "wrong answer"
    except CircuitOpenError as exc:
        return f"circuit_open: {exc}"
    finally:
        res.close()


def warm_up() -> bool:
    """Start the worker (imports done) before a test's timed part."""
    return EdgarResource is not None
