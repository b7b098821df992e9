"""Bad enrichment requests, property-based: rows inserted as the web app would (unknown UUIDs,
the nil UUID, another tenant's prospect, prospects with empty, blank, huge, unicode or
SQL-looking names and companies) mixed with valid ones, then one tick of the request sensor.
Every bad request ends `rejected` with a reason, every valid one is queued into a batch the
sensor asks a run for, nothing stays pending and no other row changes. `enqueue_enrichment` with
bad arguments fails cleanly, leaving nothing behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from phronesis_dagster.db.models import Base, EnrichmentJob, EnrichmentRequest, Prospect, Tenant
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor

SQL_STRINGS = [
    "'; DROP TABLE prospects; --",
    "Robert'); DROP TABLE enrichment_requests;--",
    "1 OR 1=1",
    "x'; UPDATE enrichment_requests SET status='queued' WHERE '1'='1",
]
# The database creates the prospects in each example, so the sensor's batch size is small
# enough to make several batches.
SENSOR = build_enrichment_request_sensor(SensorSettings(batch_size=3))
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def text_values(max_size: int) -> st.SearchStrategy[str | None]:
    """Names and companies, mostly usable: unicode, SQL-looking, huge (PostgreSQL refuses NUL);
    sometimes None (a NULL company; a name is NOT NULL in the web app, so it becomes ""),
    empty or blank."""
    printable = st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
    )
    usable = st.one_of(
        st.sampled_from(["Zoë Ñúñez", "王小明", "👩‍💼", "O'Brien & Sons", *SQL_STRINGS]),
        printable.filter(str.strip),
        st.sampled_from([max_size, max_size // 2]).map(lambda n: "Ω" * n),
    )
    unusable = st.one_of(
        st.none(), st.sampled_from(["", " ", "\t\n", "\u3000", "\u00a0 ", "\u2028"])
    )
    return st.one_of(usable, usable, usable, unusable)


@dataclass(frozen=True)
class Ask:
    """One request row: `prospect` indexes the example's prospects, or is a raw id."""

    tenant: str | uuid.UUID  # "own", "other" or a raw tenant id
    prospect: uuid.UUID | tuple[str, int]  # ("index", i) or a raw id
    force: bool
    requested_by: uuid.UUID | None


raw_ids = st.one_of(
    st.sampled_from([uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]), st.uuids(), st.uuids(version=4)
)


def asks(n_prospects: int) -> st.SearchStrategy[Ask]:
    if n_prospects:
        index = st.integers(0, n_prospects - 1).map(lambda i: ("index", i))
        prospect = st.one_of(index, index, index, raw_ids)
    else:
        prospect = raw_ids
    return st.builds(
        Ask,
        tenant=st.one_of(st.just("own"), st.just("own"), st.just("other"), raw_ids),
        prospect=prospect,
        force=st.booleans(),
        requested_by=st.one_of(st.none(), raw_ids),
    )


@st.composite
def scenarios(draw: st.DrawFn, max_text: int) -> tuple[list[tuple[str, Any, Any]], list[Ask]]:
    text = text_values(max_text)
    prospects = draw(st.lists(st.tuples(st.sampled_from(["own", "other"]), text, text), max_size=8))
    # Always at least one valid request, somewhere among the others.
    prospects = [("own", "Jane Valid", "Valid Co"), *prospects]
    requests = draw(st.lists(asks(len(prospects)), max_size=15))
    at = draw(st.integers(0, len(requests)))
    requests.insert(at, Ask(tenant="own", prospect=("index", 0), force=False, requested_by=None))
    return prospects, requests


# ---- database helpers ----------------------------------------------------------------------


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def snapshot(engine: sa.Engine, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings()
        return [dict(r) for r in rows]


def seed(engine: sa.Engine) -> tuple[dict[str, int], int, list[int]]:
    """Two tenants and the rows no tick may touch: a prospect with a finished and a failed
    request."""
    with engine.begin() as conn:
        tenants = {
            key: conn.execute(sa.insert(Tenant).returning(Tenant.id), {"name": key}).scalar_one()
            for key in ("own", "other")
        }
        keeper = conn.execute(
            sa.insert(Prospect).returning(Prospect.id),
            {"tenant_id": tenants["own"], "name": "Avery Stone", "company": "Northwind"},
        ).scalar_one()
        untouched = [
            conn.execute(
                sa.insert(EnrichmentRequest).returning(EnrichmentRequest.id),
                {"tenant_id": tenants["own"], "prospect_id": keeper, **values},
            ).scalar_one()
            for values in (
                {"status": "done", "reason": "enriched"},
                {"status": "failed", "reason": "contactout: HTTP 500"},
            )
        ]
    return tenants, keeper, untouched


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def check_one_tick(
    url: str, instance: dg.DagsterInstance, scenario: tuple[list[Any], list[Ask]]
) -> None:
    app_db = AppDatabase(url=url)
    engine = app_db.engine
    reset(engine)
    tenants, keeper, untouched = seed(engine)
    prospect_defs, ask_list = scenario

    with engine.begin() as conn:
        prospect_ids = [
            conn.execute(
                sa.insert(Prospect).returning(Prospect.id),
                {"tenant_id": tenants[owner], "name": name or "", "company": company},
            ).scalar_one()
            for owner, name, company in prospect_defs
        ]
    # A raw id may hit one of these prospects, the seeded one included.
    by_id = {pid: prospect_defs[i] for i, pid in enumerate(prospect_ids)}
    by_id[keeper] = ("own", "Avery Stone", "Northwind")

    # What the sensor must decide, from the contract: a request is valid when its prospect
    # exists, belongs to the request's tenant and has a name and a company.
    expected: dict[int, bool] = {}
    by_id = {pid: (o, n or "", c) for pid, (o, n, c) in by_id.items()}
    with engine.begin() as conn:
        for ask in ask_list:
            tenant_id = tenants[ask.tenant] if isinstance(ask.tenant, str) else ask.tenant
            if isinstance(ask.prospect, tuple):
                prospect_id = prospect_ids[ask.prospect[1]]
            else:
                prospect_id = ask.prospect
            rid = conn.execute(
                sa.insert(EnrichmentRequest).returning(EnrichmentRequest.id),
                {
                    "tenant_id": tenant_id,
                    "prospect_id": prospect_id,
                    "force": ask.force,
                    "requested_by": ask.requested_by,
                },
            ).scalar_one()
            target = by_id.get(prospect_id)
            expected[rid] = (
                target is not None
                and tenants[target[0]] == tenant_id
                and bool((target[1] or "").strip())
                and bool((target[2] or "").strip())
            )
    event(f"valid requests: {'some' if any(expected.values()) else 'none'}")
    event(f"rejected requests: {'none' if all(expected.values()) else 'some'}")
    req = EnrichmentRequest.__table__
    kept_requests = snapshot(engine, req, req.c.id.in_(untouched))
    kept_prospects = snapshot(engine, Prospect.__table__)
    kept_tenants = snapshot(engine, Tenant.__table__)

    context = dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
    result = SENSOR(context)

    assert isinstance(result, dg.SensorResult)
    rows = {r["id"]: r for r in snapshot(engine, req, req.c.id.in_(list(expected)))}
    assert set(rows) == set(expected)  # nothing lost
    asked = {r.partition_key for r in result.run_requests}
    for rid, valid in expected.items():
        row = rows[rid]
        if valid:
            assert row["status"] == "queued", row
            assert row["batch_key"] in asked and row["reason"] is None
        else:
            assert row["status"] == "rejected", row
            assert (row["reason"] or "").strip(), row
            assert row["batch_key"] is None
    if not any(expected.values()):
        assert result.skip_reason is not None and not result.run_requests
    # The rows no request could touch are as they were.
    assert snapshot(engine, req, req.c.id.in_(untouched)) == kept_requests
    assert snapshot(engine, Prospect.__table__) == kept_prospects
    assert snapshot(engine, Tenant.__table__) == kept_tenants


# ---- the sensor on bad rows ----------------------------------------------------------------


@PROPERTY
@given(scenario=scenarios(max_text=5_000))
def test_sensor_rejects_bad_requests_and_queues_valid_ones(postgres_url, instance, scenario):
    check_one_tick(postgres_url, instance, scenario)


# ---- enqueue_enrichment with bad arguments -------------------------------------------------


def request_count(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        requests = conn.execute(sa.select(sa.func.count()).select_from(EnrichmentRequest)).one()
        jobs = conn.execute(sa.select(sa.func.count()).select_from(EnrichmentJob)).one()
    return requests[0], jobs[0]


GOOD = uuid.UUID("7f9c2b1e-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    "prospect_ids",
    [
        [],
        [GOOD, None],
        [GOOD, "abc"],
        [GOOD, "'; DROP TABLE prospects; --"],
        [GOOD, object()],
        [GOOD, [uuid.uuid4()]],
        (uuid.uuid4() if i < 500 else "x" for i in range(1_000)),
        [GOOD, 7],
        [GOOD, 1.9],
        [GOOD, True],
        [GOOD, str(GOOD)[:-1]],
        [GOOD, str(GOOD) + "0"],
        [GOOD, uuid.uuid4().bytes],
        str(GOOD),
    ],
    ids=[
        "empty",
        "none",
        "text",
        "sql",
        "object",
        "nested-list",
        "generator-failing-late",
        "integer",
        "fraction",
        "bool",
        "uuid-one-digit-short",
        "uuid-one-digit-long",
        "raw-bytes",
        "a-single-id-not-a-list",
    ],
)
def test_enqueue_rejects_bad_ids_and_writes_nothing(postgres_url, prospect_ids):
    engine = AppDatabase(url=postgres_url).engine
    with engine.begin() as conn:
        tenant = conn.execute(sa.insert(Tenant).returning(Tenant.id), {"name": "t"}).scalar_one()
    with pytest.raises((ValueError, TypeError)) as info:
        enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=prospect_ids)
    assert str(info.value)
    assert request_count(engine) == (0, 0)


@pytest.mark.parametrize(
    ("tenant", "user"),
    [
        ("1; DROP TABLE prospects; --", None),
        (1, None),
        (None, None),
        ("own", "not-a-user"),
        ("own", 5),
    ],
    ids=["sql-tenant", "integer-tenant", "no-tenant", "text-user", "integer-user"],
)
def test_enqueue_rejects_a_malformed_tenant_or_user(postgres_url, tenant, user):
    engine = AppDatabase(url=postgres_url).engine
    with engine.begin() as conn:
        own = conn.execute(sa.insert(Tenant).returning(Tenant.id), {"name": "t"}).scalar_one()
    with pytest.raises((ValueError, TypeError), match="must be a UUID"):
        enqueue_enrichment(
            engine,
            tenant_id=own if tenant == "own" else tenant,
            prospect_ids=[GOOD, uuid.uuid4()],
            requested_by=user,
        )
    assert request_count(engine) == (0, 0)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    ids=st.lists(st.uuids(), min_size=1, max_size=50),
    as_text=st.booleans(),
    bulk=st.sampled_from([0, 0, 20_000]),
)
def test_enqueue_writes_one_pending_row_per_distinct_id(postgres_url, ids, as_text, bulk):
    engine = AppDatabase(url=postgres_url).engine
    reset(engine)
    tenant = seed(engine)[0]["own"]
    ids = ids + ids[:3] + [uuid.UUID(int=10**9 + i) for i in range(bulk)]
    distinct = list(dict.fromkeys(ids))
    user = uuid.uuid4()

    job_id = enqueue_enrichment(
        engine,
        tenant_id=str(tenant) if as_text else tenant,
        prospect_ids=[str(i).upper() if as_text else i for i in ids],
        requested_by=str(user) if as_text else user,
    )

    req = EnrichmentRequest.__table__
    rows = snapshot(engine, req, req.c.status == "pending")
    assert [r["prospect_id"] for r in rows] == distinct
    assert {(r["tenant_id"], r["job_id"], r["requested_by"]) for r in rows} == {
        (tenant, job_id, user)
    }
    if len(distinct) == 1:
        assert job_id is None
    else:
        (job,) = snapshot(engine, EnrichmentJob.__table__)
        assert (job["id"], job["total"], job["status"]) == (job_id, len(distinct), "pending")
