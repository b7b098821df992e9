"""The quota checks of api_quota_daily: WARN at 80% projected month-end use, ERROR at 100%
month-to-date."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.quotas import (
    MONTH_TO_DATE_CHECK,
    PROJECTED_CHECK,
    api_quota_daily,
    compute_burn,
    month_to_date_check,
    projected_use_check,
)
from phronesis_dagster.db.models import ApiUsage
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.redis_counters import WebAppRedis
from tests.metadata_tables import table_rows

# June has 30 days: on June 15 the projection is exactly twice the month-to-date calls.
DAY = date(2025, 6, 15)
QUOTA = 1000


def burn(mtd_calls: int):
    return compute_burn("exa", DAY, 0, mtd_calls, QUOTA)


@pytest.mark.parametrize(
    ("mtd_calls", "passed"),
    [(399, True), (400, False), (600, False)],  # projected 798, 800 (= 80%), 1200
)
def test_projected_use_warns_at_80_percent(mtd_calls: int, passed: bool) -> None:
    result = projected_use_check([burn(mtd_calls), compute_burn("edgar", DAY, 0, 0, QUOTA)])
    assert result.passed is passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    if not passed:
        assert "exa" in result.description and "edgar" not in result.description
    # Every provider's projection, as a table (June 15: twice the month-to-date calls).
    assert table_rows(
        result.metadata["projected_pct"],
        ["provider", "projected_pct", "projected_month_end_calls", "monthly_quota"],
    ) == [
        {
            "provider": "exa",
            "projected_pct": round(100 * 2 * mtd_calls / QUOTA, 2),
            "projected_month_end_calls": 2 * mtd_calls,
            "monthly_quota": QUOTA,
        },
        {
            "provider": "edgar",
            "projected_pct": 0.0,
            "projected_month_end_calls": 0,
            "monthly_quota": QUOTA,
        },
    ]


@pytest.mark.parametrize(("mtd_calls", "passed"), [(999, True), (1000, False), (1500, False)])
def test_month_to_date_fails_at_100_percent(mtd_calls: int, passed: bool) -> None:
    result = month_to_date_check([burn(mtd_calls)])
    assert result.passed is passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert table_rows(
        result.metadata["pct_burned"], ["provider", "pct_burned", "mtd_calls", "monthly_quota"]
    ) == [
        {
            "provider": "exa",
            "pct_burned": round(100 * mtd_calls / QUOTA, 2),
            "mtd_calls": mtd_calls,
            "monthly_quota": QUOTA,
        }
    ]


def _materialize_with_mtd(
    app_db: AppDatabase, mtd_calls: int
) -> dict[str, dg.AssetCheckEvaluation]:
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ApiUsage.__table__).values(
                provider="exa", date=DAY, origin="pipeline", success_count=mtd_calls
            )
        )
    result = dg.materialize(
        [api_quota_daily],
        partition_key=DAY.isoformat(),
        resources={"app_db": app_db, "web_app_redis": WebAppRedis(url="")},
        run_config={"ops": {"api_quota_daily": {"config": {"monthly_quotas": {"exa": QUOTA}}}}},
    )
    assert result.success  # a failed check reports, it does not fail the run
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.mark.parametrize(
    ("mtd_calls", "projected_passed", "mtd_passed"),
    [(300, True, True), (450, False, True), (1000, False, False)],
)
def test_checks_run_with_the_materialization(
    postgres_url: str, mtd_calls: int, projected_passed: bool, mtd_passed: bool
) -> None:
    evaluations = _materialize_with_mtd(AppDatabase(url=postgres_url), mtd_calls)
    assert evaluations[PROJECTED_CHECK].passed is projected_passed
    assert evaluations[MONTH_TO_DATE_CHECK].passed is mtd_passed
    assert evaluations[MONTH_TO_DATE_CHECK].severity == dg.AssetCheckSeverity.ERROR
