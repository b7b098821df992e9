"""activity_log partition maintenance on the web app's table: created ahead in its naming and
with its indexes, idempotent, partitions it made itself left alone, rows rescued from DEFAULT."""

from datetime import UTC, date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.activity_partitions import (
    activity_log_partitions,
    ensure_activity_log_partitions,
    partition_name,
)
from phronesis_dagster.checks.usage import default_partition_result
from phronesis_dagster.db.models import Tenant, User
from phronesis_dagster.resources.app_db import AppDatabase
from tests.metadata_tables import table_rows

TODAY = date(2025, 11, 20)
# The months schema.sql itself partitions.
WEBAPP_PARTITIONS = {f"activity_log_2026_0{m}" for m in range(2, 7)}


def attached_partitions(app_db: AppDatabase) -> set[str]:
    with app_db.connect() as conn:
        return set(
            conn.execute(
                sa.text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "WHERE i.inhparent = 'activity_log'::regclass"
                )
            ).scalars()
        )


def insert_at(app_db: AppDatabase, *stamps: datetime) -> None:
    with app_db.begin() as conn:
        tenant_id = conn.execute(
            sa.insert(Tenant).values(name="T").returning(Tenant.id)
        ).scalar_one()
        user_id = conn.execute(
            sa.insert(User).values(tenant_id=tenant_id, email="u@t.test").returning(User.id)
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO activity_log (tenant_id, user_id, action_type, created_at) "
                "VALUES (:t, :u, 'login', :at)"
            ),
            [{"t": tenant_id, "u": user_id, "at": s} for s in stamps],
        )


def rows_in(app_db: AppDatabase, table: str) -> int:
    with app_db.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_partitions_are_created_ahead_and_reruns_are_no_ops(app_db):
    with app_db.begin() as conn:
        first = ensure_activity_log_partitions(conn, today=TODAY, months_ahead=2)
    expected = {"activity_log_2025_11", "activity_log_2025_12", "activity_log_2026_01"}
    assert set(first.created) == expected
    assert attached_partitions(app_db) == expected | WEBAPP_PARTITIONS | {"activity_log_default"}

    with app_db.begin() as conn:
        second = ensure_activity_log_partitions(conn, today=TODAY, months_ahead=2)
    assert second.created == []
    assert set(second.partitions) == expected | WEBAPP_PARTITIONS

    # A row for next month now goes to its own partition, not the DEFAULT one.
    insert_at(app_db, datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
    assert rows_in(app_db, "activity_log_2025_12") == 1
    assert rows_in(app_db, "activity_log_default") == 0


def test_a_month_the_web_app_partitioned_under_another_name_is_left_alone(app_db):
    with app_db.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE activity_log_dec PARTITION OF activity_log "
            "FOR VALUES FROM ('2025-12-01 00:00:00+00') TO ('2026-01-01 00:00:00+00')"
        )
        result = ensure_activity_log_partitions(conn, today=TODAY, months_ahead=2)
    assert set(result.created) == {"activity_log_2025_11", "activity_log_2026_01"}
    # The web app's own months (schema.sql's 2026_02..06) are not recreated either.
    with app_db.begin() as conn:
        later = ensure_activity_log_partitions(conn, today=date(2026, 2, 10), months_ahead=2)
    assert later.created == []


def test_rows_parked_in_default_are_moved_into_the_new_partition(app_db):
    parked = [
        datetime(2025, 11, 1, tzinfo=UTC),
        datetime(2025, 11, 30, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2024, 6, 15, 12, tzinfo=UTC),  # an old month, also rescued
    ]
    far_future = datetime(2031, 1, 1, tzinfo=UTC)  # beyond the horizon: stays parked
    insert_at(app_db, *parked, far_future)
    assert rows_in(app_db, "activity_log_default") == 4

    # The PostgreSQL trap this maintenance exists for: a plain CREATE ... PARTITION OF fails.
    with pytest.raises(sa.exc.DBAPIError, match="would be violated by some row"):
        with app_db.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE activity_log_naive PARTITION OF activity_log "
                "FOR VALUES FROM ('2025-11-01 00:00:00+00') TO ('2025-12-01 00:00:00+00')"
            )

    with app_db.begin() as conn:
        result = ensure_activity_log_partitions(conn, today=TODAY, months_ahead=1)
    assert result.rescued_rows == 3
    assert result.left_in_default == 1
    assert partition_name(date(2024, 6, 1)) in result.created
    assert rows_in(app_db, "activity_log_2025_11") == 2
    assert rows_in(app_db, "activity_log_2024_06") == 1
    assert rows_in(app_db, "activity_log") == 4  # nothing lost
    # The moved rows keep their ids and timestamps.
    with app_db.connect() as conn:
        stamps = set(conn.execute(sa.text("SELECT created_at FROM activity_log")).scalars())
    assert stamps == set(parked) | {far_future}

    check = default_partition_result(app_db)
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rows_in_default"].value == 1
    assert table_rows(check.metadata["months"], ["month", "rows"]) == [
        {"month": "2031-01", "rows": 1}
    ]


def test_new_partitions_get_the_policy_and_the_web_apps_indexes(app_db):
    with app_db.begin() as conn:
        ensure_activity_log_partitions(conn, today=TODAY, months_ahead=0)
    with app_db.connect() as conn:
        policies = (
            conn.execute(
                sa.text("SELECT qual FROM pg_policies WHERE tablename = 'activity_log_2025_11'")
            )
            .scalars()
            .all()
        )
        indexes = set(
            conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'activity_log_2025_11'")
            ).scalars()
        )
    assert len(policies) == 1 and "uuid" in policies[0]
    assert {
        "idx_activity_log_2025_11_created_at",
        "idx_activity_log_2025_11_tenant_action",
        "idx_activity_log_2025_11_user",
        "idx_activity_log_2025_11_metadata",
    } <= indexes


def test_asset_reports_what_it_created(app_db):
    result = dg.materialize(
        [activity_log_partitions],
        resources={"app_db": app_db},
        run_config={"ops": {"activity_log_partitions": {"config": {"months_ahead": 1}}}},
    )
    assert result.success
    [mat] = result.asset_materializations_for_node("activity_log_partitions")
    assert mat.metadata["partitions_created"].value == 2
    attached = attached_partitions(app_db)
    assert len(attached) == 2 + len(WEBAPP_PARTITIONS) + 1
    listed = table_rows(mat.metadata["partitions"], ["partition", "created_now"])
    assert [r["partition"] for r in listed] == sorted(attached - {"activity_log_default"})
    assert {r["partition"] for r in listed if r["created_now"]} == set(
        mat.metadata["created"].value.split(", ")
    )
    assert sum(r["created_now"] for r in listed) == 2
    check = default_partition_result(app_db)
    assert check.passed
    assert table_rows(check.metadata["months"], ["month", "rows"]) == []
