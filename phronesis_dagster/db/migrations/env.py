"""Alembic environment: runs the app-database migrations on PostgreSQL."""

from __future__ import annotations

from alembic import context

from phronesis_dagster.db.engine import default_database_url, engine_for, normalize_url
from phronesis_dagster.db.models import Base

config = context.config
target_metadata = Base.metadata
# Our own name for Alembic's bookkeeping table: the web app's database is not ours to name
# generic tables in, and another tool's `alembic_version` must not be mistaken for ours.
VERSION_TABLE = "phronesis_alembic_version"


def _url() -> str:
    return normalize_url(config.get_main_option("sqlalchemy.url") or default_database_url())


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    with engine_for(_url()).connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection, target_metadata=target_metadata, version_table=VERSION_TABLE
    )
    with context.begin_transaction():
        # Two `phronesis migrate` at once (two pods starting) must not both apply 0001.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('phronesis_migrate'))")
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
