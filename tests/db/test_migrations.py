"""`phronesis migrate` on the two kinds of database it meets: an empty one (laptop, tests, a new
environment) and the web app's (schema.sql applied first, as in production)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import OUR_TENANT_TABLES, WEBAPP_TABLES
from phronesis_dagster.db.sql_files import SQL_DIR

SHARED_SCHEMA = Path(__file__).resolve().parents[2] / ".." / "shared" / "webapp" / "schema.sql"
OUR_TABLES = {
    *OUR_TENANT_TABLES,
    "api_usage",
    "api_call_log",
    "provider_circuit_state",
    "api_quota_daily",
    "api_quota_burn_daily",
    "enrichment_health_daily",
    "provider_rate_limit_grants",
}
OUR_PROSPECT_COLUMNS = {
    "person_data",
    "ai_summary_structured",
    "is_public_company",
    "company_ticker",
    "company_cik",
}


def apply_webapp_schema(url: str) -> None:
    """Apply the web app's schema.sql the way its README says (psql, stop on error)."""
    parts = sa.make_url(url)
    subprocess.run(
        [
            "psql",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            parts.host or "127.0.0.1",
            "-p",
            str(parts.port or 5432),
            "-U",
            parts.username or "postgres",
            "-d",
            parts.database,
            "-f",
            str(SQL_DIR / "webapp_schema.sql"),
        ],
        check=True,
        capture_output=True,
    )


def tables(url: str) -> set[str]:
    return set(sa.inspect(engine_for(url)).get_table_names())


def columns(url: str, table: str) -> dict[str, str]:
    return {c["name"]: str(c["type"]) for c in sa.inspect(engine_for(url)).get_columns(table)}


@pytest.mark.skipif(not SHARED_SCHEMA.exists(), reason="no ../shared/webapp/schema.sql here")
def test_packaged_schema_is_the_web_apps_byte_for_byte():
    assert (SQL_DIR / "webapp_schema.sql").read_bytes() == SHARED_SCHEMA.read_bytes()


def test_empty_database_gets_the_web_apps_tables_then_ours(empty_postgres_url):
    migrate.upgrade(empty_postgres_url)
    assert migrate.current(empty_postgres_url) == migrate.head()
    present = tables(empty_postgres_url)
    assert set(WEBAPP_TABLES) <= present
    assert OUR_TABLES <= present
    prospects = columns(empty_postgres_url, "prospects")
    assert prospects["id"] == "UUID"
    assert prospects["ai_summary"] == "TEXT"
    assert OUR_PROSPECT_COLUMNS <= set(prospects)
    assert columns(empty_postgres_url, "enrichment_jobs")["id"] == "UUID"
    assert columns(empty_postgres_url, "enrichment_requests")["prospect_id"] == "UUID"


def test_webapp_database_gets_only_ours_and_second_run_changes_nothing(empty_postgres_url):
    apply_webapp_schema(empty_postgres_url)
    before = {t: columns(empty_postgres_url, t) for t in WEBAPP_TABLES}
    migrate.upgrade(empty_postgres_url)
    after = {t: columns(empty_postgres_url, t) for t in WEBAPP_TABLES}
    for table in WEBAPP_TABLES:
        # Additive only: every column of theirs is still there with its type.
        assert before[table].items() <= after[table].items(), table
    assert set(after["prospects"]) - set(before["prospects"]) == OUR_PROSPECT_COLUMNS
    assert OUR_TABLES <= tables(empty_postgres_url)

    snapshot = (tables(empty_postgres_url), after)
    migrate.upgrade(empty_postgres_url)
    assert (
        tables(empty_postgres_url),
        {t: columns(empty_postgres_url, t) for t in WEBAPP_TABLES},
    ) == snapshot


def test_half_a_webapp_schema_is_refused_with_a_reason(empty_postgres_url):
    with engine_for(empty_postgres_url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE tenants (id UUID PRIMARY KEY)")
    with pytest.raises(RuntimeError, match="missing: users"):
        migrate.upgrade(empty_postgres_url)


def test_downgrade_drops_ours_and_keeps_the_web_apps(postgres_url):
    migrate.downgrade(postgres_url, "base")
    engine_for(postgres_url).dispose()
    present = tables(postgres_url)
    assert set(WEBAPP_TABLES) <= present
    assert not OUR_TABLES & present
    migrate.upgrade(postgres_url)
    assert migrate.current(postgres_url) == migrate.head()


def test_every_model_column_exists_in_the_migrated_database(postgres_url):
    # The models name the columns the code uses; the migrations create them. They must agree.
    from phronesis_dagster.db.models import Base

    inspector = sa.inspect(engine_for(postgres_url))
    for table in Base.metadata.sorted_tables:
        actual = {c["name"]: c for c in inspector.get_columns(table.name)}
        for column in table.columns:
            assert column.name in actual, f"{table.name}.{column.name}"
            db_type = actual[column.name]["type"]
            assert db_type.python_type == column.type.python_type or (
                # JSONB / INET have no python_type; compare by name.
                type(db_type).__name__ == type(column.type).__name__
            ), f"{table.name}.{column.name}: {db_type} vs {column.type}"


def test_the_rate_limit_migration_drops_pyrate_limiters_leftover_buckets(empty_postgres_url):
    """0006 replaces pyrate-limiter's per-bucket tables (made at first use) with one grants
    table and its function; a database that ran the old limiter keeps none of them."""
    migrate.upgrade(empty_postgres_url, "0005_request_enrichment")
    engine = engine_for(empty_postgres_url)
    with engine.begin() as conn:
        for bucket in ("exa", "apollo_enrichment"):
            conn.exec_driver_sql(
                f"CREATE TABLE ratelimit___provider_{bucket} "
                "(name VARCHAR, weight SMALLINT, item_timestamp TIMESTAMP)"
            )
        conn.exec_driver_sql("CREATE TABLE ratelimit_notes (id INT)")  # not one of them
        # Another schema's table of the same name is not ours to drop.
        conn.exec_driver_sql("CREATE SCHEMA elsewhere")
        conn.exec_driver_sql("CREATE TABLE elsewhere.ratelimit___provider_exa (id INT)")
    migrate.upgrade(empty_postgres_url)
    present = tables(empty_postgres_url)
    assert not {t for t in present if t.startswith("ratelimit___provider_")}
    assert {"ratelimit_notes", "provider_rate_limit_grants"} <= present
    inspector = sa.inspect(engine)
    assert inspector.get_table_names(schema="elsewhere") == ["ratelimit___provider_exa"]
    with engine.connect() as conn:
        granted = conn.exec_driver_sql("SELECT phronesis_rate_limit_take('exa', 1, 1150)")
        assert granted.scalar_one() == 0


def test_the_release_befores_rate_limit_function_shares_the_bucket(empty_postgres_url):
    """During a rolling deploy a process of the release before still calls 0006's
    `phronesis_rate_limit_take`: after 0008 it answers from the same grants as
    `phronesis_rate_limit_ask`, and a downgrade to 0007 leaves it working on its own."""
    migrate.upgrade(empty_postgres_url)
    engine = engine_for(empty_postgres_url)

    def take() -> float:
        with engine.begin() as conn:  # the grant is committed
            return conn.exec_driver_sql(
                "SELECT phronesis_rate_limit_take('exa', 2, 1150)"
            ).scalar_one()

    def ask() -> tuple[bool, float]:
        with engine.begin() as conn:  # the grant is committed
            row = conn.exec_driver_sql(
                "SELECT granted, wait_ms FROM phronesis_rate_limit_ask('exa', 2, 1150)"
            ).one()
            return row.granted, row.wait_ms

    assert take() == 0
    granted, wait_ms = ask()  # the second of two: fills the window
    assert granted and 0 < wait_ms <= 1150
    assert 0 < take() <= 1150  # refused: the old release sees the new one's grant

    migrate.downgrade(empty_postgres_url, "0007_request_notify")
    engine.dispose()
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM provider_rate_limit_grants")
    assert take() == 0
    with pytest.raises(sa.exc.ProgrammingError, match="phronesis_rate_limit_ask"):
        ask()
