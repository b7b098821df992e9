"""Adopting the web app's own database (production's path): schema.sql applied first, with an
extra column and an extra partition month as a real deployment has, seeded with UUID rows the
way the web app writes them. `phronesis migrate` then adds only ours (twice: nothing changes,
none of the web app's rows touched), and the nightly rollup, the quota and ops datasets and
row-level security work on it. The enrichment half of the story is tests/enrichment's.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.ops import (
    enrichment_error_feed,
    enrichment_health_daily,
    tenant_activity_daily,
)
from phronesis_dagster.assets.quotas import api_quota_daily
from phronesis_dagster.assets.usage import usage_metrics_daily
from phronesis_dagster.checks.usage import USAGE_CHECKS
from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import (
    COUNTER_COLUMNS,
    OUR_TENANT_TABLES,
    TENANT_TABLES,
    WEBAPP_TABLES,
)
from phronesis_dagster.db.sql_files import execute_script
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.redis_counters import WebAppRedis
from tests.db.test_migrations import apply_webapp_schema
from tests.db.test_rls import (
    create_web_role,
    drop_role,
    role_url,
    seed_tenant_rows,
    visible_tenant_ids,
)

# Fixture data ---------------------------------------------------------------------------------
DAY = date(2026, 11, 17)
MIDNIGHT = datetime(2026, 11, 17, tzinfo=UTC)
TENANT_A, TENANT_B = uuid.uuid4(), uuid.uuid4()
ANNA, BEN, CARA = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()  # Anna, Ben: tenant A; Cara: B
USER_TENANT = {ANNA: TENANT_A, BEN: TENANT_A, CARA: TENANT_B}
OLD_LIST, NEW_LIST, BENS_LIST, CARAS_LIST = (str(uuid.uuid4()) for _ in range(4))
# (user, action, hours after midnight of DAY, metadata)
EVENTS: list[tuple[uuid.UUID, str, float, dict]] = [
    (ANNA, "add_to_list", -30, {"list_id": OLD_LIST}),  # two days before: OLD_LIST exists
    (ANNA, "login", -2, {}),  # the day before
    (ANNA, "login", 0, {}),  # the first instant of DAY
    (ANNA, "search_executed", 1, {"query": "cfo"}),
    (ANNA, "profile_viewed", 2, {}),
    (ANNA, "add_to_list", 3, {"list_id": OLD_LIST}),  # not a new list
    (ANNA, "add_to_list", 4, {"list_id": NEW_LIST}),  # Anna creates NEW_LIST ...
    (BEN, "add_to_list", 5, {"list_id": NEW_LIST}),  # ... Ben only adds to it
    (BEN, "add_to_list", 6, {"list_id": BENS_LIST}),
    (BEN, "add_to_list", 7, {}),  # no list id: no list
    (BEN, "csv_exported", 8, {}),
    (BEN, "profile_enriched", 9, {}),
    (CARA, "login", 10, {}),
    (CARA, "add_to_list", 11, {"list_id": CARAS_LIST}),
    (CARA, "lookalike_search", 23.99, {}),
    (CARA, "note_added", 24, {}),  # the next day
]
LISTS_CREATED = {ANNA: 1, BEN: 1, CARA: 1}
# Prospects as the web app left them: structured, legacy strings, and one "reset".
PROSPECTS: list[tuple[uuid.UUID, uuid.UUID, object]] = [
    (uuid.uuid4(), TENANT_A, {"contactout": {"status": "complete", "at": "2026-11-17T09:00:00Z"}}),
    (uuid.uuid4(), TENANT_A, {"contactout": "complete", "exa": "failed", "sec": "skipped"}),
    (uuid.uuid4(), TENANT_B, "reset"),
    (uuid.uuid4(), TENANT_B, {}),
]
LEGACY_FAILED = PROSPECTS[1][0]


def _webapp_seed(conn: sa.Connection) -> None:
    """Rows written the way the web app writes them: plain SQL, its own UUIDs."""
    for tenant_id, name in ((TENANT_A, "Acme"), (TENANT_B, "Globex")):
        conn.execute(
            sa.text("INSERT INTO tenants (id, name) VALUES (:id, :n)"), {"id": tenant_id, "n": name}
        )
    for user_id, tenant_id in USER_TENANT.items():
        conn.execute(
            sa.text("INSERT INTO users (id, tenant_id, email) VALUES (:id, :t, :e)"),
            {"id": user_id, "t": tenant_id, "e": f"{user_id.hex[:6]}@example.test"},
        )
    for prospect_id, tenant_id, status in PROSPECTS:
        conn.execute(
            sa.text(
                "INSERT INTO prospects (id, tenant_id, name, crm_owner, enrichment_status, "
                "enrichment_source_status, last_enriched_at, ai_summary) "
                "VALUES (:id, :t, 'P', 'owner@crm', 'complete', CAST(:s AS JSONB), :at, 'Text')"
            ),
            {
                "id": prospect_id,
                "t": tenant_id,
                "s": json.dumps(status),
                "at": MIDNIGHT + timedelta(hours=9),
            },
        )
    for user_id, action, hours, metadata in EVENTS:
        conn.execute(
            sa.text(
                "INSERT INTO activity_log (tenant_id, user_id, action_type, target_type, "
                "target_id, metadata, ip_address, created_at) VALUES (:t, :u, :a, 'prospect', "
                ":target, CAST(:m AS JSONB), '10.0.0.1', :at)"
            ),
            {
                "t": USER_TENANT[user_id],
                "u": user_id,
                "a": action,
                "target": uuid.uuid4(),
                "m": json.dumps(metadata),
                "at": MIDNIGHT + timedelta(hours=hours),
            },
        )
    # A usage row of the web app's own, long before: no rollup of DAY may touch it.
    conn.execute(
        sa.text(
            "INSERT INTO usage_metrics_daily (date, tenant_id, user_id, total_logins) "
            "VALUES ('2026-10-01', :t, :u, 7)"
        ),
        {"t": TENANT_A, "u": ANNA},
    )


@pytest.fixture
def webapp_url(empty_postgres_url: str) -> str:
    """The web app's database as production has it, before `phronesis migrate`."""
    apply_webapp_schema(empty_postgres_url)
    with engine_for(empty_postgres_url).begin() as conn:
        # A real deployment has more than schema.sql shows.
        conn.exec_driver_sql("ALTER TABLE prospects ADD COLUMN crm_owner TEXT")
        conn.exec_driver_sql(
            "CREATE TABLE activity_log_2026_11 PARTITION OF activity_log "
            "FOR VALUES FROM ('2026-11-01 00:00:00+00') TO ('2026-12-01 00:00:00+00')"
        )
        conn.exec_driver_sql(
            "CREATE TABLE activity_log_2026_10 PARTITION OF activity_log "
            "FOR VALUES FROM ('2026-10-01 00:00:00+00') TO ('2026-11-01 00:00:00+00')"
        )
        _webapp_seed(conn)
    return empty_postgres_url


def webapp_rows(url: str, columns: dict[str, list[str]]) -> dict[str, list[tuple]]:
    """Every row of the web app's tables, on the columns they had before we migrated."""
    out = {}
    with engine_for(url).connect() as conn:
        for table, cols in columns.items():
            names = ", ".join(f'"{c}"::text' for c in cols)
            out[table] = conn.execute(
                sa.text(f"SELECT {names} FROM {table} ORDER BY 1, {len(cols)}")
            ).all()
    return out


def webapp_columns(url: str) -> dict[str, list[str]]:
    inspector = sa.inspect(engine_for(url))
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in WEBAPP_TABLES}


SCHEMA_SNAPSHOT = """
SELECT 'column' AS kind, table_name || '.' || column_name AS name,
       concat_ws(' ', data_type, is_nullable, column_default) AS detail
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'policy', tablename || '.' || policyname, concat_ws(' ', qual, with_check)
FROM pg_policies WHERE schemaname = 'public'
UNION ALL
SELECT 'index', tablename || '.' || indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass::text || '.' || conname, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'rls', relname, relrowsecurity::text FROM pg_class
WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p')
UNION ALL
SELECT 'function', proname, pg_get_function_identity_arguments(oid) FROM pg_proc
WHERE pronamespace = 'public'::regnamespace
ORDER BY 1, 2, 3
"""


def schema_snapshot(url: str) -> list[tuple]:
    with engine_for(url).connect() as conn:
        return conn.execute(sa.text(SCHEMA_SNAPSHOT)).all()


def expected_usage() -> dict[tuple[uuid.UUID, uuid.UUID], dict[str, int]]:
    """The day's counters computed here, from EVENTS, independently of the rollup's SQL."""
    counts: dict[uuid.UUID, Counter] = {}
    for user_id, action, hours, _ in EVENTS:
        if 0 <= hours < 24:
            counts.setdefault(user_id, Counter())[action] += 1
    out = {}
    for user_id, c in counts.items():
        row = {column: c[action] for action, column in COUNTER_COLUMNS.items()}
        row["lists_created"] = LISTS_CREATED[user_id]
        row["total_events"] = sum(c.values())
        out[(USER_TENANT[user_id], user_id)] = row
    return out


def stored_usage(app_db: AppDatabase, day: date) -> dict[tuple[uuid.UUID, uuid.UUID], dict]:
    columns = [*COUNTER_COLUMNS.values(), "lists_created", "total_events"]
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.text(
                f"SELECT tenant_id, user_id, {', '.join(columns)} FROM usage_metrics_daily "
                "WHERE date = :d"
            ),
            {"d": day},
        ).mappings()
        return {(r["tenant_id"], r["user_id"]): {c: r[c] for c in columns} for r in rows}


# Tests ----------------------------------------------------------------------------------------


def test_migrate_adds_only_ours_twice_and_never_touches_the_web_apps_rows(webapp_url):
    columns_before = webapp_columns(webapp_url)
    rows_before = webapp_rows(webapp_url, columns_before)

    migrate.upgrade(webapp_url)
    assert migrate.current(webapp_url) == migrate.head()
    first = schema_snapshot(webapp_url)
    assert webapp_rows(webapp_url, columns_before) == rows_before
    # Their extra column and extra partitions are still there, untouched.
    assert "crm_owner" in webapp_columns(webapp_url)["prospects"]
    for table, columns in columns_before.items():
        assert set(columns) <= set(webapp_columns(webapp_url)[table]), table

    # Twice: once through Alembic (a no-op at head), once replaying 0002's SQL itself.
    migrate.upgrade(webapp_url)
    with engine_for(webapp_url).begin() as conn:
        execute_script(conn, "migration_0002_pipeline")
    assert schema_snapshot(webapp_url) == first
    assert webapp_rows(webapp_url, columns_before) == rows_before


def test_both_paths_end_with_the_same_schema(webapp_url):
    # Path 2 (adoption) without the deployment's extras vs path 1 (an empty database).
    migrate.upgrade(webapp_url)
    with engine_for(webapp_url).begin() as conn:
        conn.exec_driver_sql("ALTER TABLE prospects DROP COLUMN crm_owner")
        conn.exec_driver_sql("DROP TABLE activity_log_2026_10, activity_log_2026_11")
    admin = sa.create_engine(
        sa.make_url(webapp_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    fresh = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{fresh}"')
    fresh_url = sa.make_url(webapp_url).set(database=fresh).render_as_string(hide_password=False)
    try:
        migrate.upgrade(fresh_url)
        assert schema_snapshot(fresh_url) == schema_snapshot(webapp_url)
    finally:
        engine_for(fresh_url).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        admin.dispose()


def test_nightly_rollup_counts_every_column_on_the_web_apps_database(webapp_url):
    migrate.upgrade(webapp_url)
    app_db = AppDatabase(url=webapp_url)
    result = dg.materialize(
        [usage_metrics_daily, *USAGE_CHECKS[:2]],
        partition_key=DAY.isoformat(),
        resources={"app_db": app_db},
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    assert stored_usage(app_db, DAY) == expected_usage()
    # The web app's own row of another day is still exactly as it wrote it.
    assert stored_usage(app_db, date(2026, 10, 1))[(TENANT_A, ANNA)]["total_logins"] == 7
    # Rows landed in the web app's own partition of the month, not in DEFAULT.
    with app_db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM activity_log_default")).scalar() == 0


def test_quota_and_ops_datasets_on_the_web_apps_database(webapp_url):
    migrate.upgrade(webapp_url)
    app_db = AppDatabase(url=webapp_url)
    with app_db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO api_usage (provider, date, origin, success_count, failure_count) "
                "VALUES ('edgar', :d, 'pipeline', 4, 1)"
            ),
            {"d": DAY},
        )
        conn.execute(
            sa.text(
                "INSERT INTO api_call_log (provider, endpoint, outcome, latency_ms, called_at) "
                "VALUES ('edgar', '/cgi-bin/browse-edgar', 'success', 120, :at)"
            ),
            {"at": MIDNIGHT + timedelta(hours=3)},
        )
    part = DAY.isoformat()
    resources = {"app_db": app_db, "web_app_redis": WebAppRedis(url="")}
    assert dg.materialize([usage_metrics_daily], partition_key=part, resources=resources).success
    for asset in (api_quota_daily, enrichment_health_daily, tenant_activity_daily):
        assert dg.materialize([asset], partition_key=part, resources=resources).success, asset
    assert dg.materialize([enrichment_error_feed], resources=resources).success

    with app_db.connect() as conn:
        quota = conn.execute(
            sa.text(
                "SELECT success_count, failure_count FROM api_quota_daily "
                "WHERE date = :d AND provider = 'edgar' AND origin = 'pipeline'"
            ),
            {"d": DAY},
        ).one()
        health = {
            r.source: r
            for r in conn.execute(
                sa.text("SELECT * FROM enrichment_health_daily WHERE date = :d"), {"d": DAY}
            )
        }
        feed = conn.execute(
            sa.text(
                "SELECT prospect_id, tenant_id, source, status, record_shape "
                "FROM enrichment_error_feed"
            )
        ).all()
        heatmap = {
            r.tenant_id: r
            for r in conn.execute(
                sa.text("SELECT * FROM tenant_activity_daily WHERE date = :d"), {"d": DAY}
            )
        }
    assert (quota.success_count, quota.failure_count) == (4, 1)
    # Health is what the pipeline's own batches did that day (enrichment_source_results), not
    # the web app's old records: no batch ran, so every source has its row of zeros.
    assert set(health) == {"apollo", "contactout", "exa", "sec", "claude"}
    assert all(r.total_count == 0 for r in health.values())
    assert feed == [(LEGACY_FAILED, TENANT_A, "exa", "failed", "legacy")]
    assert heatmap[TENANT_A].active_users == 2 and heatmap[TENANT_A].lists_created == 2
    assert heatmap[TENANT_B].total_events == 3


def test_rls_as_the_web_apps_role_on_the_adopted_database(webapp_url):
    migrate.upgrade(webapp_url)
    app_db = AppDatabase(url=webapp_url)
    dg.materialize(
        [usage_metrics_daily], partition_key=DAY.isoformat(), resources={"app_db": app_db}
    )
    with app_db.begin() as conn:
        for user_id, tenant_id in USER_TENANT.items():
            if user_id != BEN:
                seed_tenant_rows(conn, tenant_id, user_id)
    role = create_web_role(webapp_url)
    try:
        url = role_url(webapp_url, role)
        for tenant in (TENANT_A, TENANT_B):
            seen = visible_tenant_ids(url, tenant)
            for table in TENANT_TABLES:
                assert seen[table] == {tenant}, (table, tenant)
        # The pipeline's role (owner) reads every tenant of our tables.
        with app_db.connect() as conn:
            for table in OUR_TENANT_TABLES:
                ids = set(conn.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars())
                assert ids == {TENANT_A, TENANT_B}, table
    finally:
        drop_role(webapp_url, role)
