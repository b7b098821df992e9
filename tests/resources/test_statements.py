"""The per-call statements' runners (`db/statements.py`) as EDGAR's caches use them: all rows
of a query, many rows in one transaction, and a connection the server dropped ridden out."""

from __future__ import annotations

from datetime import date

import psycopg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db import statements
from phronesis_dagster.resources import edgar
from tests.resources.test_rate_limit import _kill_bucket_connections

pytestmark = pytest.mark.postgres

ISSUER = "0000320193"
OWNERS = [
    {
        "issuer_cik": ISSUER,
        "owner_cik": "0001214156",
        "owner_name": "Cook Timothy D",
        "last_filing_date": date(2025, 10, 2),
    },
    {
        "issuer_cik": ISSUER,
        "owner_cik": "0001631982",
        "owner_name": "Adams Katherine L.",
        "last_filing_date": None,
    },
]


def test_many_rows_in_one_transaction_then_all_rows_back(pg_rdb):
    url = pg_rdb.database_url
    statements.execute_many(url, edgar._OWNERS_UPSERT, OWNERS)
    rows = statements.fetch_all(url, edgar._OWNERS_SELECT, {"issuer_cik": ISSUER})
    assert [r[:3] for r in rows] == [
        ("0001214156", "Cook Timothy D", date(2025, 10, 2)),
        ("0001631982", "Adams Katherine L.", None),
    ]


def test_many_rows_are_all_or_nothing(pg_rdb):
    broken = [*OWNERS, {**OWNERS[0], "owner_cik": None}]  # NOT NULL
    with pytest.raises(psycopg.errors.NotNullViolation):
        statements.execute_many(pg_rdb.database_url, edgar._OWNERS_UPSERT, broken)
    with pg_rdb.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM sec_reporting_owners")).scalar() == 0


def test_a_dropped_connection_is_replaced(pg_rdb):
    url = pg_rdb.database_url
    statements.execute_many(url, edgar._OWNERS_UPSERT, OWNERS[:1])
    assert _kill_bucket_connections(pg_rdb) >= 1
    assert len(statements.fetch_all(url, edgar._OWNERS_SELECT, {"issuer_cik": ISSUER})) == 1
    assert _kill_bucket_connections(pg_rdb) >= 1
    statements.execute_many(url, edgar._OWNERS_UPSERT, OWNERS[1:])
    assert len(statements.fetch_all(url, edgar._OWNERS_SELECT, {"issuer_cik": ISSUER})) == 2
