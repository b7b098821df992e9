"""`phronesis_request_enrichment`, the web app's one-call "Enrich" (migrations 0004, 0005), on a
real PostgreSQL database: a fresh prospect is answered `done` at once and the request sensor
launches nothing for it; anything else goes `pending` and becomes a run; a bad request (unknown
prospect, another tenant's, NULLs) raises a named error and writes nothing, also under the web
app's row-level security; the function's default window is the sensor's."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.enrichment.requests import DEFAULT_STALENESS, INTERACTIVE, LANE_TAG
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import (
    build_enrichment_request_sensor,
    settings_from_env,
)
from tests.db.test_rls import create_web_role, drop_role
from tests.enrichment.fixtures import (
    add_prospect,
    add_request,
    add_tenant,
    requests_by_id,
    set_enriched,
)

USER = uuid.uuid4()
CALL = sa.text(
    "SELECT * FROM phronesis_request_enrichment("
    "p_prospect_id => :prospect_id, p_tenant_id => :tenant_id, p_requested_by => :requested_by, "
    "p_force => :force)"
)
CALL_WITH_STALENESS = sa.text(
    "SELECT * FROM phronesis_request_enrichment("
    ":prospect_id, :tenant_id, :requested_by, :force, :staleness)"
)


def request(
    conn: sa.Connection,
    prospect_id: Any,
    tenant_id: Any,
    *,
    force: Any = False,
    staleness: Any = ...,
) -> Mapping[str, Any]:
    """What the web app runs on "Enrich": one call, one request row back."""
    params = {
        "prospect_id": prospect_id,
        "tenant_id": tenant_id,
        "requested_by": USER,
        "force": force,
    }
    if staleness is ...:
        return conn.execute(CALL, params).mappings().one()
    return conn.execute(CALL_WITH_STALENESS, {**params, "staleness": staleness}).mappings().one()


def call(engine: sa.Engine, prospect_id: Any, tenant_id: Any, **kw: Any) -> Mapping[str, Any]:
    with engine.begin() as conn:
        return request(conn, prospect_id, tenant_id, **kw)


def sqlstate(error: pytest.ExceptionInfo[sa.exc.DBAPIError]) -> str | None:
    return getattr(error.value.orig, "sqlstate", None)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as inst:
        yield inst


def tick(app_db: AppDatabase, instance: dg.DagsterInstance) -> dg.SensorResult:
    """One tick of the request sensor with the settings it runs with by default."""
    sensor = build_enrichment_request_sensor(settings_from_env({}))
    context = dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


# (a) fresh -----------------------------------------------------------------------------------


def test_a_fresh_prospect_is_done_at_once_and_the_sensor_launches_nothing(
    app_db: AppDatabase, instance: dg.DagsterInstance
) -> None:
    engine = app_db.engine
    tenant = add_tenant(engine)
    via_function, via_insert = add_prospect(engine, tenant), add_prospect(engine, tenant)
    # Microseconds: both reasons cut the time to the second the same way.
    at = datetime.now(UTC).replace(microsecond=654321) - timedelta(days=2)
    set_enriched(engine, via_function, at)
    set_enriched(engine, via_insert, at)

    row = call(engine, via_function, tenant)

    assert row["status"] == "done"
    assert row["prospect_id"] == via_function
    assert (row["tenant_id"], row["requested_by"], row["force"]) == (tenant, USER, False)
    assert (row["batch_key"], row["job_id"]) == (None, None)
    assert row["reason"] == (
        f"already enriched at {at.isoformat(timespec='seconds')}, within the 7-day staleness "
        "window; request with force to re-enrich"
    )
    # The cached result in the same round trip, as the contract's join shows it.
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE prospects SET ai_summary = 'Cached summary' WHERE id = :p"),
            {"p": via_function},
        )
        cached = conn.execute(
            sa.text(
                "SELECT r.status, p.ai_summary, p.last_enriched_at "
                "FROM phronesis_request_enrichment(p_prospect_id => :p, p_tenant_id => :t) AS r "
                "JOIN prospects p ON p.id = r.prospect_id"
            ),
            {"p": via_function, "t": tenant},
        ).one()
    assert (cached.status, cached.ai_summary, cached.last_enriched_at) == (
        "done",
        "Cached summary",
        at,
    )
    # The sensor answers a bare INSERT for the same kind of prospect with the same words.
    bare = add_request(engine, tenant, via_insert)
    result = tick(app_db, instance)
    assert not result.run_requests
    rows = requests_by_id(engine)
    assert rows[bare].status == "done"
    assert rows[bare].reason.replace(str(via_insert), "") == row["reason"].replace(
        str(via_function), ""
    )
    # The sensor left the function's row as it was.
    assert rows[row["id"]].status == "done"
    assert rows[row["id"]].batch_key is None
    assert rows[row["id"]].updated_at == row["updated_at"]
    assert len(rows) == 3


# (b), (c) pending ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "force"),
    [
        ("never enriched", False),
        ("stale", False),
        ("failed recently", False),
        ("fresh, forced", True),
        ("stale, forced", True),
        ("fresh, but a batch of it is running", False),
        ("fresh, no company", False),
    ],
)
def test_anything_not_fresh_is_pending_and_the_sensor_acts_on_it(
    app_db: AppDatabase, instance: dg.DagsterInstance, case: str, force: bool
) -> None:
    engine = app_db.engine
    tenant = add_tenant(engine)
    now = datetime.now(UTC)
    pid = add_prospect(engine, tenant, company=" " if "no company" in case else "Northwind")
    if case.startswith("stale"):
        set_enriched(engine, pid, now - DEFAULT_STALENESS - timedelta(hours=1))
    elif case.startswith("fresh"):
        set_enriched(engine, pid, now - timedelta(hours=1))
    elif case == "failed recently":
        set_enriched(engine, pid, now - timedelta(hours=1), status="failed")
    running = None
    if "running" in case:
        running = add_request(engine, tenant, pid, status="running", batch_key="batch-x")

    row = call(engine, pid, tenant, force=force)

    assert (row["status"], row["reason"], row["force"]) == ("pending", None, force)
    result = tick(app_db, instance)
    after = requests_by_id(engine)[row["id"]]
    if running is not None:
        # One enrichment per prospect: it waits for the running batch, then is answered fresh.
        assert (after.status, result.run_requests) == ("pending", [])
    elif "no company" in case:
        assert (after.status, result.run_requests) == ("rejected", [])
        assert "no company" in after.reason
    else:
        (run,) = result.run_requests
        assert (after.status, after.batch_key) == ("queued", run.partition_key)
        assert run.tags[LANE_TAG] == INTERACTIVE  # a rep's click: the fast lane


def test_force_is_pending_even_when_fresh_with_an_explicit_window(app_db: AppDatabase) -> None:
    engine = app_db.engine
    tenant = add_tenant(engine)
    pid = add_prospect(engine, tenant)
    set_enriched(engine, pid, datetime.now(UTC) - timedelta(days=2))

    assert call(engine, pid, tenant, force=True, staleness=timedelta(days=30))["status"] == (
        "pending"
    )
    assert call(engine, pid, tenant, staleness=timedelta(days=1))["status"] == "pending"
    done = call(engine, pid, tenant, staleness=timedelta(days=3))
    assert done["status"] == "done"
    assert "within the 3-day staleness window" in done["reason"]


# (e) one window ------------------------------------------------------------------------------


def test_the_functions_default_window_is_the_sensors(postgres_url: str) -> None:
    with engine_for(postgres_url).connect() as conn:
        arguments = conn.execute(
            sa.text(
                "SELECT pg_get_function_arguments(p.oid) FROM pg_proc p "
                "WHERE p.proname = 'phronesis_request_enrichment'"
            )
        ).scalar_one()
        match = re.search(r"p_staleness interval DEFAULT (.+)$", arguments)
        assert match, arguments
        # The default expression, evaluated by PostgreSQL (a constant from the catalog).
        default = conn.execute(sa.text(f"SELECT {match.group(1)}")).scalar_one()
    assert settings_from_env({}).staleness == DEFAULT_STALENESS
    assert default == DEFAULT_STALENESS, (
        "phronesis_request_enrichment's default p_staleness differs from the sensor's "
        "DEFAULT_STALENESS: change both, the function's in a new migration"
    )


# (d), (f) refused --------------------------------------------------------------------------


@pytest.fixture
def web_role(postgres_url: str) -> Iterator[str]:
    """A LOGIN role like the web app's: no superuser, no BYPASSRLS, and only the privileges the
    contract asks for (docs/web_app_contract.md); dropped afterwards."""
    role = create_web_role(
        postgres_url, ("SELECT ON prospects", "SELECT, INSERT ON enrichment_requests")
    )
    try:
        yield role
    finally:
        drop_role(postgres_url, role)


def as_web_app(
    url: str, role: str, session_tenant: uuid.UUID | None, prospect_id: Any, tenant_id: Any
) -> Mapping[str, Any]:
    """The call in one transaction of `role` with the web app's per-request tenant setting."""
    role_url = sa.make_url(url).set(username=role, password=None)
    engine = sa.create_engine(role_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == role
        if session_tenant is not None:
            conn.execute(
                sa.text("SELECT set_config('app.current_tenant_id', :t, true)"),
                {"t": str(session_tenant)},
            )
        return request(conn, prospect_id, tenant_id)


def test_under_rls_a_tenant_can_ask_only_for_its_own_prospects(
    app_db: AppDatabase, postgres_url: str, web_role: str
) -> None:
    engine = app_db.engine
    acme, globex = add_tenant(engine, "Acme"), add_tenant(engine, "Globex")
    fresh, stale = add_prospect(engine, acme), add_prospect(engine, acme)
    theirs = add_prospect(engine, globex)
    set_enriched(engine, fresh, datetime.now(UTC) - timedelta(days=1))

    # Its own prospects: answered as for the pipeline's role.
    assert as_web_app(postgres_url, web_role, acme, fresh, acme)["status"] == "done"
    assert as_web_app(postgres_url, web_role, acme, stale, acme)["status"] == "pending"
    assert len(requests_by_id(engine)) == 2

    refused = [
        # Globex's prospect under Acme's id: invisible under RLS, so "not found".
        (acme, theirs, acme, "P0002", f"prospect {theirs} not found in tenant {acme}"),
        # Globex's prospect and id from an Acme session.
        (acme, theirs, globex, "42501", f"tenant {globex} is not this session's tenant"),
        # Acme's own prospect without a tenant setting: RLS shows nothing.
        (None, fresh, acme, "P0002", f"prospect {fresh} not found in tenant {acme}"),
    ]
    for session, prospect_id, tenant_id, state, message in refused:
        with pytest.raises(sa.exc.DBAPIError) as error:
            as_web_app(postgres_url, web_role, session, prospect_id, tenant_id)
        assert sqlstate(error) == state
        assert message in str(error.value.orig)
        assert "Globex" not in str(error.value.orig)
    assert len(requests_by_id(engine)) == 2  # nothing written


def test_the_session_tenant_check_holds_for_a_role_that_bypasses_rls(
    app_db: AppDatabase,
) -> None:
    # The pipeline's role (here a superuser) sees every tenant; with the web app's setting it
    # still cannot ask on another tenant's behalf (Supabase's service role bypasses RLS too).
    engine = app_db.engine
    acme, globex = add_tenant(engine, "Acme"), add_tenant(engine, "Globex")
    theirs = add_prospect(engine, globex)
    with pytest.raises(sa.exc.DBAPIError) as error, engine.begin() as conn:
        conn.execute(sa.text(f"SELECT set_config('app.current_tenant_id', '{acme}', true)"))
        request(conn, theirs, globex)
    assert sqlstate(error) == "42501"
    with pytest.raises(sa.exc.DBAPIError) as error:
        call(engine, theirs, acme)  # no setting, but the prospect is Globex's
    assert sqlstate(error) == "P0002"
    assert requests_by_id(engine) == {}


@pytest.mark.parametrize(
    ("prospect", "tenant", "kw", "state", "message"),
    [
        ("unknown", "acme", {}, "P0002", "not found in tenant"),
        (None, "acme", {}, "22004", "must not be NULL"),
        ("known", None, {}, "22004", "must not be NULL"),
        ("known", "acme", {"force": None}, "22004", "must not be NULL"),
        ("known", "acme", {"staleness": None}, "22023", "staleness must be an interval >= 0"),
        ("known", "acme", {"staleness": timedelta(days=-1)}, "22023", "got -1 days"),
        ("not-a-uuid", "acme", {}, "22P02", "invalid input syntax for type uuid"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(
    app_db: AppDatabase,
    prospect: str | None,
    tenant: str | None,
    kw: dict[str, Any],
    state: str,
    message: str,
) -> None:
    engine = app_db.engine
    acme = add_tenant(engine)
    known = add_prospect(engine, acme)
    unknown = uuid.uuid4()
    prospect_id = {"known": known, "unknown": unknown, None: None}.get(prospect, prospect)

    with pytest.raises(sa.exc.DBAPIError) as error:
        call(engine, prospect_id, acme if tenant else None, **kw)

    assert sqlstate(error) == state
    assert message in str(error.value.orig)
    if prospect == "unknown":
        assert str(unknown) in str(error.value.orig)
    assert requests_by_id(engine) == {}


# migrations ----------------------------------------------------------------------------------


def function_definition(url: str) -> tuple[str, str]:
    """The function's body and its arguments with their defaults, as the catalog holds them."""
    query = sa.text(
        "SELECT p.prosrc, pg_get_function_arguments(p.oid) FROM pg_proc p "
        "WHERE p.proname = 'phronesis_request_enrichment'"
    )
    with engine_for(url).connect() as conn:
        body, arguments = conn.execute(query).one()
    return body, arguments


def test_downgrading_0005_restores_0004s_function(empty_postgres_url: str) -> None:
    url = empty_postgres_url
    migrate.upgrade(url, "0004_job_progress")
    in_0004 = function_definition(url)
    migrate.upgrade(url)
    in_0005 = function_definition(url)
    assert in_0005 != in_0004
    assert in_0005[1] == in_0004[1]  # same arguments and defaults

    migrate.downgrade(url, "0004_job_progress")
    assert function_definition(url) == in_0004
    engine = engine_for(url)
    tenant = add_tenant(engine)
    # 0004's behaviour: an unknown prospect is queued for the sensor to reject.
    assert call(engine, uuid.uuid4(), tenant)["status"] == "pending"

    migrate.upgrade(url)
    assert function_definition(url) == in_0005
    with pytest.raises(sa.exc.DBAPIError) as error:
        call(engine, uuid.uuid4(), tenant)
    assert sqlstate(error) == "P0002"
