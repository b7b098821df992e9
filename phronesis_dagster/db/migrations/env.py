"""Alembic environment: runs the app-database migrations on PostgreSQL or SQLite."""

from __future__ import annotations

from alembic import context

from phronesis_dagster.db.models import Base
from phronesis_dagster.resources.app_db import default_database_url, engine_for, normalize_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return normalize_url(config.get_main_option("sqlalchemy.url") or default_database_url())


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
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
    # batch mode lets later migrations ALTER tables on SQLite, which has no ALTER COLUMN.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
