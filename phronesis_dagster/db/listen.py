"""PostgreSQL LISTEN on the app database: wait, up to a deadline, for a NOTIFY on a channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from phronesis_dagster.db.statements import libpq_url

# Sent by the trigger of migration 0007 when a request without a job (a rep's click) commits.
ENRICHMENT_REQUESTS_CHANNEL = "phronesis_enrichment_requests"


class Listener:
    """A connection LISTENing on one channel; notifications that arrive before `wait` is
    called are kept by the connection and returned by it."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn

    def wait(self, timeout: float) -> bool:
        """True as soon as a notification is there, False after `timeout` seconds without."""
        if timeout <= 0:
            return False
        for _ in self._conn.notifies(timeout=timeout, stop_after=1):
            return True
        return False


@contextmanager
def listening(app_db_url: str, channel: str) -> Iterator[Listener]:
    """LISTEN on `channel` on a connection of its own (autocommit: a notification is delivered
    only outside a transaction), closed on exit."""
    with psycopg.connect(libpq_url(app_db_url), autocommit=True) as conn:
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield Listener(conn)
