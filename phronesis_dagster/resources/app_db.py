"""The app database resource: the web app's PostgreSQL (production) or any PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa
from pydantic import Field

from phronesis_dagster.db.engine import (
    DATABASE_URL_ENV,
    default_database_url,
    engine_for,
    normalize_url,
    short_write,
)


class AppDatabase(dg.ConfigurableResource):
    """The Phronesis app database (tenants, users, prospects, activity_log, usage and enrichment
    tables).

    PostgreSQL only: the web app's database in production, an embedded server on a laptop. The
    pipeline connects with
    a role that may read every tenant (a role with BYPASSRLS, or the table owner): row-level
    security isolates the web app's tenants from each other, not the pipeline from the data.
    """

    # Empty when unset, so definitions load without a database; the first use then raises
    # default_database_url()'s one-line error.
    url: str = Field(
        default_factory=lambda: os.environ.get(DATABASE_URL_ENV, ""),
        description=f"SQLAlchemy URL of the PostgreSQL app database. Defaults to "
        f"${DATABASE_URL_ENV}.",
    )

    @property
    def database_url(self) -> str:
        """The URL in use: `url`, else `$PHRONESIS_DATABASE_URL` (a one-line error when unset)."""
        return self.url or default_database_url()

    @property
    def engine(self) -> sa.Engine:
        return engine_for(self.database_url)

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
        if not self.url:
            return f"(unset: ${DATABASE_URL_ENV})"
        return sa.make_url(normalize_url(self.url)).render_as_string(hide_password=True)
