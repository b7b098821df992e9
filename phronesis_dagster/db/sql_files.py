"""The SQL kept in `db/sql/*.sql`, loaded by name."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of `db/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


# psycopg parses a statement's placeholders at every execution unless its text is at most this
# long (psycopg/_queries.py, MAX_CACHED_STATEMENT_LENGTH): then the parse is cached.
DRIVER_CACHED_STATEMENT_CHARS = 4096
_COMMENT_OR_INDENT = re.compile(r"--[^\n]*|^[ \t]+", re.MULTILINE)


@cache
def load_statement(name: str) -> str:
    """`db/sql/<name>.sql` for a statement run per provider call: without its comments and
    indentation, so that it fits psycopg's parse cache. `provider_call_record` is 5.7 KB as
    written, and its parse cost 0.13 ms of CPU at every call (2026-12-03). The files must have
    no `--` inside a string literal (checked by tests/db/test_sql_files.py)."""
    text = "\n".join(
        line for line in _COMMENT_OR_INDENT.sub("", load_sql(name)).splitlines() if line.strip()
    )
    if len(text) > DRIVER_CACHED_STATEMENT_CHARS:
        raise ValueError(
            f"{name}.sql is {len(text)} characters without comments: over psycopg's cached "
            f"{DRIVER_CACHED_STATEMENT_CHARS}, it would be parsed at every call"
        )
    return text


def execute_script(conn: sa.Connection, name: str) -> None:
    """Run `db/sql/<name>.sql`, many statements at once, in `conn`'s transaction.

    Straight through the driver cursor with no parameters: SQLAlchemy would pass an empty
    parameter list, and psycopg would then read the `%s` of a DO block's format() as a
    placeholder.
    """
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(load_sql(name))
    finally:
        cursor.close()
