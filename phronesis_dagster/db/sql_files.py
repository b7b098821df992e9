"""The SQL kept in `db/sql/*.sql`, loaded by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of `db/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()


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
