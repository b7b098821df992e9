"""The per-call statements fit psycopg's parse cache, and losing their comments changes nothing
else of them."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from psycopg import _queries
from sqlalchemy.dialects import postgresql

from phronesis_dagster.db import sql_files
from phronesis_dagster.db.sql_files import (
    DRIVER_CACHED_STATEMENT_CHARS,
    SQL_DIR,
    load_sql,
    load_statement,
)

PER_CALL = ["provider_call_record", "enrichment_job_progress"]


def test_our_limit_is_the_drivers():
    # An upgrade of psycopg that changes its cache would otherwise go unnoticed.
    assert _queries.MAX_CACHED_STATEMENT_LENGTH == DRIVER_CACHED_STATEMENT_CHARS


@pytest.mark.parametrize("name", PER_CALL)
def test_per_call_statements_fit_the_cache_as_the_driver_sees_them(name):
    """What psycopg is given is SQLAlchemy's compiled text (`:name` -> `%(name)s`)."""
    compiled = str(sa.text(load_statement(name)).compile(dialect=postgresql.psycopg.dialect()))
    assert len(compiled) <= DRIVER_CACHED_STATEMENT_CHARS
    assert len(load_sql(name)) > len(load_statement(name))


@pytest.mark.parametrize("name", PER_CALL)
def test_only_comments_and_indentation_are_dropped(name):
    words = re.compile(r"[^\s]+")
    without_comments = re.sub(r"--[^\n]*", "", load_sql(name))
    assert words.findall(load_statement(name)) == words.findall(without_comments)


def test_no_sql_file_has_a_comment_marker_inside_a_string_literal():
    """`load_statement` drops everything after `--` on a line: inside a string literal that
    would change the statement."""
    for path in SQL_DIR.glob("*.sql"):
        code = re.sub(r"--[^\n]*", "", path.read_text())
        literals = re.findall(r"'(?:[^']|'')*'", code)
        assert not [s for s in literals if "--" in s], path.name


def test_a_statement_too_long_for_the_cache_is_refused(monkeypatch):
    load_statement.cache_clear()
    monkeypatch.setattr(sql_files, "load_sql", lambda name: "SELECT 1;\n" * 500)
    try:
        with pytest.raises(ValueError, match="parsed at every call"):
            load_statement("long_one")
    finally:
        load_statement.cache_clear()
