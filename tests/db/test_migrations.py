"""The app-database migrations go up, all the way down, and up again on both dialects."""

from datetime import date

import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import ensure_activity_log_partitions
from phronesis_dagster.db import migrate
from phronesis_dagster.resources.app_db import engine_for


def tables(url: str) -> set[str]:
    return set(sa.inspect(engine_for(url)).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(db_url):
    migrated = tables(db_url)
    assert {"activity_log", "usage_metrics_daily", "tenants", "users"} <= migrated
    head = migrate.current(db_url)
    assert head is not None
    if engine_for(db_url).dialect.name == "postgresql":
        # Partitions the pipeline created must not block the downgrade.
        with engine_for(db_url).begin() as conn:
            ensure_activity_log_partitions(conn, today=date(2025, 6, 1), months_ahead=1)

    migrate.downgrade(db_url, "base")
    engine_for(db_url).dispose()
    assert tables(db_url) == set()
    assert migrate.current(db_url) is None

    migrate.upgrade(db_url)
    engine_for(db_url).dispose()
    assert tables(db_url) == migrated
    assert migrate.current(db_url) == head
