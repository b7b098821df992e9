"""Connections to the app database (the web app's PostgreSQL in production, any PostgreSQL
server elsewhere): its URL from the environment, one pooled engine per URL per process, and the
laptop default's data folder. Below the resources: `AppDatabase` and the migrations use it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

DATABASE_URL_ENV = "PHRONESIS_DATABASE_URL"
DATA_DIR_ENV = "PHRONESIS_DATA_DIR"
# Connections one process keeps to a PostgreSQL app database (the per-call statements add at
# most `statements.CALL_POOL_SIZE`): with 4 run processes at once, 4 x (8 + 6) = 56 stay under
# PostgreSQL's default max_connections of 100. Before this cap, 4 runs opened more than 100 and
# lost bookkeeping writes to "sorry, too many clients already".
PG_POOL_SIZE = 8
PG_POOL_TIMEOUT_SECONDS = 60


def local_data_dir() -> Path:
    """Folder for the laptop default's files (embedded PostgreSQL data, Dagster home)."""
    path = Path(os.environ.get(DATA_DIR_ENV, Path.cwd() / ".data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


class DatabaseUrlMissing(RuntimeError):
    """Raised when no app-database URL is configured."""


def default_database_url() -> str:
    """`PHRONESIS_DATABASE_URL`; a clear one-line error when it is unset."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        raise DatabaseUrlMissing(
            f"{DATABASE_URL_ENV} is not set: point it at a PostgreSQL database, e.g. "
            "postgresql://user@127.0.0.1:5432/phronesis"
        )
    return url


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (SQLAlchemy would otherwise pick psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@contextmanager
def short_write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` for a short write transaction that waits on nothing else (per-call
    bookkeeping, one stored outcome). PostgreSQL's row locks queue concurrent writers."""
    with engine.begin() as conn:
        yield conn


@lru_cache(maxsize=16)
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL per process. A pool is a per-process cache of connections, not
    state that must survive the process, so caching it here is safe across Dagster runs."""
    url = normalize_url(url)
    if not url.startswith("postgresql"):
        raise ValueError(
            f"the app database must be PostgreSQL, got {sa.make_url(url).drivername}:// URL"
        )
    # A hard cap, not a burst allowance: dozens of provider threads share these connections
    # (each holds one for a millisecond-long write), and every run process of every run pod
    # opens its own pool, so the sum must fit PostgreSQL's max_connections (see
    # docs/deployment.md). Threads beyond the cap wait for a free connection.
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=PG_POOL_SIZE,
        max_overflow=0,
        pool_timeout=PG_POOL_TIMEOUT_SECONDS,
    )
