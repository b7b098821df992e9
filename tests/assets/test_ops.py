"""Operations datasets: enrichment_health_daily, enrichment_error_feed, tenant_activity_daily,
and the lineage and automation of all four dashboard assets as the UI shows them."""

from __future__ import annotations

import random
import statistics
import uuid
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.ops import (
    enrichment_error_feed,
    enrichment_health_daily,
    tenant_activity_daily,
)
from phronesis_dagster.db.models import (
    ApiCallLog,
    EnrichmentSourceResult,
    Prospect,
    Tenant,
    UsageMetricsDaily,
    User,
)
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.schedules.ops import (
    api_quota_hourly_schedule,
    api_quota_nightly_schedule,
)

DAY = date(2025, 3, 10)
NOON = datetime(2025, 3, 10, 12, tzinfo=UTC)


def at(hours: float) -> str:
    return (NOON + timedelta(hours=hours)).isoformat()


# Per-source statuses of six prospects, old and new shapes mixed.
PROSPECT_STATUSES: list[dict] = [
    {
        "exa": {"status": "complete", "at": at(-1), "latency_ms": 100},
        "contactout": {"status": "failed", "error": "HTTP 500 from ContactOut", "at": at(-1)},
    },
    {
        "exa": {"status": "complete", "at": at(0), "latency_ms": 300},
        "contactout": {"status": "complete", "at": at(0)},
    },
    {
        "exa": {"status": "failed", "error": "timeout after 30s", "at": at(1), "latency_ms": 30000},
        "contactout": {"status": "circuit_open", "error": "circuit open", "at": at(1)},
    },
    {"exa": {"status": "skipped", "at": at(2)}, "contactout": {"status": "not_found", "at": at(2)}},
    # legacy plain strings, dated by last_enriched_at (on DAY, see insert_prospects)
    {"exa": "failed", "contactout": "complete"},
    # the next day: not part of DAY's health, but newest in the error feed
    {"exa": {"status": "failed", "error": "429 Too Many Requests", "at": at(24)}},
]


def insert_prospects(app_db: AppDatabase, statuses: list) -> tuple[uuid.UUID, list[uuid.UUID]]:
    with app_db.begin() as conn:
        tenant_id = conn.execute(
            sa.insert(Tenant.__table__).values(name="Acme").returning(Tenant.id)
        ).scalar_one()
        ids = [
            conn.execute(
                sa.insert(Prospect.__table__)
                .values(
                    tenant_id=tenant_id,
                    name=f"P{i}",
                    enrichment_source_status=status,
                    last_enriched_at=NOON + timedelta(hours=3),
                )
                .returning(Prospect.id)
            ).scalar_one()
            for i, status in enumerate(statuses)
        ]
    return tenant_id, ids


def rows(app_db: AppDatabase, sql: str) -> list[dict]:
    with app_db.connect() as conn:
        return [dict(r) for r in conn.execute(sa.text(sql)).mappings()]


# Per-batch source results (enrichment_source_results) -------------------------------------


def add_results(app_db: AppDatabase, results: list[tuple]) -> None:
    """(batch, prospect, source, status, latency_ms, updated_at) rows of one tenant."""
    with app_db.begin() as conn:
        tenant = conn.execute(sa.select(Tenant.id).limit(1)).scalar_one_or_none()
        if tenant is None:
            tenant = conn.execute(
                sa.insert(Tenant).values(name="Acme").returning(Tenant.id)
            ).scalar_one()
        conn.execute(
            sa.insert(EnrichmentSourceResult),
            [
                {
                    "batch_key": batch,
                    "prospect_id": prospect,
                    "tenant_id": tenant,
                    "source": source,
                    "status": status,
                    "latency_ms": latency,
                    "created_at": when - timedelta(seconds=5),
                    "updated_at": when,
                }
                for batch, prospect, source, status, latency, when in results
            ],
        )


def health(app_db: AppDatabase, day: date) -> dict[str, dict]:
    with app_db.connect() as conn:
        got = conn.execute(
            sa.text("SELECT * FROM enrichment_health_daily WHERE date = :d"), {"d": day}
        ).mappings()
        return {r["source"]: dict(r) for r in got}


def materialize_health(app_db: AppDatabase, day: date) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [enrichment_health_daily], partition_key=day.isoformat(), resources={"app_db": app_db}
    )


P = [uuid.uuid4() for _ in range(6)]
DAY_RESULTS: list[tuple] = [
    ("b1", P[0], "exa", "complete", 100.0, NOON - timedelta(hours=1)),
    ("b1", P[1], "exa", "complete", 300.0, NOON),
    ("b1", P[2], "exa", "failed", 30000.0, NOON + timedelta(hours=1)),
    ("b1", P[3], "exa", "skipped", None, NOON),
    ("b1", P[4], "exa", "circuit_open", 0.0, NOON),  # no call made: not in the median
    ("b1", P[0], "contactout", "failed", None, NOON),
    ("b1", P[1], "contactout", "complete", None, NOON),
    ("b1", P[2], "contactout", "not_found", None, NOON),
    ("b1", P[3], "contactout", "circuit_open", None, NOON),
    # stored under EDGAR's former source key: counts as the web app's `sec`
    ("b1", P[5], "edgar", "complete", None, NOON),
    # the next day's batch: not part of DAY
    ("b2", P[0], "exa", "failed", 50.0, NOON + timedelta(hours=24)),
]


def test_enrichment_health_counts_rates_and_medians(app_db: AppDatabase) -> None:
    add_results(app_db, DAY_RESULTS)
    # contactout's and EDGAR's results carry no latency: the median comes from the call log of
    # their provider (EDGAR's provider name is `edgar`, its source key `sec`).
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ApiCallLog),
            [
                {
                    "provider": provider,
                    "endpoint": "/p",
                    "outcome": "success",
                    "latency_ms": ms,
                    "called_at": NOON,
                }
                for provider, ms in [("contactout", m) for m in (40, 60, 80, 100)]
                + [("edgar", 900)]
            ],
        )

    result = materialize_health(app_db, DAY)

    got = health(app_db, DAY)
    # every source of the web app gets its row, with zeros when nothing happened to it
    assert set(got) == {"apollo", "contactout", "exa", "sec", "claude"}
    exa, co, sec = got["exa"], got["contactout"], got["sec"]
    assert (exa["complete_count"], exa["failed_count"], exa["skipped_count"]) == (2, 1, 1)
    assert (exa["circuit_open_count"], exa["total_count"]) == (1, 5)
    assert exa["failure_rate"] == pytest.approx(1 / 3)
    assert exa["median_latency_ms"] == pytest.approx(300)  # of 100, 300, 30000
    assert exa["latency_source"] == "results"
    assert (
        co["complete_count"],
        co["failed_count"],
        co["circuit_open_count"],
        co["not_found_count"],
    ) == (1, 1, 1, 1)
    assert co["failure_rate"] == pytest.approx(1 / 3)
    assert co["median_latency_ms"] == pytest.approx(70)
    assert co["latency_source"] == "api_call_log"
    assert (sec["complete_count"], sec["median_latency_ms"]) == (1, pytest.approx(900))
    apollo = got["apollo"]
    assert (apollo["total_count"], apollo["failure_rate"], apollo["median_latency_ms"]) == (
        0,
        None,
        None,
    )
    metadata = result.asset_materializations_for_node("enrichment_health_daily")[0].metadata
    assert metadata["dagster/row_count"].value == 5
    table = metadata["health"]
    assert isinstance(table, dg.TableMetadataValue)
    assert {r.data["source"]: r.data["failed_count"] for r in table.records}["exa"] == 1
    assert metadata["exa_failure_rate"].value == pytest.approx(1 / 3, abs=1e-4)


def test_enrichment_health_backfill_gives_that_days_figures(app_db: AppDatabase) -> None:
    add_results(app_db, DAY_RESULTS)
    materialize_health(app_db, DAY)
    before = health(app_db, DAY)
    # A month later the same prospects are enriched again: new batch results, and their
    # prospects' latest records now say something else entirely.
    later = NOON + timedelta(days=30)
    add_results(app_db, [(f"b9{i}", p, "exa", "complete", 10.0, later) for i, p in enumerate(P)])
    with app_db.begin() as conn:
        conn.execute(
            sa.update(EnrichmentSourceResult)
            .where(EnrichmentSourceResult.batch_key == "b1", EnrichmentSourceResult.source == "exa")
            .values(attempts=2)  # an unrelated column update does not move an outcome's day
        )

    materialize_health(app_db, DAY)  # the backfill of the old day

    def figures(rows: dict[str, dict]) -> dict:
        return {
            s: {k: v for k, v in r.items() if k not in ("id", "created_at")}
            for s, r in rows.items()
        }

    assert figures(health(app_db, DAY)) == figures(before)
    materialize_health(app_db, DAY + timedelta(days=30))
    assert health(app_db, DAY + timedelta(days=30))["exa"]["complete_count"] == len(P)


def test_enrichment_health_matches_python_over_a_seeded_month(app_db: AppDatabase) -> None:
    rng = random.Random(13)
    month = [date(2025, 3, 1) + timedelta(days=i) for i in range(31)]
    seeded = []
    for day in month:
        if day.day in (9, 23):
            continue  # days when no batch ran
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for b in range(rng.randint(1, 3)):
            for p in (uuid.uuid4() for _ in range(rng.randint(1, 6))):
                for source in ("apollo", "contactout", "exa", "sec", "claude"):
                    status = rng.choice(
                        ("complete", "complete", "not_found", "failed", "circuit_open", "skipped")
                    )
                    latency = None if status in ("skipped", "circuit_open") else rng.uniform(5, 900)
                    when = start + timedelta(seconds=rng.uniform(0, 86399))
                    seeded.append((f"{day}-{b}", p, source, status, latency, when))
    add_results(app_db, seeded)

    for day in month[::3] + [date(2025, 3, 9)]:
        materialize_health(app_db, day)
        got = health(app_db, day)
        assert set(got) == {"apollo", "contactout", "exa", "sec", "claude"}
        for source, row in got.items():
            mine = [r for r in seeded if r[2] == source and r[5].date() == day]
            by_status = {
                s: sum(1 for r in mine if r[3] == s)
                for s in ("complete", "failed", "circuit_open", "skipped", "not_found")
            }
            assert {s: row[f"{s}_count"] for s in by_status} == by_status, (day, source)
            made = by_status["complete"] + by_status["failed"] + by_status["not_found"]
            assert row["failure_rate"] == (
                pytest.approx(by_status["failed"] / made) if made else None
            )
            latencies = sorted(r[4] for r in mine if r[4] is not None)
            if latencies:
                assert row["median_latency_ms"] == pytest.approx(statistics.median(latencies))
            else:
                assert row["median_latency_ms"] is None


def test_error_feed_reads_old_and_new_shapes(app_db: AppDatabase) -> None:
    statuses = [
        *PROSPECT_STATUSES,
        {"sec": "HTTP 503 from SEC"},  # legacy free text: an error message, not a status
        {"exa": {"status": "failed", "error": "bad at", "at": "yesterday-ish"}},
        None,
        # What else the web app may have left: none of it may fail the dataset.
        "reset",
        ["complete"],
        {"exa": ["failed"], "claude": 42},
        {"exa": {"status": "failed", "error": "impossible date", "at": "2026-02-31T10:00:00Z"}},
    ]
    tenant_id, ids = insert_prospects(app_db, statuses)

    result = dg.materialize([enrichment_error_feed], resources={"app_db": app_db})

    feed = rows(app_db, "SELECT * FROM enrichment_error_feed")
    got = {(r["prospect_id"], r["source"]): r for r in feed}
    assert set(got) == {
        (ids[0], "contactout"),
        (ids[2], "exa"),
        (ids[2], "contactout"),
        (ids[4], "exa"),
        (ids[5], "exa"),
        (ids[6], "sec"),
        (ids[7], "exa"),
        (ids[12], "exa"),
    }
    assert all(r["tenant_id"] == tenant_id for r in feed)
    assert got[(ids[2], "exa")]["message"] == "timeout after 30s"
    assert got[(ids[2], "contactout")]["status"] == "circuit_open"
    legacy = got[(ids[4], "exa")]
    assert (legacy["status"], legacy["message"], legacy["record_shape"]) == (
        "failed",
        None,
        "legacy",
    )
    assert got[(ids[6], "sec")]["message"] == "HTTP 503 from SEC"
    # an unparseable or impossible "at" falls back to the prospect's last enrichment
    assert got[(ids[7], "exa")]["at"] == NOON + timedelta(hours=3)
    assert got[(ids[12], "exa")]["at"] == NOON + timedelta(hours=3)
    metadata = result.asset_materializations_for_node("enrichment_error_feed")[0].metadata
    assert metadata["rows_written"].value == 8
    assert metadata["legacy_records"].value == 2
    assert metadata["dagster/row_count"].value == 8
    assert len(metadata["preview"].records) == 8  # a Dagster table, not markdown

    # The limit keeps the newest errors.
    dg.materialize(
        [enrichment_error_feed],
        resources={"app_db": app_db},
        run_config={"ops": {"enrichment_error_feed": {"config": {"limit": 1}}}},
    )
    feed = rows(app_db, "SELECT prospect_id, message FROM enrichment_error_feed")
    assert feed == [{"prospect_id": ids[5], "message": "429 Too Many Requests"}]


def test_tenant_activity_sums_users_per_tenant(app_db: AppDatabase) -> None:
    with app_db.begin() as conn:
        t1, t2 = (
            conn.execute(sa.insert(Tenant).values(name=n).returning(Tenant.id)).scalar_one()
            for n in ("One", "Two")
        )
        u11, u12, u13, u21 = (
            conn.execute(
                sa.insert(User).values(tenant_id=t, email=f"{i}@x.test").returning(User.id)
            ).scalar_one()
            for i, t in enumerate((t1, t1, t1, t2))
        )
    usage = [
        # (tenant, user, day, events, searches, lists_created)
        (t1, u11, DAY, 10, 4, 1),
        (t1, u12, DAY, 5, 1, 2),
        (t1, u13, DAY, 0, 0, 0),  # a row with no events is not an active user
        (t2, u21, DAY, 7, 7, 0),
        (t1, u11, DAY - timedelta(days=1), 99, 99, 9),
    ]
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(UsageMetricsDaily.__table__),
            [
                {
                    "tenant_id": t,
                    "user_id": u,
                    "date": d,
                    "total_events": e,
                    "searches_executed": s,
                    "lists_created": n,
                }
                for t, u, d, e, s, n in usage
            ],
        )
        # The web app's counters are nullable: a NULL counts as none.
        conn.execute(
            sa.update(UsageMetricsDaily.__table__)
            .where(UsageMetricsDaily.user_id == u13)
            .values(total_logins=None)
        )
    for _ in range(2):  # re-running the day replaces it
        dg.materialize(
            [tenant_activity_daily], partition_key=DAY.isoformat(), resources={"app_db": app_db}
        )

    got = rows(
        app_db,
        "SELECT tenant_id, active_users, total_events, searches_executed, lists_created, "
        "total_logins FROM tenant_activity_daily",
    )
    by_tenant = {r.pop("tenant_id"): r for r in got}
    assert by_tenant == {
        t1: {
            "active_users": 2,
            "total_events": 15,
            "searches_executed": 5,
            "lists_created": 3,
            "total_logins": 0,
        },
        t2: {
            "active_users": 1,
            "total_events": 7,
            "searches_executed": 7,
            "lists_created": 0,
            "total_logins": 0,
        },
    }


def test_lineage_and_automation_as_the_ui_shows_them() -> None:
    from phronesis_dagster.definitions import defs

    # The graph of the real Definitions; resource keys other engineers have yet to bind are
    # stubbed, since binding is not what this test is about.
    required = {
        key for asset in defs.assets or [] for key in getattr(asset, "required_resource_keys", ())
    }
    stubs = {
        k: dg.ResourceDefinition.none_resource()
        for k in required - set(defs.resources) - {"io_manager"}
    }
    defs = dg.Definitions.merge(defs, dg.Definitions(resources=stubs))
    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("api_quota_daily") == {"api_usage", "api_call_log"}
    assert parents("enrichment_health_daily") == {"enrichment_source_results", "api_call_log"}
    assert parents("enrichment_error_feed") == {"prospects"}
    assert parents("tenant_activity_daily") == {"usage_metrics_daily"}
    heatmap = graph.get(dg.AssetKey("tenant_activity_daily"))
    upstream = graph.get(dg.AssetKey("usage_metrics_daily"))
    assert heatmap.partitions_def == upstream.partitions_def
    assert heatmap.automation_condition is not None
    assert "eager" in heatmap.automation_condition.get_label().lower()
    assert {c.name for c in graph.get(dg.AssetKey("api_quota_daily")).check_keys} == {
        "quota_projected_month_end",
        "quota_month_to_date",
    }
    scheduled_jobs = {s.name: s.job_name for s in defs.schedules}
    assert scheduled_jobs["api_quota_nightly_schedule"] == "api_quota_daily_job"
    assert scheduled_jobs["api_quota_hourly_schedule"] == "api_quota_daily_job"
    assert scheduled_jobs["enrichment_health_nightly_schedule"] == "enrichment_health_daily_job"
    assert scheduled_jobs["enrichment_error_feed_hourly_schedule"] == "enrichment_error_feed_job"
    repo = defs.get_repository_def()
    for job, asset in [
        ("api_quota_daily_job", "api_quota_daily"),
        ("enrichment_health_daily_job", "enrichment_health_daily"),
        ("enrichment_error_feed_job", "enrichment_error_feed"),
    ]:
        assert dg.AssetKey(asset) in repo.get_job(job).asset_layer.executable_asset_keys
    sensor_names = {s.name for s in defs.sensors}
    assert "ops_automation_sensor" in sensor_names


def test_quota_schedules_pick_yesterday_and_today() -> None:
    tick = datetime(2025, 3, 1, 0, 20, tzinfo=UTC)
    nightly = api_quota_nightly_schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    hourly = api_quota_hourly_schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert nightly.partition_key == "2025-02-28"
    assert hourly.partition_key == "2025-03-01"
    early = datetime(2024, 6, 1, tzinfo=UTC)
    skipped = api_quota_nightly_schedule(dg.build_schedule_context(scheduled_execution_time=early))
    assert isinstance(skipped, dg.SkipReason)
