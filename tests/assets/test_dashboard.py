"""platform_pulse_daily and funnel_daily on the real PostgreSQL: a seeded month checked against
expectations computed in Python from the raw rows (not from the datasets' SQL), empty days,
backfill reproducibility, the reconciliation checks, and RLS as the web app's role."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.dashboard import (
    funnel_daily,
    platform_pulse_daily,
    write_funnel_day,
    write_pulse_day,
)
from phronesis_dagster.assets.usage import rollup_usage_day
from phronesis_dagster.checks.dashboard import (
    FUNNEL_STAGES_CHECK,
    FUNNEL_TOTAL_CHECK,
    PULSE_CALL_LOG_CHECK,
    PULSE_REQUEST_LOG_CHECK,
    PULSE_USAGE_CHECK,
    funnel_stages_result,
    pulse_matches_request_log,
)
from phronesis_dagster.db.models import (
    ACTION_TYPES,
    COUNTER_COLUMNS,
    DASHBOARD_TENANT_TABLES,
    ActivityLog,
    ApiCallLog,
    ApiUsage,
    EnrichmentErrorFeed,
    EnrichmentRequest,
    Prospect,
    Tenant,
    TenantActivityDaily,
    User,
)
from phronesis_dagster.partitions import usage_daily_partitions
from phronesis_dagster.resources.app_db import AppDatabase
from tests.db.test_rls import create_web_role, drop_role

# Fixture data -------------------------------------------------------------------------------

MONTH = [date(2026, 3, 1) + timedelta(days=i) for i in range(31)]
# Nothing at all happens on these days: no event, request, call or new prospect.
EMPTY_DAYS = {date(2026, 3, 8), date(2026, 3, 15), date(2026, 3, 16)}
# A tenant that signs up on LATE_TENANT_DAY and never does anything.
LATE_TENANT_DAY = date(2026, 3, 20)
EARLY = datetime(2026, 1, 1, tzinfo=UTC)
FUNNEL_ACTIONS = (
    "search_executed",
    "profile_viewed",
    "profile_enriched",
    "add_to_list",
    "csv_exported",
)
STAGE_COLUMNS = (
    "searched_users",
    "viewed_users",
    "enriched_users",
    "listed_users",
    "exported_users",
)
PROVIDERS_COST = {"exa": Decimal("0.005"), "contactout": Decimal("0.02"), "edgar": Decimal("0")}


def utc(day: date, seconds: float = 0.0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=seconds)


def active_days() -> list[date]:
    return [d for d in MONTH if d not in EMPTY_DAYS]


def seed_month(app_db: AppDatabase, seed: int = 7) -> dict:
    """Three tenants (the third signs up late and stays idle) with four users each, a month of
    random activity, prospects, enrichment requests and provider calls; the usage rollup of
    every day. Returns the ids."""
    rng = random.Random(seed)
    with app_db.begin() as conn:
        tenants = []
        for name, created in (("Acme", EARLY), ("Globex", EARLY), ("Late", utc(LATE_TENANT_DAY))):
            tenants.append(
                conn.execute(
                    sa.insert(Tenant).values(name=name, created_at=created).returning(Tenant.id)
                ).scalar_one()
            )
        users = {
            t: [
                conn.execute(
                    sa.insert(User)
                    .values(tenant_id=t, email=f"u{i}@{t}.test", created_at=EARLY)
                    .returning(User.id)
                ).scalar_one()
                for i in range(4)
            ]
            for t in tenants
        }
        events, prospects, requests, calls = [], [], [], []
        for day in active_days():
            for tenant in tenants[:2]:
                for user in users[tenant]:
                    if rng.random() < 0.3:
                        continue  # not active today
                    # The funnel's actions are likely, in a random order, plus other actions.
                    for action in FUNNEL_ACTIONS:
                        for _ in range(rng.choice((0, 0, 1, 2))):
                            events.append((tenant, user, action, utc(day, rng.uniform(0, 86399))))
                    for _ in range(rng.randint(0, 3)):
                        action = rng.choice(ACTION_TYPES)
                        events.append((tenant, user, action, utc(day, rng.uniform(0, 86399))))
                for _ in range(rng.randint(0, 3)):
                    prospects.append((tenant, utc(day, rng.uniform(0, 86399))))
                for _ in range(rng.randint(3, 8)):
                    asked = utc(day, rng.uniform(0, 80000))
                    status = rng.choice(("done", "done", "done", "failed", "rejected", "running"))
                    cached = status == "done" and rng.random() < 0.3
                    # Some finish after midnight: they count as asked today, finished tomorrow.
                    took = 0.05 if cached else rng.uniform(5, 9000)
                    requests.append(
                        (tenant, status, cached, asked, asked + timedelta(seconds=took))
                    )
            for _ in range(rng.randint(3, 12)):
                provider = rng.choice(tuple(PROVIDERS_COST))
                outcome = rng.choice(
                    ("success", "success", "not_found", "failure", "rate_limited", "circuit_open")
                )
                calls.append((provider, outcome, utc(day, rng.uniform(0, 86399))))

        conn.execute(
            sa.insert(ActivityLog),
            [
                {"tenant_id": t, "user_id": u, "action_type": a, "created_at": at}
                for t, u, a, at in events
            ],
        )
        conn.execute(
            sa.insert(Prospect),
            [
                {"tenant_id": t, "name": f"P{i}", "created_at": at}
                for i, (t, at) in enumerate(prospects)
            ],
        )
        conn.execute(
            sa.insert(EnrichmentRequest),
            [
                {
                    "tenant_id": t,
                    "prospect_id": uuid.uuid4(),
                    "status": status,
                    "batch_key": None if cached else f"b{i}",
                    "created_at": asked,
                    "updated_at": done,
                }
                for i, (t, status, cached, asked, done) in enumerate(requests)
            ],
        )
        call_rows = [
            {
                "provider": p,
                "endpoint": "/x",
                "outcome": o,
                "latency_ms": 100.0,
                "cost_usd": PROVIDERS_COST[p],
                "called_at": at,
            }
            for p, o, at in calls
        ]
        conn.execute(sa.insert(ApiCallLog), call_rows)
        # api_usage as the provider resources count the same calls (circuit_open: no call).
        usage: dict[tuple, dict] = defaultdict(lambda: defaultdict(Decimal))
        for p, o, at in calls:
            if o == "circuit_open":
                continue
            key = usage[(p, at.date())]
            key["success_count"] += o in ("success", "not_found")
            key["failure_count"] += o == "failure"
            key["rate_limited_count"] += o == "rate_limited"
            key["cost_usd"] += PROVIDERS_COST[p] if o in ("success", "not_found") else 0
        conn.execute(
            sa.insert(ApiUsage),
            [{"provider": p, "date": d, "origin": "pipeline", **v} for (p, d), v in usage.items()],
        )
        # The web app's own calls of two days (copied in by api_quota_daily from Redis).
        conn.execute(
            sa.insert(ApiUsage),
            [
                {
                    "provider": "exa",
                    "date": date(2026, 3, 3),
                    "origin": "web_app",
                    "success_count": 40,
                },
                {
                    "provider": "apollo",
                    "date": date(2026, 3, 4),
                    "origin": "web_app",
                    "success_count": 7,
                },
            ],
        )
        for day in MONTH:
            rollup_usage_day(conn, day)
    return {"tenants": tenants, "users": users}


def fetch(app_db: AppDatabase, sql: str, **params) -> list[dict]:
    with app_db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


def write_month(app_db: AppDatabase, days: list[date] = MONTH) -> None:
    with app_db.begin() as conn:
        for day in days:
            write_pulse_day(conn, day)
            write_funnel_day(conn, day)


def percentile_cont(values: list[float], q: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    values = sorted(values)
    pos = q * (len(values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


# Expectations, in Python over the raw rows ----------------------------------------------------


def expected_pulse(app_db: AppDatabase, day: date) -> dict:
    events = fetch(app_db, "SELECT tenant_id, user_id, action_type, created_at FROM activity_log")
    on_day = [e for e in events if e["created_at"].astimezone(UTC).date() == day]

    def users_since(days: int) -> int:
        first = day - timedelta(days=days - 1)
        return len(
            {e["user_id"] for e in events if first <= e["created_at"].astimezone(UTC).date() <= day}
        )

    out = {
        "active_tenants": len({e["tenant_id"] for e in on_day}),
        "dau": len({e["user_id"] for e in on_day}),
        "wau": users_since(7),
        "mau": users_since(30),
        "total_events": len(on_day),
    }
    for action, column in COUNTER_COLUMNS.items():
        out[column] = sum(1 for e in on_day if e["action_type"] == action)
    out["new_prospects"] = sum(
        1
        for p in fetch(app_db, "SELECT created_at FROM prospects")
        if p["created_at"].astimezone(UTC).date() == day
    )
    reqs = fetch(
        app_db, "SELECT status, batch_key, created_at, updated_at FROM enrichment_requests"
    )
    finished = [r for r in reqs if r["updated_at"].astimezone(UTC).date() == day]
    done = [r for r in finished if r["status"] == "done"]
    ran = [(r["updated_at"] - r["created_at"]).total_seconds() for r in done if r["batch_key"]]
    out |= {
        "enrichments_requested": sum(
            1 for r in reqs if r["created_at"].astimezone(UTC).date() == day
        ),
        "enrichments_completed": len(done),
        "enrichments_cached": sum(1 for r in done if r["batch_key"] is None),
        "enrichments_failed": sum(1 for r in finished if r["status"] == "failed"),
        "enrichments_rejected": sum(1 for r in finished if r["status"] == "rejected"),
        "request_to_done_p50_s": percentile_cont(ran, 0.5),
        "request_to_done_p95_s": percentile_cont(ran, 0.95),
    }
    calls = [
        c
        for c in fetch(app_db, "SELECT provider, outcome, cost_usd, called_at FROM api_call_log")
        if c["called_at"].astimezone(UTC).date() == day
    ]
    made = [c for c in calls if c["outcome"] != "circuit_open"]
    web_app = sum(
        u["success_count"]
        for u in fetch(app_db, "SELECT * FROM api_usage WHERE origin = 'web_app'")
        if u["date"] == day
    )
    out |= {
        "pipeline_provider_calls": len(made),
        "web_app_provider_calls": web_app,
        "provider_calls": len(made) + web_app,
        "provider_failures": sum(1 for c in made if c["outcome"] in ("failure", "rate_limited")),
        "provider_spend_usd": sum(
            (c["cost_usd"] for c in made if c["outcome"] in ("success", "not_found")), Decimal(0)
        ),
    }
    return out


def expected_funnel(app_db: AppDatabase, day: date) -> dict:
    """{tenant_id or None: (searched, viewed, enriched, listed, exported)}, from activity_log."""
    did: dict[tuple, set[str]] = defaultdict(set)
    for e in fetch(app_db, "SELECT tenant_id, user_id, action_type, created_at FROM activity_log"):
        if e["created_at"].astimezone(UTC).date() == day:
            did[(e["tenant_id"], e["user_id"])].add(e["action_type"])
    tenants = [
        t["id"]
        for t in fetch(app_db, "SELECT id, created_at FROM tenants")
        if t["created_at"] < utc(day + timedelta(days=1))
    ]
    out: dict = {t: [0] * 5 for t in tenants}
    out[None] = [0] * 5
    for (tenant, _), actions in did.items():
        for n in range(5):
            # stage n counts a user who did stage n's action and every earlier stage's
            if not set(FUNNEL_ACTIONS[: n + 1]) <= actions:
                break
            out.setdefault(tenant, [0] * 5)[n] += 1
            out[None][n] += 1
    return {t: tuple(v) for t, v in out.items()}


def pulse_row(app_db: AppDatabase, day: date) -> dict:
    rows = fetch(app_db, "SELECT * FROM platform_pulse_daily WHERE date = :d", d=day)
    assert len(rows) == 1, f"{day}: {len(rows)} pulse rows"
    return rows[0]


def funnel_rows(app_db: AppDatabase, day: date) -> dict:
    return {
        r["tenant_id"]: r
        for r in fetch(app_db, "SELECT * FROM funnel_daily WHERE date = :d", d=day)
    }


def snapshot(app_db: AppDatabase) -> tuple[list, list]:
    pulse = fetch(app_db, "SELECT * FROM platform_pulse_daily ORDER BY date")
    funnel = fetch(app_db, "SELECT * FROM funnel_daily ORDER BY date, tenant_id NULLS FIRST")
    drop = ("id", "created_at")
    return (
        [{k: v for k, v in r.items() if k not in drop} for r in pulse],
        [{k: v for k, v in r.items() if k not in drop} for r in funnel],
    )


def materialize(asset: dg.AssetsDefinition, app_db: AppDatabase, day: date):
    return dg.materialize(
        [asset], partition_key=day.isoformat(), resources={"app_db": app_db}, raise_on_error=False
    )


@pytest.fixture
def seeded(app_db: AppDatabase) -> dict:
    return seed_month(app_db)


# Tests ------------------------------------------------------------------------------------------


def test_pulse_matches_the_raw_rows_every_day_of_a_seeded_month(
    app_db: AppDatabase, seeded: dict
) -> None:
    write_month(app_db)

    for day in MONTH:
        got = pulse_row(app_db, day)
        for figure, want in expected_pulse(app_db, day).items():
            if isinstance(want, float):
                assert got[figure] == pytest.approx(want), (day, figure)
            else:
                assert got[figure] == want, (day, figure)
    # The seed is not degenerate: the windows and the percentiles were really exercised.
    busy = pulse_row(app_db, date(2026, 3, 20))
    assert 0 < busy["dau"] < busy["wau"] <= busy["mau"] <= 8
    assert any(
        p["request_to_done_p50_s"] is not None
        and p["request_to_done_p50_s"] < p["request_to_done_p95_s"]
        for p in (pulse_row(app_db, d) for d in MONTH)
    )
    assert pulse_row(app_db, date(2026, 3, 3))["web_app_provider_calls"] == 40


def test_a_day_without_activity_is_a_row_of_zeros(app_db: AppDatabase, seeded: dict) -> None:
    day = date(2026, 3, 15)
    write_month(app_db, [day])

    pulse = pulse_row(app_db, day)
    counts = {k: v for k, v in pulse.items() if k not in ("date", "created_at")}
    # WAU/MAU look back over days that had activity; everything of the day itself is zero.
    assert counts.pop("wau") > 0 and counts.pop("mau") > 0
    assert counts.pop("request_to_done_p50_s") is None
    assert counts.pop("request_to_done_p95_s") is None
    assert set(counts.values()) == {0}

    funnel = funnel_rows(app_db, day)
    acme, globex, late = seeded["tenants"]
    # Every tenant that existed that day, and the platform row; not the one signing up later.
    assert set(funnel) == {None, acme, globex}
    for row in funnel.values():
        assert [row[c] for c in STAGE_COLUMNS] == [0] * 5
        assert row["search_to_view"] is None and row["list_to_export"] is None
    assert late in funnel_rows_after_write(app_db, LATE_TENANT_DAY)


def funnel_rows_after_write(app_db: AppDatabase, day: date) -> dict:
    write_month(app_db, [day])
    return funnel_rows(app_db, day)


def test_an_empty_database_still_gets_its_rows(app_db: AppDatabase) -> None:
    day = date(2026, 3, 10)
    write_month(app_db, [day])
    assert pulse_row(app_db, day)["dau"] == 0
    assert list(funnel_rows(app_db, day)) == [None]


def test_funnel_matches_the_stage_rule_every_day_of_a_seeded_month(
    app_db: AppDatabase, seeded: dict
) -> None:
    write_month(app_db)

    for day in MONTH:
        got = funnel_rows(app_db, day)
        want = expected_funnel(app_db, day)
        assert set(got) == set(want), day
        for tenant, stages in want.items():
            row = got[tenant]
            assert tuple(row[c] for c in STAGE_COLUMNS) == stages, (day, tenant)
            for rate, (num, den) in zip(
                ("search_to_view", "view_to_enrich", "enrich_to_list", "list_to_export"),
                zip(stages[1:], stages[:-1], strict=True),
                strict=True,
            ):
                assert row[rate] == (pytest.approx(num / den) if den else None), (day, rate)
    platform = [funnel_rows(app_db, d)[None] for d in active_days()]
    # The seed reaches the end of the funnel on some days and drops users on the way.
    assert any(r["exported_users"] > 0 for r in platform)
    assert any(r["searched_users"] > r["exported_users"] for r in platform)


def test_rerunning_and_backfilling_in_any_order_gives_the_same_rows(
    app_db: AppDatabase, seeded: dict
) -> None:
    write_month(app_db)
    first = snapshot(app_db)

    write_month(app_db, list(reversed(MONTH)))  # the backfill again, newest day first
    write_month(app_db, [date(2026, 3, 12)] * 3)  # and one day re-run over and over

    assert snapshot(app_db) == first
    assert len(first[0]) == len(MONTH)
    assert len(first[1]) == sum(len(expected_funnel(app_db, d)) for d in MONTH)


def test_assets_write_tables_metadata_and_passing_checks(app_db: AppDatabase, seeded: dict) -> None:
    day = date(2026, 3, 20)

    pulse = materialize(platform_pulse_daily, app_db, day)
    funnel = materialize(funnel_daily, app_db, day)

    assert pulse.success and funnel.success
    checks = {
        e.check_name: e.passed for r in (pulse, funnel) for e in r.get_asset_check_evaluations()
    }
    assert checks == {
        PULSE_USAGE_CHECK: True,
        PULSE_REQUEST_LOG_CHECK: True,
        PULSE_CALL_LOG_CHECK: True,
        FUNNEL_STAGES_CHECK: True,
        FUNNEL_TOTAL_CHECK: True,
    }
    meta = pulse.asset_materializations_for_node("platform_pulse_daily")[0].metadata
    assert meta["dagster/row_count"].value == 1
    assert meta["dau"].value == pulse_row(app_db, day)["dau"]
    assert isinstance(meta["pulse"], dg.TableMetadataValue)
    by_action = {r.data["action_type"]: r.data["events"] for r in meta["events_by_action"].records}
    assert by_action["search_executed"] == pulse_row(app_db, day)["searches_executed"]
    meta = funnel.asset_materializations_for_node("funnel_daily")[0].metadata
    assert meta["dagster/row_count"].value == 4  # three tenants and the platform row
    table = meta["funnel"]
    assert isinstance(table, dg.TableMetadataValue)
    assert table.records[0].data["tenant"] == "(platform)"
    assert meta["searched_users"].value == funnel_rows(app_db, day)[None]["searched_users"]


def test_pulse_check_fails_when_usage_metrics_disagree(app_db: AppDatabase, seeded: dict) -> None:
    day = date(2026, 3, 20)
    # The rollup of the day is stale: one user's searches were counted before the last ones.
    with app_db.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE usage_metrics_daily SET searches_executed = searches_executed + 1, "
                "total_events = total_events + 1 "
                "WHERE id = (SELECT id FROM usage_metrics_daily WHERE date = :d LIMIT 1)"
            ),
            {"d": day},
        )

    result = materialize(platform_pulse_daily, app_db, day)

    usage_check = next(
        e for e in result.get_asset_check_evaluations() if e.check_name == PULSE_USAGE_CHECK
    )
    assert not usage_check.passed
    assert usage_check.metadata["mismatches"].value == 2
    assert "searches_executed" in usage_check.description


def test_pulse_check_fails_when_the_call_log_has_calls_the_counters_lack(
    app_db: AppDatabase, seeded: dict
) -> None:
    day = date(2026, 3, 20)
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ApiCallLog).values(
                provider="exa", endpoint="/x", outcome="success", cost_usd=1, called_at=utc(day, 60)
            )
        )
    result = materialize(platform_pulse_daily, app_db, day)
    evaluation = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not evaluation[PULSE_CALL_LOG_CHECK].passed
    assert evaluation[PULSE_USAGE_CHECK].passed


def test_request_log_and_funnel_stage_checks_catch_a_bad_row(
    app_db: AppDatabase, seeded: dict
) -> None:
    day = date(2026, 3, 20)
    write_month(app_db, [day])
    from phronesis_dagster.assets.dashboard import day_window

    params = day_window(day)
    pulse = pulse_row(app_db, day)
    with app_db.connect() as conn:
        assert pulse_matches_request_log(conn, params, pulse).passed
        off_by_one = {**pulse, "enrichments_failed": pulse["enrichments_failed"] + 1}
        assert not pulse_matches_request_log(conn, params, off_by_one).passed
        assert funnel_stages_result(conn, params).passed
    acme = seeded["tenants"][0]
    with app_db.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE funnel_daily SET exported_users = listed_users + 1 "
                "WHERE date = :d AND tenant_id = :t"
            ),
            {"d": day, "t": acme},
        )
    with app_db.connect() as conn:
        bad = funnel_stages_result(conn, params)
    assert not bad.passed
    assert [r.data["tenant_id"] for r in bad.metadata["rows"].records] == [str(acme)]


# RLS ----------------------------------------------------------------------------------------

RLS_TABLES = (*DASHBOARD_TENANT_TABLES, "tenant_activity_daily", "enrichment_error_feed")


@pytest.fixture
def web_role(postgres_url: str) -> Iterator[str]:
    """A LOGIN role without BYPASSRLS that may SELECT the derived tables; dropped afterwards."""
    role = create_web_role(postgres_url, (f"SELECT ON {', '.join(RLS_TABLES)}",))
    try:
        yield role
    finally:
        drop_role(postgres_url, role)


def visible(url: str, role: str, tenant: uuid.UUID | None) -> dict[str, set]:
    """Per table, the tenant_ids `role` sees with `app.current_tenant_id` set to `tenant`."""
    role_url = sa.make_url(url).set(username=role, password=None)
    with sa.create_engine(role_url, poolclass=sa.NullPool).connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == role
        if tenant is not None:
            conn.exec_driver_sql(f"SET app.current_tenant_id = '{tenant}'")
        return {
            t: {r[0] for r in conn.execute(sa.text(f"SELECT tenant_id FROM {t}"))}
            for t in RLS_TABLES
        }


def test_rls_shows_a_tenant_only_its_own_derived_rows(
    app_db: AppDatabase, postgres_url: str, seeded: dict, web_role: str
) -> None:
    acme, globex, _ = seeded["tenants"]
    day = date(2026, 3, 20)
    write_month(app_db, [day])
    with app_db.begin() as conn:
        for tenant in (acme, globex):
            conn.execute(sa.insert(TenantActivityDaily).values(date=day, tenant_id=tenant))
            conn.execute(
                sa.insert(EnrichmentErrorFeed).values(
                    prospect_id=uuid.uuid4(),
                    tenant_id=tenant,
                    source="exa",
                    status="failed",
                    record_shape="structured",
                )
            )
    # The owner (the pipeline's role) sees every tenant and the platform row.
    assert {r["tenant_id"] for r in fetch(app_db, "SELECT tenant_id FROM funnel_daily")} >= {
        None,
        acme,
        globex,
    }

    as_acme = visible(postgres_url, web_role, acme)
    assert as_acme == {t: {acme} for t in RLS_TABLES}  # no Globex rows, no platform row
    assert visible(postgres_url, web_role, globex)["funnel_daily"] == {globex}
    assert visible(postgres_url, web_role, None) == {t: set() for t in RLS_TABLES}


def test_lineage_automation_and_backfill_job_as_the_ui_shows_them() -> None:
    from phronesis_dagster.definitions import defs

    graph = defs.resolve_asset_graph()

    def parents(key: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(key)).parent_keys}

    assert parents("platform_pulse_daily") == {
        "activity_log",
        "usage_metrics_daily",
        "prospects",
        "enrichment_requests",
        "api_usage",
        "api_quota_daily",
    }
    assert parents("funnel_daily") == {"activity_log", "usage_metrics_daily"}
    usage = graph.get(dg.AssetKey("usage_metrics_daily"))
    for key in ("platform_pulse_daily", "funnel_daily"):
        node = graph.get(dg.AssetKey(key))
        assert node.partitions_def == usage.partitions_def
        assert "eager" in node.automation_condition.get_label().lower()
    sensor = next(s for s in defs.sensors if s.name == "dashboard_automation_sensor")
    assert isinstance(sensor, dg.AutomationConditionSensorDefinition)
    # A backfill of usage_metrics_daily from the UI (and the demo's rollup) refreshes both.
    job = defs.get_repository_def().get_job("usage_metrics_daily_job")
    assert {dg.AssetKey("platform_pulse_daily"), dg.AssetKey("funnel_daily")} <= set(
        job.asset_layer.executable_asset_keys
    )


def test_a_new_day_of_usage_metrics_starts_the_same_day_of_both_datasets() -> None:
    from phronesis_dagster.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    targets = dg.AssetSelection.assets(platform_pulse_daily, funnel_daily)
    latest = usage_daily_partitions.get_last_partition_key()

    def requested(cursor=None) -> tuple[dict[str, int], object]:
        result = dg.evaluate_automation_conditions(
            defs=defs, instance=instance, asset_selection=targets, cursor=cursor
        )
        got = {
            r.key.to_user_string(): list(r.true_subset.expensively_compute_partition_keys())
            for r in result.results
            if r.true_subset.size
        }
        return got, result.cursor

    got, cursor = requested()
    assert got == {}  # nothing upstream yet: nothing to follow
    instance.report_runless_asset_event(
        dg.AssetMaterialization("usage_metrics_daily", partition=latest)
    )
    got, cursor = requested(cursor)
    assert got == {"funnel_daily": [latest]}  # the pulse also waits for the day's quota figures
    instance.report_runless_asset_event(
        dg.AssetMaterialization("api_quota_daily", partition=latest)
    )
    got, _ = requested(cursor)
    assert got == {"platform_pulse_daily": [latest]}
