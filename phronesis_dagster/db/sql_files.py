"""The SQL kept in `db/sql/*.sql`, loaded by name."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def load_sql(name: str) -> str:
    """The text of `db/sql/<name>.sql`."""
    return (SQL_DIR / f"{name}.sql").read_text()
