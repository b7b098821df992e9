"""api_quota_daily: per-provider calls, latency and quota burn, merged from the pipeline's
api_usage counters and the web app's Redis counters."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import redis
import sqlalchemy as sa

from phronesis_dagster.assets.quotas import (
    DEFAULT_MONTHLY_QUOTAS,
    api_quota_daily,
    burn_bar,
    compute_burn,
    configured_quotas,
)
from phronesis_dagster.db.models import ApiCallLog, ApiUsage
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.redis_counters import (
    COUNTING_SINCE_KEY,
    WebAppRedis,
    counter_key,
)
from phronesis_dagster.resources.registry import PROVIDER_NAMES as PROVIDERS
from tests.metadata_tables import table_rows

REDIS_HOST = "redis://127.0.0.1:6379"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
NO_REDIS = WebAppRedis(url="")
BURN_COLUMNS = [
    "provider",
    "burned",
    "mtd_calls",
    "monthly_quota",
    "pct_burned",
    "projected_month_end_calls",
    "projected_pct",
    "days_until_exhausted",
]
PROVIDER_COLUMNS = [
    "provider",
    "success",
    "failed",
    "rate_limited",
    "web_app",
    "cost_usd",
    "p50_ms",
    "p95_ms",
    "mtd_calls",
    "quota",
    "pct_burned",
    "projected_pct",
]
SHORTFALL_COLUMNS = ["provider", "day", "redis_total", "pipeline_successes", "shortfall"]

# Fixture data -----------------------------------------------------------------------------


def add_usage(
    app_db: AppDatabase,
    day: date,
    provider: str,
    success: int,
    *,
    origin="pipeline",
    failure: int = 0,
    limited: int = 0,
    cost: float = 0.0,
) -> None:
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ApiUsage.__table__).values(
                provider=provider,
                date=day,
                origin=origin,
                success_count=success,
                failure_count=failure,
                rate_limited_count=limited,
                cost_usd=cost,
            )
        )


def add_calls(
    app_db: AppDatabase,
    provider: str,
    at: datetime,
    latencies: list[float],
    outcome: str = "success",
) -> None:
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ApiCallLog.__table__),
            [
                {
                    "provider": provider,
                    "endpoint": "/x",
                    "outcome": outcome,
                    "latency_ms": ms,
                    "called_at": at + timedelta(seconds=i),
                }
                for i, ms in enumerate(latencies)
            ],
        )


def materialize(
    app_db: AppDatabase,
    day: date,
    redis_res: WebAppRedis = NO_REDIS,
    quotas: dict[str, int] | None = None,
    raise_on_error: bool = True,
):
    run_config = None
    if quotas:
        run_config = {"ops": {"api_quota_daily": {"config": {"monthly_quotas": quotas}}}}
    return dg.materialize(
        [api_quota_daily],
        partition_key=day.isoformat(),
        resources={"app_db": app_db, "web_app_redis": redis_res},
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def daily_rows(app_db: AppDatabase, day: date) -> dict[tuple[str, str], dict]:
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM api_quota_daily WHERE date = :d").bindparams(
                sa.bindparam("d", type_=sa.Date())
            ),
            {"d": day},
        ).mappings()
        return {(r["provider"], r["origin"]): dict(r) for r in rows}


def burn_rows(app_db: AppDatabase, day: date) -> dict[str, dict]:
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM api_quota_burn_daily WHERE date = :d").bindparams(
                sa.bindparam("d", type_=sa.Date())
            ),
            {"d": day},
        ).mappings()
        return {r["provider"]: dict(r) for r in rows}


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A random Redis db number of this test's own, flushed afterwards (others' tests share the
    server, so the keys below also use a random past day)."""
    url = f"{REDIS_HOST}/{random.randint(1, 15)}"
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_day(redis_url: str) -> Iterator[tuple[redis.Redis, date]]:
    """A random past day (not the 1st), so parallel tests rarely share a Redis key."""
    client = redis.Redis.from_url(redis_url)
    day = date(2025, 1, 15) + timedelta(days=random.randint(0, 600))
    if day.day == 1:
        day += timedelta(days=1)
    yield client, day
    client.close()


# Tests -------------------------------------------------------------------------------------


def test_counts_latency_and_a_provider_with_no_calls(app_db: AppDatabase) -> None:
    day = date(2025, 3, 10)
    add_usage(app_db, day, "exa", 40, failure=3, limited=2, cost=1.25)
    add_usage(app_db, day - timedelta(days=1), "exa", 60)
    noon = datetime(2025, 3, 10, 12, tzinfo=UTC)
    add_calls(app_db, "exa", noon, [10, 20, 30, 40, 100])
    add_calls(app_db, "exa", noon, [5000], outcome="circuit_open")  # no HTTP call was made
    add_calls(app_db, "exa", noon + timedelta(days=1), [9999])  # the next day

    result = materialize(app_db, day)

    rows = daily_rows(app_db, day)
    assert {p for p, _ in rows} == set(PROVIDERS)
    exa = rows[("exa", "pipeline")]
    assert (exa["success_count"], exa["failure_count"], exa["rate_limited_count"]) == (40, 3, 2)
    assert float(exa["cost_usd"]) == pytest.approx(1.25)
    # linear interpolation: p50 at rank 2 -> 30; p95 at rank 3.8 -> 40 + 0.8 * (100 - 40)
    assert exa["latency_p50_ms"] == pytest.approx(30)
    assert exa["latency_p95_ms"] == pytest.approx(88)
    apollo = rows[("apollo", "pipeline")]
    assert (apollo["success_count"], apollo["failure_count"], apollo["latency_p50_ms"]) == (
        0,
        0,
        None,
    )

    burns = burn_rows(app_db, day)
    assert set(burns) == set(PROVIDERS)
    assert burns["exa"]["calls"] == 40
    assert burns["exa"]["mtd_calls"] == 100
    assert burns["apollo"]["mtd_calls"] == 0
    assert burns["apollo"]["days_until_exhausted"] is None
    metadata = result.asset_materializations_for_node("api_quota_daily")[0].metadata
    assert metadata["exa_mtd_calls"].value == 100
    assert metadata["dagster/row_count"].value == len(rows)
    # March has 31 days: 100 calls by the 10th is a pace of 10 a day, 310 by the month's end.
    burn_table = {r["provider"]: r for r in table_rows(metadata["quota_burn"], BURN_COLUMNS)}
    assert set(burn_table) == set(PROVIDERS)
    quota = DEFAULT_MONTHLY_QUOTAS["exa"]
    assert burn_table["exa"] == {
        "provider": "exa",
        "burned": burn_bar(100 * 100 / quota),
        "mtd_calls": 100,
        "monthly_quota": quota,
        "pct_burned": round(100 * 100 / quota, 2),
        "projected_month_end_calls": 310,
        "projected_pct": round(100 * 310 / quota, 2),
        "days_until_exhausted": (quota - 100) / 10,
    }
    assert burn_table["apollo"]["days_until_exhausted"] is None
    table = table_rows(metadata["providers_table"], PROVIDER_COLUMNS)
    providers = {r["provider"]: r for r in table}
    assert set(providers) == set(PROVIDERS)
    assert providers["exa"] == {
        "provider": "exa",
        "success": 40,
        "failed": 3,
        "rate_limited": 2,
        "web_app": 0,
        "cost_usd": 1.25,
        "p50_ms": 30.0,
        "p95_ms": 88.0,
        "mtd_calls": 100,
        "quota": quota,
        "pct_burned": round(100 * 100 / quota, 2),
        "projected_pct": round(100 * 310 / quota, 2),
    }
    assert table_rows(metadata["redis_shortfall"], SHORTFALL_COLUMNS) == []


def test_rerun_replaces_the_day_instead_of_adding(app_db: AppDatabase) -> None:
    day = date(2025, 3, 10)
    add_usage(app_db, day, "claude", 12)
    materialize(app_db, day)
    materialize(app_db, day)
    rows = daily_rows(app_db, day)
    assert rows[("claude", "pipeline")]["success_count"] == 12
    assert len(rows) == len(PROVIDERS)
    assert burn_rows(app_db, day)["claude"]["mtd_calls"] == 12


def test_month_boundary_restarts_month_to_date(app_db: AppDatabase) -> None:
    add_usage(app_db, date(2025, 1, 30), "exa", 100)
    add_usage(app_db, date(2025, 1, 31), "exa", 200)
    add_usage(app_db, date(2025, 2, 1), "exa", 50)
    quotas = {"exa": 1000}

    materialize(app_db, date(2025, 1, 31), quotas=quotas)
    materialize(app_db, date(2025, 2, 1), quotas=quotas)

    jan = burn_rows(app_db, date(2025, 1, 31))["exa"]
    feb = burn_rows(app_db, date(2025, 2, 1))["exa"]
    assert jan["mtd_calls"] == 300
    assert jan["projected_month_end_calls"] == pytest.approx(300)  # last day: pace * 31 / 31
    assert jan["pct_burned"] == pytest.approx(30)
    assert feb["mtd_calls"] == 50  # January is not carried into February
    assert feb["projected_month_end_calls"] == pytest.approx(50 * 28)  # 2025 is not a leap year
    assert feb["days_until_exhausted"] == pytest.approx((1000 - 50) / 50)


def test_compute_burn_projection_and_exhaustion() -> None:
    burn = compute_burn("exa", date(2024, 2, 10), 10, 400, 1000)
    assert burn.projected_month_end_calls == pytest.approx(40 * 29)  # leap February
    assert burn.days_until_exhausted == pytest.approx(15)
    assert compute_burn("exa", date(2024, 2, 10), 0, 1200, 1000).days_until_exhausted == 0
    assert burn_bar(50, width=10) == "█████░░░░░ 50.0%"
    assert burn_bar(250, width=4) == "████ 250.0%"


def test_quotas_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHRONESIS_QUOTA_EXA", "1_500")
    quotas = configured_quotas()
    assert quotas["exa"] == 1500
    assert quotas["apollo"] == DEFAULT_MONTHLY_QUOTAS["apollo"]
    monkeypatch.setenv("PHRONESIS_QUOTA_EXA", "lots")
    with pytest.raises(ValueError, match="PHRONESIS_QUOTA_EXA"):
        configured_quotas()
    monkeypatch.setenv("PHRONESIS_QUOTA_EXA", "0")
    with pytest.raises(ValueError, match="positive"):
        configured_quotas()


def test_redis_absent_uses_pipeline_counters_only(app_db: AppDatabase) -> None:
    day = date(2025, 3, 10)
    add_usage(app_db, day, "exa", 5)
    result = materialize(app_db, day, redis_res=WebAppRedis(url=""))
    rows = daily_rows(app_db, day)
    assert ("exa", "web_app") not in rows
    assert rows[("exa", "pipeline")]["success_count"] == 5
    metadata = result.asset_materializations_for_node("api_quota_daily")[0].metadata
    assert "not configured" in metadata["web_app_redis"].value


def test_redis_unreachable_keeps_stored_web_app_counts(app_db: AppDatabase) -> None:
    day = date(2025, 3, 10)
    add_usage(app_db, day, "exa", 5)
    add_usage(app_db, day, "exa", 7, origin="web_app")  # copied from Redis by an earlier run
    result = materialize(app_db, day, redis_res=WebAppRedis(url=UNREACHABLE_REDIS))
    assert result.success
    rows = daily_rows(app_db, day)
    assert rows[("exa", "web_app")]["success_count"] == 7
    assert burn_rows(app_db, day)["exa"]["calls"] == 12
    metadata = result.asset_materializations_for_node("api_quota_daily")[0].metadata
    assert "unreachable" in metadata["web_app_redis"].value


def web_app_stored(app_db: AppDatabase, provider: str) -> list[int]:
    with app_db.connect() as conn:
        return list(
            conn.execute(
                sa.select(ApiUsage.success_count)
                .where(ApiUsage.provider == provider, ApiUsage.origin == "web_app")
                .order_by(ApiUsage.date)
            ).scalars()
        )


@pytest.mark.redis
def test_redis_total_minus_pipeline_is_the_web_apps_share(
    app_db: AppDatabase, redis_url: str, redis_day: tuple[redis.Redis, date]
) -> None:
    client, day = redis_day
    web = WebAppRedis(url=redis_url)
    client.set(COUNTING_SINCE_KEY, (day - timedelta(days=1)).isoformat())
    add_usage(app_db, day, "exa", 10)  # the pipeline's own 10 calls, also in Redis' 17
    client.set(counter_key("exa", day), 17)
    add_usage(app_db, day - timedelta(days=1), "exa", 4)
    client.set(counter_key("exa", day - timedelta(days=1)), 7)  # earlier this month: 3 web

    materialize(app_db, day, redis_res=web)
    materialize(app_db, day, redis_res=web)  # a re-run must not add Redis again

    rows = daily_rows(app_db, day)
    assert rows[("exa", "pipeline")]["success_count"] == 10
    assert rows[("exa", "web_app")]["success_count"] == 7
    assert rows[("exa", "web_app")]["latency_p50_ms"] is None
    burn = burn_rows(app_db, day)["exa"]
    assert (burn["calls"], burn["mtd_calls"]) == (17, 24)  # = the Redis totals, 17 + 7

    # The web app keeps counting: the stored share follows Redis (set, not add).
    client.incrby(counter_key("exa", day), 2)
    materialize(app_db, day, redis_res=web)
    assert daily_rows(app_db, day)[("exa", "web_app")]["success_count"] == 9

    # Redis expires the key: the history copied into api_usage survives.
    client.delete(counter_key("exa", day))
    materialize(app_db, day, redis_res=web)
    assert daily_rows(app_db, day)[("exa", "web_app")]["success_count"] == 9
    assert web_app_stored(app_db, "exa") == [3, 9]


@pytest.mark.redis
def test_redis_short_of_the_pipeline_clamps_the_web_share_at_zero(
    app_db: AppDatabase, redis_url: str, redis_day: tuple[redis.Redis, date]
) -> None:
    """Redis lost increments (an outage): the web app's share is 0, never negative, the day's
    total is the pipeline's exact count, and the metadata says how many Redis missed."""
    client, day = redis_day
    client.set(COUNTING_SINCE_KEY, day.isoformat())
    add_usage(app_db, day, "apollo", 12)
    client.set(counter_key("apollo", day), 9)

    result = materialize(app_db, day, redis_res=WebAppRedis(url=redis_url))

    rows = daily_rows(app_db, day)
    assert rows[("apollo", "web_app")]["success_count"] == 0
    assert burn_rows(app_db, day)["apollo"]["calls"] == 12
    metadata = result.asset_materializations_for_node("api_quota_daily")[0].metadata
    assert table_rows(metadata["redis_shortfall"], SHORTFALL_COLUMNS) == [
        {
            "provider": "apollo",
            "day": day.isoformat(),
            "redis_total": 9,
            "pipeline_successes": 12,
            "shortfall": 3,
        }
    ]


@pytest.mark.redis
def test_days_before_the_pipeline_counted_in_redis_are_the_web_apps_alone(
    app_db: AppDatabase, redis_url: str, redis_day: tuple[redis.Redis, date]
) -> None:
    """Before the first day the pipeline incremented Redis, its totals held only the web app's
    calls: nothing is subtracted there (nor at all when the pipeline never counted)."""
    client, day = redis_day
    before = day - timedelta(days=1)
    add_usage(app_db, before, "claude", 5)
    add_usage(app_db, day, "claude", 5)
    client.set(counter_key("claude", before), 8)
    client.set(counter_key("claude", day), 8)

    materialize(app_db, day, redis_res=WebAppRedis(url=redis_url))
    assert web_app_stored(app_db, "claude") == [8, 8]  # never counted: Redis is all web app

    client.set(COUNTING_SINCE_KEY, day.isoformat())
    materialize(app_db, day, redis_res=WebAppRedis(url=redis_url))
    assert web_app_stored(app_db, "claude") == [8, 3]


@pytest.mark.redis
def test_redis_garbage_value_fails_clearly_and_keeps_the_day(
    app_db: AppDatabase, redis_url: str, redis_day: tuple[redis.Redis, date]
) -> None:
    client, day = redis_day
    add_usage(app_db, day, "exa", 10)
    materialize(app_db, day)
    client.set(counter_key("exa", day), "not-a-number")

    with pytest.raises(ValueError, match=r"api_usage:exa:.*expected an integer"):
        materialize(app_db, day, redis_res=WebAppRedis(url=redis_url))

    assert daily_rows(app_db, day)[("exa", "pipeline")]["success_count"] == 10
