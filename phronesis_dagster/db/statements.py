"""The statements every provider call runs, on direct psycopg connections.

A provider call runs three statements: its rate-limit slot (`phronesis_rate_limit_ask`), its
call record (usage, call log and breaker count: `db/sql/provider_call_record.sql`) and its
stored outcome (the result row and the prospect's column: `enrichment.store.save_result`). They
run here, not through the SQLAlchemy engine of `db/engine.py`, because the engine's way cost
more than the statements: measured with bench/call_cost.py and cProfile on 2026-12-07, a call
went through 13 statements for its 3 (the pool's pre-ping `SELECT 1` at each checkout, the
autocommit switches, BEGIN and COMMIT around the two writes of an outcome), and SQLAlchemy's
execution path around each. Here each statement is one round trip in autocommit (each is atomic
by itself), on a pooled connection with no checkout ping, and psycopg prepares it on the server
after its fifth execution on a connection.

Without the ping a connection the server dropped (a restart, a failover, a DBA's kill) is found
when a statement fails on it: `execute` then runs the statement once more on a fresh connection.
A statement that failed at the send never ran; one whose connection broke while the server was
answering may have run, and runs again: counted twice rather than lost, which is the way a usage
counter may err (the call log row shows both).

One pool per process and database (a forked child opens its own): a cache of connections, not
state; the rate limits, usage counts and breaker state live in the tables.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import psycopg
import sqlalchemy as sa
from psycopg_pool import ConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql import psycopg as sa_psycopg

from phronesis_dagster.db.engine import normalize_url

# Connections per process for these statements, shared by every provider thread (each holds one
# for a round trip): with the engine's PG_POOL_SIZE, 8 + 6 per run process; four runs at once
# stay under PostgreSQL's default max_connections of 100 (docs/deployment.md, the budget).
CALL_POOL_SIZE = 6
# How long a thread waits for a free connection of the pool before the statement fails.
CALL_POOL_TIMEOUT_SECONDS = 60.0
# Named, so pg_stat_activity tells these connections from the engine's and the web app's.
CALL_APPLICATION_NAME = "phronesis-calls"
# What a lost connection raises (the server went away), or an exhausted pool.
CONNECTION_ERRORS = (psycopg.OperationalError, PoolTimeout)

T = TypeVar("T")

_PSYCOPG_DIALECT = sa_psycopg.dialect()
_pools: dict[tuple[int, str], ConnectionPool] = {}
_lock = threading.Lock()


@cache
def libpq_url(app_db_url: str) -> str:
    """The app database's URL as psycopg takes it (`postgresql://...`). Anything but PostgreSQL
    is an error: these statements (and the rate limits, usage and breaker they keep) must be
    shared by every process, and only the PostgreSQL app database is."""
    url = sa.make_url(normalize_url(app_db_url))
    if url.get_backend_name() != "postgresql":
        raise ValueError(
            "the per-call bookkeeping (rate limits, usage, breaker) needs the PostgreSQL app "
            "database, got a "
            f"{url.get_backend_name()!r} URL"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class Statement:
    """A statement as psycopg runs it: its SQL with `%(name)s` placeholders, and the values of
    the constants SQLAlchemy turned into parameters."""

    sql: str
    constants: Mapping[str, object]


def compile_statement(statement: sa.Executable) -> Statement:
    """`statement` (a SQLAlchemy construct or `text()`) compiled once for psycopg: the construct
    documents the statement, psycopg runs it. Values are passed as psycopg adapts them (JSON as
    `psycopg.types.json.Jsonb`)."""
    compiled = statement.compile(dialect=_PSYCOPG_DIALECT)
    constants = {k: v for k, v in compiled.params.items() if v is not None}
    return Statement(str(compiled), constants)


def _pool(location: str) -> ConnectionPool:
    key = (os.getpid(), location)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    with _lock:
        pool = _pools.get(key)
        if pool is None:
            pool = _pools[key] = ConnectionPool(
                location,
                min_size=0,
                max_size=CALL_POOL_SIZE,
                timeout=CALL_POOL_TIMEOUT_SECONDS,
                kwargs={"autocommit": True, "application_name": CALL_APPLICATION_NAME},
                open=True,
            )
        return pool


@contextmanager
def call_connection(app_db_url: str) -> Iterator[psycopg.Connection]:
    """A pooled autocommit connection to the app database, for one statement at a time. A
    connection left broken is discarded by the pool when it comes back."""
    # getconn/putconn rather than the pool's `connection()`, which nests a second generator
    # context manager and the connection's own (ending a transaction an autocommit statement
    # never leaves open): 77 against 102 us of CPU per small statement with neither, median of
    # five alternating runs of 7 x 1,000 on 2026-12-08; this one context manager kept for both
    # callers measured 78-92 us beside them.
    pool = _pool(libpq_url(app_db_url))
    conn = pool.getconn()
    try:
        yield conn
    finally:
        pool.putconn(conn)


def _run(app_db_url: str, run: Callable[[psycopg.Connection], T]) -> T:
    """`run(connection)` on a pooled connection; on a connection the server dropped, once more
    on a fresh one (see the module's doc). The pool's other idle connections are checked first:
    a restart drops them all, and the second try must not get another dead one."""
    try:
        with call_connection(app_db_url) as conn:
            return run(conn)
    except psycopg.OperationalError:
        _pool(libpq_url(app_db_url)).check()
    with call_connection(app_db_url) as conn:
        return run(conn)


def _values(statement: Statement, params: Mapping[str, object]) -> Mapping[str, object]:
    return {**statement.constants, **params} if statement.constants else params


def execute(app_db_url: str, statement: Statement, params: Mapping[str, object]) -> tuple | None:
    """Run one statement (atomic by itself) and return its first row, if any. A connection
    the server dropped is replaced and the statement run once more (see the module's doc)."""
    values = _values(statement, params)

    def run(conn: psycopg.Connection) -> tuple | None:
        cursor = conn.execute(statement.sql, values)
        return cursor.fetchone() if cursor.description is not None else None

    return _run(app_db_url, run)


def fetch_all(app_db_url: str, statement: Statement, params: Mapping[str, object]) -> list[tuple]:
    """Run one query and return all its rows (as `execute`)."""
    values = _values(statement, params)
    return _run(app_db_url, lambda conn: conn.execute(statement.sql, values).fetchall())


def execute_many(app_db_url: str, statement: Statement, rows: list[Mapping[str, object]]) -> None:
    """Run one statement per row, in one transaction (all rows or none), pipelined."""
    values = [_values(statement, row) for row in rows]

    def run(conn: psycopg.Connection) -> None:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(statement.sql, values)

    _run(app_db_url, run)
