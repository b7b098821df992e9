"""Faults: the app database drops every connection in the middle of a batch run. On PostgreSQL,
while a batch is being enriched (providers slowed down so the cut lands mid-batch), an admin
connection terminates every backend of the test database - the run's pooled connections and
the rate limiter's. The run then either survives (pre-ping, step retry) or fails and closes its
batch; re-executing the batch, as a run retry would, finishes it. Afterwards no request is lost,
no prospect is stuck `in_progress`, and no provider was called again for a source that had
completed before the cut."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.local_runner import execute_batch
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.conftest import POSTGRES_ADMIN_URL
from tests.enrichment.harness import enrichment_defs
from tests.reliability.conftest import (
    assert_enrichment_invariants,
    completed_pairs,
    repeated_calls,
    seed_prospects,
)

pytestmark = pytest.mark.postgres

PROSPECTS = 16
WORKERS = 2  # per provider, so the batch takes a few seconds at the emulator's latency
LATENCY_MS = 120


def terminate_backends(database: str) -> int:
    """Kill every connection to `database` (as a DBA or a failover would); how many."""
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": database},
                ).all()
            )
    finally:
        admin.dispose()


def test_connections_dropped_mid_run_lose_nothing(pg_app_db, emulator):
    emulator.configure(latency_ms=LATENCY_MS)
    engine = pg_app_db.engine
    tenant, ids = seed_prospects(pg_app_db, PROSPECTS, public_share=0.0)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    defs = enrichment_defs(pg_app_db, emulator.url)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": pg_app_db})
        sensor = build_enrichment_request_sensor(SensorSettings(batch_size=PROSPECTS))
        (request,) = sensor(context).run_requests
    batch = request.partition_key

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = execute_batch(defs, batch, max_workers_per_provider=WORKERS)
        except Exception as exc:  # noqa: BLE001 - the test reports whatever escaped
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(completed_pairs(engine)) < 6:
        time.sleep(0.05)
    done_at_cut = completed_pairs(engine)
    keys_at_cut = emulator.stats()["keys"]
    killed = terminate_backends(sa.make_url(pg_app_db.url).database)
    worker.join(120)
    assert not worker.is_alive(), "the run hung after its connections were dropped"

    assert killed >= 1
    assert 6 <= len(done_at_cut) < PROSPECTS * 4, "the cut did not land mid-batch"
    assert "error" not in outcome, f"the run raised instead of failing: {outcome['error']!r}"
    first = outcome["result"]
    print(f"run after the cut: success={first.success}")
    if not first.success:
        # The run failed and closed its batch; re-executing it (a run retry) finishes it.
        assert execute_batch(defs, batch, max_workers_per_provider=WORKERS).success
    keys_after = emulator.stats()["keys"]

    assert_enrichment_invariants(engine, ids)
    assert repeated_calls(engine, done_at_cut, keys_at_cut, keys_after) == []
    with engine.connect() as conn:
        statuses = set(conn.execute(sa.text("SELECT enrichment_status FROM prospects")).scalars())
        # The providers never failed: a lost database connection must not be blamed on them
        # (the rate limiter rides out its own dropped connections).
        failed_sources = conn.execute(
            sa.text("SELECT source, error FROM enrichment_source_results WHERE status = 'failed'")
        ).all()
    assert failed_sources == []
    assert statuses == {"complete"}
