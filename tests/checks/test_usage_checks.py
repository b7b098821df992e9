"""The usage checks fail when the data is wrong, and pass on a fresh rollup."""

import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.usage import usage_metrics_daily
from phronesis_dagster.checks.usage import (
    USAGE_CHECKS,
    USAGE_RECONCILES_CHECK,
    USAGE_UNIQUE_KEY_CHECK,
    reconcile_result,
    unique_key_result,
)
from phronesis_dagster.db.models import ActivityLog, Tenant, User
from phronesis_dagster.resources.app_db import AppDatabase
from tests.metadata_tables import table_rows

# Short names for the UUIDs the tests create: tenants 1, 2; users 10, 11 (tenant 1), 20 (tenant 2).
TENANTS = {n: uuid.uuid4() for n in (1, 2)}
USERS = {n: uuid.uuid4() for n in (10, 11, 20)}
DAY = date(2025, 3, 14)
MISMATCH_COLUMNS = ["counter", "activity_log", "usage_metrics_daily"]
DUPLICATE_COLUMNS = ["tenant_id", "user_id", "copies"]
MIDNIGHT = datetime(2025, 3, 14, tzinfo=UTC)
EVENTS = [
    (1, 10, "login"),
    (1, 10, "search_executed"),
    (1, 11, "profile_viewed"),
    (2, 20, "csv_exported"),
    (2, 20, "lookalike_search"),
]


def seed(app_db: AppDatabase) -> None:
    with app_db.begin() as conn:
        for n, tenant_id in TENANTS.items():
            conn.execute(sa.insert(Tenant).values(id=tenant_id, name=f"T{n}"))
        for n, user_id in USERS.items():
            conn.execute(
                sa.insert(User).values(id=user_id, tenant_id=TENANTS[n // 10], email=f"{n}@t")
            )
        conn.execute(
            sa.insert(ActivityLog),
            [
                {
                    "tenant_id": TENANTS[t],
                    "user_id": USERS[u],
                    "action_type": a,
                    "created_at": MIDNIGHT + timedelta(hours=i),
                }
                for i, (t, u, a) in enumerate(EVENTS)
            ],
        )


def materialize_with_checks(app_db: AppDatabase) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [usage_metrics_daily, *USAGE_CHECKS[:2]],
        partition_key=DAY.isoformat(),
        resources={"app_db": app_db},
    )


def update_usage(app_db: AppDatabase, sql: str) -> None:
    with app_db.begin() as conn:
        conn.execute(sa.text(sql))


def test_checks_pass_after_materialization(app_db):
    seed(app_db)
    result = materialize_with_checks(app_db)
    assert result.success
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {USAGE_UNIQUE_KEY_CHECK, USAGE_RECONCILES_CHECK}
    assert all(e.passed for e in evaluations.values())
    assert evaluations[USAGE_RECONCILES_CHECK].metadata["events_in_activity_log"].value == 5


def test_reconciliation_fails_on_a_corrupted_counter(app_db):
    seed(app_db)
    materialize_with_checks(app_db)
    # The row still adds up internally, but no longer matches activity_log.
    update_usage(
        app_db,
        "UPDATE usage_metrics_daily SET searches_executed = searches_executed + 1, "
        f"total_events = total_events + 1 WHERE user_id = '{USERS[10]}'",
    )
    result = reconcile_result(app_db, DAY)
    assert not result.passed
    assert table_rows(result.metadata["mismatches"], MISMATCH_COLUMNS) == [
        {"counter": "searches_executed", "activity_log": 1, "usage_metrics_daily": 2},
        {"counter": "total", "activity_log": 5, "usage_metrics_daily": 6},
    ]
    assert result.metadata["events_in_usage"].value == 6


def test_reconciliation_fails_when_a_row_does_not_add_up(app_db):
    seed(app_db)
    materialize_with_checks(app_db)
    update_usage(
        app_db,
        "UPDATE usage_metrics_daily SET total_logins = total_logins + 3 "
        f"WHERE user_id = '{USERS[10]}'",
    )
    result = reconcile_result(app_db, DAY)
    assert not result.passed
    assert result.metadata["rows_not_adding_up"].value == 1
    # Its total_events still matches activity_log: only total_logins is off.
    assert table_rows(result.metadata["mismatches"], MISMATCH_COLUMNS) == [
        {"counter": "total_logins", "activity_log": 1, "usage_metrics_daily": 4}
    ]


def test_reconciliation_fails_on_late_events_not_yet_rolled_up(app_db):
    seed(app_db)
    materialize_with_checks(app_db)
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ActivityLog).values(
                tenant_id=TENANTS[1],
                user_id=USERS[10],
                action_type="note_added",
                created_at=MIDNIGHT,
            )
        )
    assert not reconcile_result(app_db, DAY).passed
    assert materialize_with_checks(app_db).success  # a re-run fixes it
    assert reconcile_result(app_db, DAY).passed


def test_blocking_check_fails_the_run_after_a_bad_rollup(app_db, monkeypatch):
    seed(app_db)
    # Simulate a broken rollup: one counter column silently dropped from the generated SQL.
    from phronesis_dagster.assets import usage

    broken = {k: v for k, v in usage.COUNTER_COLUMNS.items() if k != "search_executed"}
    monkeypatch.setattr(usage, "COUNTER_COLUMNS", broken)
    result = dg.materialize(
        [usage_metrics_daily, *USAGE_CHECKS[:2]],
        partition_key=DAY.isoformat(),
        resources={"app_db": app_db},
        raise_on_error=False,
    )
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert [e.check_name for e in failed] == [USAGE_RECONCILES_CHECK]
    assert failed[0].severity == dg.AssetCheckSeverity.ERROR
    assert not result.success  # blocking: the run fails, downstream assets would not run


def test_unique_key_check_catches_duplicates(app_db):
    seed(app_db)
    materialize_with_checks(app_db)
    passing = unique_key_result(app_db, DAY)
    assert passing.passed
    assert table_rows(passing.metadata["duplicates"], DUPLICATE_COLUMNS) == []
    with app_db.begin() as conn:
        conn.exec_driver_sql(
            "ALTER TABLE usage_metrics_daily "
            "DROP CONSTRAINT usage_metrics_daily_date_tenant_id_user_id_key"
        )
        conn.exec_driver_sql(
            "INSERT INTO usage_metrics_daily (date, tenant_id, user_id, total_events) "
            "SELECT date, tenant_id, user_id, 0 FROM usage_metrics_daily "
            f"WHERE user_id = '{USERS[20]}'"
        )
    result = unique_key_result(app_db, DAY)
    assert not result.passed
    assert result.metadata["duplicate_keys"].value == 1
    assert table_rows(result.metadata["duplicates"], DUPLICATE_COLUMNS) == [
        {"tenant_id": str(TENANTS[2]), "user_id": str(USERS[20]), "copies": 2}
    ]
