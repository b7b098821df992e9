"""Shared fixtures: a fresh, migrated PostgreSQL app database per test (a new database on the
machine's server, dropped afterwards), so tests never share state."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.resources.app_db import AppDatabase

pytest_plugins = ["tests.emulator_fixture"]

# A test process started in the background of a script (a CI runner, `make test &`) inherits
# SIGINT ignored. Dagster points SIGTERM at SIGINT's handler whenever it runs a job on the main
# thread (`dagster._utils.interrupts`), so SIGTERM became ignored as well, and so did every
# `tail -F` that Dagster's compute-log capture starts afterwards: its `terminate()` did nothing
# and an in-process run with captured logs then sat out two 30 s timeouts at its end (a test of
# 0.5 s took 60.5 s). Ctrl-C / SIGINT interrupts, as in `phronesis_dagster/cli.py`.
signal.signal(signal.SIGINT, signal.default_int_handler)

# An idle tick of the interactive request sensor listens for a click for 3 s by default; tests
# tick it themselves (a test of the wait sets its own value).
os.environ.setdefault("PHRONESIS_ENRICHMENT_TICK_WAIT_SECONDS", "0")

POSTGRES_ADMIN_URL = os.environ.get(
    "PHRONESIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")


@contextmanager
def fresh_database(prefix: str = "t") -> Iterator[str]:
    """A brand-new, empty PostgreSQL database on the test server (its URL, with the admin URL's
    driver), dropped on exit with whatever connected to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database, dropped after the test."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    """A migrated PostgreSQL app database of the test's own."""
    migrate.upgrade(empty_postgres_url)
    return empty_postgres_url


@pytest.fixture
def db_url(postgres_url: str) -> str:
    """The test's migrated app database (PostgreSQL, the one database the code speaks)."""
    return postgres_url


@pytest.fixture
def app_db(db_url: str) -> AppDatabase:
    return AppDatabase(url=db_url)
