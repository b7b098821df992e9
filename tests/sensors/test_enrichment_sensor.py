"""The enrichment request sensor, evaluated with `build_sensor_context` on a real PostgreSQL
database (the web app's UUID schema): validation, coalescing, staleness, batching, run keys, the
cursor and the recovery of batches whose run requests were lost."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.sensors.enrichment import (
    build_enrichment_request_sensor,
    settings_from_env,
)
from tests.enrichment.fixtures import (
    add_prospect,
    add_prospects,
    add_request,
    add_tenant,
    requests_by_id,
    set_enriched,
    tick,
)

USER = uuid.uuid4()
UNKNOWN = uuid.uuid4()  # a well-formed prospect id that names no row


def test_batches_pending_requests_with_idempotent_run_keys(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    pids = add_prospects(engine, tenant, 7)
    job_id = enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=pids, requested_by=USER)
    sensor = build_enrichment_request_sensor(SensorSettings(batch_size=3))

    result = tick(sensor, instance, app_db)

    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == 3  # 3 + 3 + 1
    assert [r.run_key for r in result.run_requests] == keys
    assert len(set(keys)) == 3
    (add,) = result.dynamic_partitions_requests
    assert add.partitions_def_name == "enrichment_batches"
    assert sorted(add.partition_keys) == sorted(keys)
    rows = requests_by_id(engine)
    assert {r.status for r in rows.values()} == {"queued"}
    sizes = sorted(sum(1 for r in rows.values() if r.batch_key == k) for k in keys)
    assert sizes == [1, 3, 3]
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob).where(EnrichmentJob.id == job_id)).one()
    assert (job.status, job.total, job.processed) == ("running", 7, 0)

    # Same keys for the same batches: a batch whose run request got lost comes back with the
    # same run_key (Dagster drops it if the run exists) - and no new batch is made.
    again = tick(sensor, instance, app_db, result.cursor)
    assert sorted(r.run_key for r in again.run_requests) == sorted(keys)
    assert {r.status for r in requests_by_id(engine).values()} == {"queued"}


def test_coalesces_duplicate_requests_for_one_prospect(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    p1, p2 = add_prospects(engine, tenant, 2)
    ids = [add_request(engine, tenant, p1), add_request(engine, tenant, p2)]
    ids += [add_request(engine, tenant, p1, force=True), add_request(engine, tenant, p1)]
    sensor = build_enrichment_request_sensor(SensorSettings(batch_size=10))

    result = tick(sensor, instance, app_db)

    (run,) = result.run_requests
    assert run.tags["phronesis/batch_prospects"] == "2"
    rows = requests_by_id(engine)
    assert {rows[i].batch_key for i in ids} == {run.partition_key}
    assert {rows[i].status for i in ids} == {"queued"}


def test_never_queues_a_prospect_that_another_batch_is_enriching(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    busy, free = add_prospects(engine, tenant, 2)
    sensor = build_enrichment_request_sensor(SensorSettings(batch_size=10))
    add_request(engine, tenant, busy)
    first = tick(sensor, instance, app_db)
    (first_run,) = first.run_requests

    later_busy = add_request(engine, tenant, busy, force=True)
    later_free = add_request(engine, tenant, free)
    second = tick(sensor, instance, app_db, first.cursor)

    new_runs = [r for r in second.run_requests if r.run_key != first_run.run_key]
    assert len(new_runs) == 1
    rows = requests_by_id(engine)
    assert rows[later_busy].status == "pending"  # waits for the running batch
    assert rows[later_free].batch_key == new_runs[0].partition_key


def test_skips_fresh_prospects_unless_forced(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    fresh, forced, stale, failed = add_prospects(engine, tenant, 4)
    now = datetime.now(UTC)
    set_enriched(engine, fresh, now - timedelta(days=2))
    set_enriched(engine, forced, now - timedelta(days=2))
    set_enriched(engine, stale, now - timedelta(days=8))
    set_enriched(engine, failed, now - timedelta(days=1), status="failed")
    r_fresh = add_request(engine, tenant, fresh)
    r_forced = add_request(engine, tenant, forced, force=True)
    r_stale = add_request(engine, tenant, stale)
    r_failed = add_request(engine, tenant, failed)
    sensor = build_enrichment_request_sensor(SensorSettings(staleness=timedelta(days=7)))

    result = tick(sensor, instance, app_db)

    rows = requests_by_id(engine)
    assert rows[r_fresh].status == "done"
    assert "staleness window" in rows[r_fresh].reason
    assert rows[r_fresh].batch_key is None
    (run,) = result.run_requests
    assert {rows[i].batch_key for i in (r_forced, r_stale, r_failed)} == {run.partition_key}


def test_rejects_bad_requests_with_a_reason_and_keeps_going(app_db, instance):
    engine = app_db.engine
    tenant, other = add_tenant(engine), add_tenant(engine, "Other Co")
    good = add_prospect(engine, tenant)
    theirs = add_prospect(engine, other)
    nameless = add_prospect(engine, tenant, name=" ")  # NOT NULL in the web app
    no_company = add_prospect(engine, tenant, company="  ")
    r_unknown = add_request(engine, tenant, UNKNOWN)
    r_other = add_request(engine, tenant, theirs)
    r_nameless = add_request(engine, tenant, nameless)
    r_no_company = add_request(engine, tenant, no_company)
    r_good = add_request(engine, tenant, good)
    job_id = None
    with engine.begin() as conn:
        job_id = conn.execute(
            sa.insert(EnrichmentJob).returning(EnrichmentJob.id),
            {"tenant_id": tenant, "total": 2, "errors": []},
        ).scalar_one()
        conn.execute(
            sa.update(EnrichmentRequest)
            .where(EnrichmentRequest.id.in_([r_unknown, r_good]))
            .values(job_id=job_id)
        )
    sensor = build_enrichment_request_sensor()

    result = tick(sensor, instance, app_db)

    rows = requests_by_id(engine)
    assert rows[r_unknown].status == "rejected"
    assert "does not exist" in rows[r_unknown].reason
    assert rows[r_other].status == "rejected"
    assert "another tenant" in rows[r_other].reason
    assert "no name" in rows[r_nameless].reason
    assert "no company" in rows[r_no_company].reason
    assert rows[r_good].status == "queued"
    assert len(result.run_requests) == 1
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob).where(EnrichmentJob.id == job_id)).one()
    assert (job.processed, job.failed, job.succeeded) == (1, 1, 0)
    assert job.errors == [
        {
            "prospect_id": str(UNKNOWN),
            "source": "request",
            "error": rows[r_unknown].reason,
            "at": job.errors[0]["at"],
        }
    ]


def test_caps_requests_per_tick_and_moves_the_cursor(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    pids = add_prospects(engine, tenant, 5)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=pids)
    sensor = build_enrichment_request_sensor(SensorSettings(batch_size=10, max_requests_per_tick=3))

    first = tick(sensor, instance, app_db, cursor="not json")  # a broken cursor starts over
    assert json.loads(first.cursor)["after_id"] > 0
    assert sum(1 for r in requests_by_id(engine).values() if r.status == "queued") == 3

    second = tick(sensor, instance, app_db, first.cursor)
    assert json.loads(second.cursor)["after_id"] == 0  # reached the end: next tick wraps
    assert {r.status for r in requests_by_id(engine).values()} == {"queued"}
    assert len({r.batch_key for r in requests_by_id(engine).values()}) == 2


def test_nothing_pending_says_why(app_db, instance):
    result = tick(build_enrichment_request_sensor(), instance, app_db)
    assert not result.run_requests
    assert "No pending enrichment requests" in result.skip_reason.skip_message


def test_only_waiting_requests_give_a_skip_reason_with_counts(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    p = add_prospect(engine, tenant)
    add_request(engine, tenant, p, status="running", batch_key="batch-x")
    add_request(engine, tenant, p)
    add_request(engine, tenant, UNKNOWN)

    result = tick(build_enrichment_request_sensor(), instance, app_db)

    assert not result.run_requests
    assert "1 rejected" in result.skip_reason.skip_message
    assert "1 waiting" in result.skip_reason.skip_message


def test_settings_from_env_reject_malformed_values():
    assert settings_from_env({}).batch_size == 100
    assert settings_from_env({"PHRONESIS_ENRICHMENT_STALENESS_DAYS": "1.5"}).staleness == (
        timedelta(days=1.5)
    )
    with pytest.raises(ValueError, match="PHRONESIS_ENRICHMENT_BATCH_SIZE"):
        settings_from_env({"PHRONESIS_ENRICHMENT_BATCH_SIZE": "many"})
    with pytest.raises(ValueError, match="batch_size"):
        settings_from_env({"PHRONESIS_ENRICHMENT_BATCH_SIZE": "0"})
