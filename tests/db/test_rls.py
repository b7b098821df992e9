"""Row-level security: a web-app role that sets `app.current_tenant_id` to a tenant's UUID sees
only that tenant's rows, in the web app's tables (their policies) and in ours (0002's).

Superusers and table owners bypass RLS, so the tests connect as a fresh non-superuser LOGIN role
that only has SELECT, exactly like the web app would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import ensure_activity_log_partitions
from phronesis_dagster.assets.usage import rollup_usage_day
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import (
    OUR_TENANT_TABLES,
    TENANT_TABLES,
    ActivityLog,
    EnrichmentErrorFeed,
    EnrichmentJob,
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
    Tenant,
    TenantActivityDaily,
    User,
)
from phronesis_dagster.resources.app_db import AppDatabase

DAY = date(2025, 5, 6)


def create_web_role(url: str, grants: tuple[str, ...] | None = None) -> str:
    """A LOGIN role without BYPASSRLS with `grants` ("SELECT ON prospects", ...); by default it
    may SELECT every tenant table. Drop it with `drop_role`."""
    if grants is None:
        grants = (f"SELECT ON {', '.join(TENANT_TABLES)}",)
    role = f"rls_{uuid.uuid4().hex[:12]}"
    with engine_for(url).begin() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS')
        for grant in grants:
            conn.exec_driver_sql(f'GRANT {grant} TO "{role}"')
    return role


def drop_role(url: str, role: str) -> None:
    with engine_for(url).begin() as conn:
        conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
        conn.exec_driver_sql(f'DROP ROLE "{role}"')


@pytest.fixture
def web_role(postgres_url: str) -> Iterator[str]:
    role = create_web_role(postgres_url)
    try:
        yield role
    finally:
        drop_role(postgres_url, role)


def seed_tenant_rows(conn: sa.Connection, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """One row of the tenant in each of our tenant tables."""
    prospect_id = conn.execute(
        sa.insert(Prospect).values(tenant_id=tenant_id, name="P").returning(Prospect.id)
    ).scalar_one()
    job_id = conn.execute(
        sa.insert(EnrichmentJob).values(tenant_id=tenant_id, total=1).returning(EnrichmentJob.id)
    ).scalar_one()
    conn.execute(
        sa.insert(EnrichmentRequest).values(
            tenant_id=tenant_id, prospect_id=prospect_id, requested_by=user_id, job_id=job_id
        )
    )
    conn.execute(
        sa.insert(EnrichmentSourceResult).values(
            batch_key="b",
            prospect_id=prospect_id,
            tenant_id=tenant_id,
            source="exa",
            status="complete",
        )
    )
    conn.execute(
        sa.insert(EnrichmentErrorFeed).values(
            prospect_id=prospect_id,
            tenant_id=tenant_id,
            source="sec",
            status="failed",
            record_shape="structured",
        )
    )
    conn.execute(sa.insert(TenantActivityDaily).values(date=DAY, tenant_id=tenant_id))


def seed_two_tenants(app_db: AppDatabase) -> list[uuid.UUID]:
    """Two tenants with a user, activity on DAY, its rollup and a row in each of our tables."""
    tenants = []
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
            seed_tenant_rows(conn, tenant_id, user_id)
            tenants.append(tenant_id)
        rollup_usage_day(conn, DAY)
    return tenants


def role_url(url: str, role: str) -> str:
    return sa.make_url(url).set(username=role).render_as_string(hide_password=False)


def visible_tenant_ids(
    url: str, tenant: uuid.UUID | None, tables: tuple[str, ...] = TENANT_TABLES
) -> dict[str, set[uuid.UUID]]:
    """tenant_ids a connection sees per table after the web app's `SET app.current_tenant_id`."""
    with sa.create_engine(url, poolclass=sa.NullPool).connect() as conn:
        if tenant is not None:
            conn.exec_driver_sql(f"SET app.current_tenant_id = '{tenant}'")
        return {
            table: set(conn.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars())
            for table in tables
        }


def test_tenant_sees_only_its_own_rows(postgres_url, web_role):
    app_db = AppDatabase(url=postgres_url)
    tenant_a, tenant_b = seed_two_tenants(app_db)
    url = role_url(postgres_url, web_role)

    for me in (tenant_a, tenant_b):
        seen = visible_tenant_ids(url, me)
        for table in TENANT_TABLES:
            assert seen[table] == {me}, table

    # No tenant set: nothing at all (NULL setting), in theirs and ours.
    assert all(ids == set() for ids in visible_tenant_ids(url, None).values())

    # The pipeline's own connection (table owner) still reads every tenant.
    with app_db.connect() as conn:
        for table in ("usage_metrics_daily", *OUR_TENANT_TABLES):
            ids = set(conn.execute(sa.text(f"SELECT tenant_id FROM {table}")).scalars())
            assert ids == {tenant_a, tenant_b}, table


def test_an_empty_setting_matches_nothing_in_our_tables(postgres_url, web_role):
    # A pooled connection after RESET holds '' (not NULL): ours match nothing instead of failing.
    tenant_a, _ = seed_two_tenants(AppDatabase(url=postgres_url))
    with sa.create_engine(role_url(postgres_url, web_role), poolclass=sa.NullPool).connect() as c:
        c.exec_driver_sql(f"SET app.current_tenant_id = '{tenant_a}'")
        c.exec_driver_sql("SET app.current_tenant_id = ''")
        for table in OUR_TENANT_TABLES:
            assert c.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one() == 0


def test_partitions_queried_directly_are_isolated_too(postgres_url, web_role):
    app_db = AppDatabase(url=postgres_url)
    tenant_a, _ = seed_two_tenants(app_db)
    with app_db.begin() as conn:
        conn.exec_driver_sql(
            f'GRANT SELECT ON activity_log_2025_05, activity_log_default TO "{web_role}"'
        )
        conn.execute(
            sa.insert(ActivityLog).values(
                tenant_id=tenant_a,
                user_id=conn.execute(
                    sa.select(User.id).where(User.tenant_id == tenant_a)
                ).scalar_one(),
                action_type="login",
                created_at=datetime(2031, 1, 1, tzinfo=UTC),  # no partition: DEFAULT
            )
        )
    seen = visible_tenant_ids(
        role_url(postgres_url, web_role), tenant_a, ("activity_log_2025_05", "activity_log_default")
    )
    assert seen == {"activity_log_2025_05": {tenant_a}, "activity_log_default": {tenant_a}}
