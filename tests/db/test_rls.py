"""Row-level security on PostgreSQL: a web-app role sees only the tenant it is set to.

Superusers and table owners bypass RLS, so the test connects as a fresh non-superuser LOGIN role
that only has SELECT, exactly like the web app would.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import ensure_activity_log_partitions
from phronesis_dagster.assets.usage import rollup_usage_day
from phronesis_dagster.db.models import TENANT_TABLES, ActivityLog, Tenant, User
from phronesis_dagster.resources.app_db import AppDatabase, engine_for

pytestmark = pytest.mark.postgres

DAY = date(2025, 5, 6)
TABLES = ("tenants", *TENANT_TABLES)


@pytest.fixture
def web_role(postgres_url: str) -> Iterator[str]:
    """A LOGIN role without BYPASSRLS that may SELECT the tenant tables; dropped afterwards."""
    role = f"rls_{uuid.uuid4().hex[:12]}"
    owner = engine_for(postgres_url)
    with owner.begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        conn.exec_driver_sql(f'GRANT SELECT ON {", ".join(TABLES)} TO "{role}"')
    try:
        yield role
    finally:
        with owner.begin() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


def seed_two_tenants(app_db: AppDatabase) -> dict[int, int]:
    """Two tenants with one user each and some activity on DAY; {tenant_id: user_id}."""
    out = {}
    with app_db.begin() as conn:
        ensure_activity_log_partitions(conn, today=DAY, months_ahead=0)
        for name in ("Acme", "Globex"):
            tenant_id = conn.execute(
                sa.insert(Tenant).values(name=name).returning(Tenant.id)
            ).scalar_one()
            user_id = conn.execute(
                sa.insert(User)
                .values(tenant_id=tenant_id, email=f"a@{name}.test", full_name=name)
                .returning(User.id)
            ).scalar_one()
            conn.execute(
                sa.insert(ActivityLog),
                [
                    {
                        "tenant_id": tenant_id,
                        "user_id": user_id,
                        "action_type": "login",
                        "created_at": datetime(2025, 5, 6, 9, tzinfo=UTC),
                    }
                ]
                * 2,
            )
            out[tenant_id] = user_id
        rollup_usage_day(conn, DAY)
    return out


def visible_tenant_ids(url: str, tenant: int | None) -> dict[str, set[int]]:
    with sa.create_engine(url, poolclass=sa.NullPool).connect() as conn:
        if tenant is not None:
            conn.execute(
                sa.text("SELECT set_config('app.current_tenant_id', :t, false)"), {"t": str(tenant)}
            )
        seen = {}
        for table in TABLES:
            column = "id" if table == "tenants" else "tenant_id"
            seen[table] = set(conn.execute(sa.text(f"SELECT {column} FROM {table}")).scalars())
        # A partition queried directly must not leak either.
        seen["activity_log_y2025m05"] = (
            set(conn.execute(sa.text("SELECT tenant_id FROM activity_log_y2025m05")).scalars())
            if _can_select(conn, "activity_log_y2025m05")
            else set()
        )
        return seen


def _can_select(conn: sa.Connection, table: str) -> bool:
    return conn.execute(
        sa.text("SELECT has_table_privilege(:t, 'SELECT')"), {"t": table}
    ).scalar_one()


def test_tenant_sees_only_its_own_rows(postgres_url, web_role):
    app_db = AppDatabase(url=postgres_url)
    users = seed_two_tenants(app_db)
    tenant_a, tenant_b = sorted(users)
    role_url = (
        sa.make_url(app_db.engine.url).set(username=web_role).render_as_string(hide_password=False)
    )

    as_a = visible_tenant_ids(role_url, tenant_a)
    for table in ("tenants", "users", "activity_log", "usage_metrics_daily"):
        assert as_a[table] == {tenant_a}, table
    assert all(tenant_b not in ids for ids in as_a.values())

    as_b = visible_tenant_ids(role_url, tenant_b)
    assert as_b["usage_metrics_daily"] == {tenant_b}
    assert as_b["activity_log"] == {tenant_b}

    # No tenant set: nothing at all.
    assert all(ids == set() for ids in visible_tenant_ids(role_url, None).values())

    # The pipeline's own connection (table owner) still reads every tenant.
    with app_db.connect() as conn:
        all_ids = set(conn.execute(sa.text("SELECT tenant_id FROM usage_metrics_daily")).scalars())
    assert all_ids == {tenant_a, tenant_b}


def test_partition_queried_directly_is_isolated_too(postgres_url, web_role):
    app_db = AppDatabase(url=postgres_url)
    users = seed_two_tenants(app_db)
    tenant_a, _ = sorted(users)
    with app_db.begin() as conn:
        conn.exec_driver_sql(f'GRANT SELECT ON activity_log_y2025m05 TO "{web_role}"')
    role_url = (
        sa.make_url(app_db.engine.url).set(username=web_role).render_as_string(hide_password=False)
    )
    assert visible_tenant_ids(role_url, tenant_a)["activity_log_y2025m05"] == {tenant_a}
