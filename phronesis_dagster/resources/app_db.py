"""The app database resource: the web app's PostgreSQL in production, a SQLite file on a laptop."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

DATABASE_URL_ENV = "PHRONESIS_DATABASE_URL"
DATA_DIR_ENV = "PHRONESIS_DATA_DIR"
# Connections one process keeps to a PostgreSQL app database (the rate limiter's buckets add
# `rate_limit.BUCKET_POOL_SIZE` per provider): with 4 run processes at once, 4 x (8 + 5 x 2) = 72
# stay under PostgreSQL's default max_connections of 100. Before this cap, 4 runs opened more
# than 100 and lost bookkeeping writes to "sorry, too many clients already".
PG_POOL_SIZE = 8
PG_POOL_TIMEOUT_SECONDS = 60


def local_data_dir() -> Path:
    """Folder for the embedded default's files (SQLite app DB, rate-limit buckets, Dagster home)."""
    path = Path(os.environ.get(DATA_DIR_ENV, Path.cwd() / ".data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_database_url() -> str:
    """`PHRONESIS_DATABASE_URL` when set, else a SQLite file under the local data folder."""
    return os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{local_data_dir() / 'phronesis.db'}"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (SQLAlchemy would otherwise pick psycopg2)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


# Keyed by process id too: a forked child must not inherit a lock held by a parent's thread.
_write_locks: dict[tuple[int, str], threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(url: str) -> threading.Lock:
    key = (os.getpid(), normalize_url(url))
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


@contextmanager
def short_write(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` for a short write transaction that waits on nothing else (per-call
    bookkeeping, one stored outcome). On SQLite the threads of this process take turns on a
    process-local lock first: SQLite's busy handler polls with sleeps of up to 100 ms, so a
    dozen threads contending for its write lock leave it idle most of the time. Every such
    write of the process must come through here, or one outside writer makes the lock holders
    sleep in that busy handler. Other processes still meet SQLite's own lock and busy timeout;
    the lock holds no state. Never nest it. PostgreSQL needs no lock (row locks queue)."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with _write_lock(engine.url.render_as_string(hide_password=False)), engine.begin() as conn:
        yield conn


@lru_cache(maxsize=16)
def engine_for(url: str) -> sa.Engine:
    """One pooled engine per URL per process. A pool is a per-process cache of connections, not
    state that must survive the process, so caching it here is safe across Dagster runs."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001
            # WAL lets the sensor read while a run writes; the busy timeout makes concurrent
            # writers from several run processes wait instead of failing.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL syncs at checkpoints instead of on every commit: the database
            # stays consistent, a power cut may lose the last commits. FULL made each provider
            # call's bookkeeping wait on an fsync, which was most of a batch run's wall time.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
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


class AppDatabase(dg.ConfigurableResource):
    """The Phronesis app database (tenants, users, prospects, activity_log, usage and enrichment
    tables).

    PostgreSQL in production; a SQLite file under `.data/` on a laptop. The pipeline connects with
    a role that may read every tenant (a role with BYPASSRLS, or the table owner): row-level
    security isolates the web app's tenants from each other, not the pipeline from the data.
    """

    url: str = Field(
        default_factory=default_database_url,
        description=f"SQLAlchemy URL of the app database. Defaults to ${DATABASE_URL_ENV}, "
        "else a SQLite file under the local data folder.",
    )

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.url)

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def begin_short_write(self) -> Iterator[sa.Connection]:
        """`begin()` for a short write transaction that waits on nothing else: see
        `short_write`."""
        with short_write(self.engine) as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    def display_url(self) -> str:
        """The URL with any password hidden, for logs and metadata."""
        return sa.make_url(normalize_url(self.url)).render_as_string(hide_password=True)
