"""usage_metrics_daily on the web app's schema: counters, lists_created, re-runs, late events,
UTC days."""

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.usage import usage_metrics_daily
from phronesis_dagster.db.models import ACTION_TYPES, COUNTER_COLUMNS, ActivityLog, Tenant, User
from phronesis_dagster.resources.app_db import AppDatabase
from tests.metadata_tables import table_rows

DAY = date(2025, 3, 14)
DAY_KEY = DAY.isoformat()
MIDNIGHT = datetime(2025, 3, 14, tzinfo=UTC)
TOP_TENANT_COLUMNS = [
    "tenant_id",
    "tenant_name",
    "active_users",
    "events",
    "searches",
    "enrichments",
]


def seed_users(app_db: AppDatabase, tenants: int = 2, users_per_tenant: int = 2) -> list:
    """(tenant_id, user_id) pairs of freshly inserted tenants and users."""
    pairs = []
    with app_db.begin() as conn:
        for t in range(tenants):
            tenant_id = conn.execute(
                sa.insert(Tenant).values(name=f"Tenant {t}").returning(Tenant.id)
            ).scalar_one()
            for u in range(users_per_tenant):
                user_id = conn.execute(
                    sa.insert(User)
                    .values(tenant_id=tenant_id, email=f"u{u}@t{t}.test", full_name=f"U {u}")
                    .returning(User.id)
                ).scalar_one()
                pairs.append((tenant_id, user_id))
    return pairs


def add_events(app_db: AppDatabase, events: list[tuple], metadata: dict | None = None) -> None:
    """Insert (tenant_id, user_id, action_type, created_at) events, all with `metadata`."""
    with app_db.begin() as conn:
        conn.execute(
            sa.insert(ActivityLog.__table__),
            [
                {
                    "tenant_id": t,
                    "user_id": u,
                    "action_type": a,
                    "created_at": at,
                    "metadata": metadata or {},
                }
                for t, u, a, at in events
            ],
        )


def add_to_list(app_db: AppDatabase, tenant_id, user_id, at: datetime, list_id) -> None:
    add_events(app_db, [(tenant_id, user_id, "add_to_list", at)], {"list_id": list_id})


def usage_rows(app_db: AppDatabase, day: date = DAY) -> dict[tuple[int, int], dict]:
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT * FROM usage_metrics_daily WHERE date = :d").bindparams(
                sa.bindparam("d", type_=sa.Date())
            ),
            {"d": day},
        ).mappings()
        return {(r["tenant_id"], r["user_id"]): dict(r) for r in rows}


def counters_only(rows: dict) -> dict:
    """The rows without surrogate id and timestamps, which a re-run legitimately changes."""
    return {
        k: {c: v for c, v in r.items() if c != "id" and not c.endswith("_at")}
        for k, r in rows.items()
    }


def materialize(app_db: AppDatabase, key: str = DAY_KEY) -> dg.ExecuteInProcessResult:
    result = dg.materialize([usage_metrics_daily], partition_key=key, resources={"app_db": app_db})
    assert result.success
    return result


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [mat] = result.asset_materializations_for_node("usage_metrics_daily")
    return {k: v.value for k, v in mat.metadata.items()}


def test_each_counter_counts_exactly_its_action_type(app_db):
    pairs = seed_users(app_db)
    events, expected = [], {}
    # A different number of events per (user, action) so a swapped column cannot pass.
    for i, (tenant_id, user_id) in enumerate(pairs):
        counts = {a: (i + j) % 4 for j, a in enumerate(ACTION_TYPES)}
        counts["login"] += 1  # every user is active
        expected[(tenant_id, user_id)] = counts
        for action, n in counts.items():
            for k in range(n):
                events.append((tenant_id, user_id, action, MIDNIGHT + timedelta(minutes=k + i)))
    add_events(app_db, events)

    meta = metadata(materialize(app_db))

    rows = usage_rows(app_db)
    assert set(rows) == set(expected)
    for key, counts in expected.items():
        for action, column in COUNTER_COLUMNS.items():
            assert rows[key][column] == counts[action], (key, column)
        assert rows[key]["total_events"] == sum(counts.values())
    assert meta["rows_written"] == len(pairs)
    assert meta["events_counted"] == len(events)
    assert meta["tenants"] == 2 and meta["users"] == len(pairs)
    assert meta["dagster/row_count"] == len(pairs)
    names = {
        tenant_id: f"Tenant {i}" for i, tenant_id in enumerate(dict.fromkeys(t for t, _ in pairs))
    }
    expected_top: dict = {}
    for (tenant_id, _), counts in expected.items():
        row = expected_top.setdefault(
            tenant_id,
            {
                "tenant_id": str(tenant_id),
                "tenant_name": names[tenant_id],
                "active_users": 0,
                "events": 0,
                "searches": 0,
                "enrichments": 0,
            },
        )
        row["active_users"] += 1
        row["events"] += sum(counts.values())
        row["searches"] += counts["search_executed"]
        row["enrichments"] += counts["profile_enriched"]
    # Busiest first, ties by tenant id (PostgreSQL orders uuids as their text).
    ordered = sorted(expected_top.values(), key=lambda r: (-r["events"], r["tenant_id"]))
    assert table_rows(meta["top_tenants"], TOP_TENANT_COLUMNS) == ordered


def test_rerun_is_idempotent_picks_up_late_events_and_drops_vanished_users(app_db):
    (t1, u1), (t2, u2) = seed_users(app_db, tenants=2, users_per_tenant=1)
    add_events(app_db, [(t1, u1, "login", MIDNIGHT + timedelta(hours=9))] * 3)
    add_events(app_db, [(t2, u2, "search_executed", MIDNIGHT + timedelta(hours=10))])
    materialize(app_db)
    first = usage_rows(app_db)
    materialize(app_db)
    again = usage_rows(app_db)
    assert counters_only(again) == counters_only(first)
    assert len(again) == 2

    # A late event for the day, and all of user 2's events deleted.
    add_events(app_db, [(t1, u1, "note_added", MIDNIGHT + timedelta(hours=23))])
    with app_db.begin() as conn:
        conn.execute(sa.delete(ActivityLog).where(ActivityLog.user_id == u2))
    materialize(app_db)
    rows = usage_rows(app_db)
    assert set(rows) == {(t1, u1)}
    assert rows[(t1, u1)]["notes_added"] == 1
    assert rows[(t1, u1)]["total_logins"] == 3
    assert rows[(t1, u1)]["total_events"] == 4


def test_utc_day_is_half_open(app_db):
    [(t, u)] = seed_users(app_db, tenants=1, users_per_tenant=1)
    add_events(
        app_db,
        [
            (t, u, "login", MIDNIGHT - timedelta(milliseconds=1)),  # previous day
            (t, u, "login", MIDNIGHT),  # first instant of the day
            (t, u, "search_executed", MIDNIGHT + timedelta(days=1, milliseconds=-1)),
            (t, u, "profile_viewed", MIDNIGHT + timedelta(days=1)),  # next day
        ],
    )
    materialize(app_db)
    materialize(app_db, (DAY + timedelta(days=1)).isoformat())
    materialize(app_db, (DAY - timedelta(days=1)).isoformat())

    today = usage_rows(app_db)[(t, u)]
    assert (today["total_logins"], today["searches_executed"], today["total_events"]) == (1, 1, 2)
    assert usage_rows(app_db, DAY - timedelta(days=1))[(t, u)]["total_logins"] == 1
    nxt = usage_rows(app_db, DAY + timedelta(days=1))[(t, u)]
    assert (nxt["profiles_viewed"], nxt["total_events"]) == (1, 1)


def test_non_utc_timestamps_fall_on_their_utc_day(app_db):
    [(t, u)] = seed_users(app_db, tenants=1, users_per_tenant=1)
    helsinki = datetime(2025, 3, 15, 1, 30, tzinfo=ZoneInfo("Europe/Helsinki"))  # 23:30 UTC 14th
    add_events(app_db, [(t, u, "login", helsinki)])
    materialize(app_db)
    assert usage_rows(app_db)[(t, u)]["total_logins"] == 1


def test_lists_created_counts_first_ever_adds_credited_to_their_user(app_db):
    (t, u1), (_, u2) = seed_users(app_db, tenants=1, users_per_tenant=2)
    [(other_tenant, u3)] = seed_users(app_db, tenants=1, users_per_tenant=1)
    old, shared, mine = (str(uuid.uuid4()) for _ in range(3))
    # `old` got its first add the day before: adding to it again creates nothing.
    add_to_list(app_db, t, u1, MIDNIGHT - timedelta(hours=3), old)
    add_to_list(app_db, t, u1, MIDNIGHT + timedelta(hours=8), old)
    # `shared` is first added by u2, then by u1: created once, by u2.
    add_to_list(app_db, t, u2, MIDNIGHT + timedelta(hours=10), shared)
    add_to_list(app_db, t, u1, MIDNIGHT + timedelta(hours=11), shared)
    # `mine` twice by u1 the same day: one list.
    add_to_list(app_db, t, u1, MIDNIGHT + timedelta(hours=12), mine)
    add_to_list(app_db, t, u1, MIDNIGHT + timedelta(hours=13), mine)
    # Adds without a list id create no list.
    add_events(app_db, [(t, u1, "add_to_list", MIDNIGHT + timedelta(hours=14))])
    add_to_list(app_db, t, u1, MIDNIGHT + timedelta(hours=15), None)
    # The same list id in another tenant is that tenant's list.
    add_to_list(app_db, other_tenant, u3, MIDNIGHT + timedelta(hours=9), old)

    materialize(app_db)
    rows = usage_rows(app_db)
    assert rows[(t, u1)]["lists_created"] == 1
    assert rows[(t, u2)]["lists_created"] == 1
    assert rows[(other_tenant, u3)]["lists_created"] == 1
    assert rows[(t, u1)]["adds_to_list"] == 6

    # The next day, adding to `shared` again creates nothing.
    add_to_list(app_db, t, u2, MIDNIGHT + timedelta(days=1, hours=1), shared)
    materialize(app_db, (DAY + timedelta(days=1)).isoformat())
    assert usage_rows(app_db, DAY + timedelta(days=1))[(t, u2)]["lists_created"] == 0


def test_empty_day_writes_no_rows_and_clears_stale_ones(app_db):
    [(t, u)] = seed_users(app_db, tenants=1, users_per_tenant=1)
    add_events(app_db, [(t, u, "login", MIDNIGHT + timedelta(hours=1))])
    materialize(app_db)
    assert usage_rows(app_db)
    with app_db.begin() as conn:
        conn.execute(sa.delete(ActivityLog))
    meta = metadata(materialize(app_db))
    assert usage_rows(app_db) == {}
    assert meta["rows_written"] == 0 and meta["events_counted"] == 0
    assert meta["dagster/row_count"] == 0
    assert table_rows(meta["top_tenants"], TOP_TENANT_COLUMNS) == []
