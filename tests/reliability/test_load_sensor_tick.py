"""Load: one tick of a request sensor (all lanes, and the daemon's bulk-lane
`enrichment_request_sensor`) over 10,000 pending requests on PostgreSQL (no
provider is called) batches every one of them, each prospect in exactly one batch, with one
dynamic partition and one run request per batch. The tick's time is printed, not asserted
(Dagster's budget for a tick is 60 s; `bench/enrichment.py` measures it on its own)."""

from __future__ import annotations

import json
import math
import time
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest, Prospect
from phronesis_dagster.enrichment.requests import (
    ALL_LANES,
    BULK,
    SensorSettings,
    enqueue_enrichment,
)
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.reliability.conftest import seed_prospects

PENDING = 10_000
BATCH_SIZE = 100


@pytest.mark.postgres
@pytest.mark.parametrize("lane", [ALL_LANES, BULK])
def test_one_tick_batches_ten_thousand_pending_requests(pg_app_db, capsys, lane):
    tenant, ids = seed_prospects(pg_app_db, PENDING, public_share=0.1)
    job_id = enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    sensor = build_enrichment_request_sensor(
        SensorSettings(batch_size=BATCH_SIZE, max_requests_per_tick=PENDING), lane=lane
    )

    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": pg_app_db})
        started = time.perf_counter()
        result = sensor(context)
        seconds = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nsensor tick (lane: {lane}) over {PENDING:,} pending requests (PostgreSQL): "
            f"{seconds:.2f} s"
        )

    assert isinstance(result, dg.SensorResult)
    keys = [r.partition_key for r in result.run_requests]
    with pg_app_db.connect() as conn:
        public = dict(conn.execute(sa.select(Prospect.id, Prospect.is_public_company)).all())
    n_public = sum(public[i] for i in ids)
    # Public-company prospects (EDGAR, 10 requests/s) get batches of their own.
    expected = math.ceil(n_public / BATCH_SIZE) + math.ceil((PENDING - n_public) / BATCH_SIZE)
    assert len(keys) == expected
    assert [r.run_key for r in result.run_requests] == keys
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == sorted(keys)
    with pg_app_db.connect() as conn:
        requests = list(conn.execute(sa.select(EnrichmentRequest.__table__)))
        job = conn.execute(sa.select(EnrichmentJob).where(EnrichmentJob.id == job_id)).one()
    assert {r.status for r in requests} == {"queued"}
    assert sorted(r.prospect_id for r in requests) == sorted(ids)  # each prospect once
    per_batch = Counter(r.batch_key for r in requests)
    assert set(per_batch) == set(keys)
    assert max(per_batch.values()) == BATCH_SIZE
    sizes = {r.partition_key: int(r.tags["phronesis/batch_prospects"]) for r in result.run_requests}
    assert sizes == dict(per_batch)
    kinds = {(r.batch_key, public[r.prospect_id]) for r in requests}
    assert len(kinds) == len(keys)  # no batch mixes public and private companies
    assert job.total == PENDING
    # The tick read exactly its cap, so the cursor moves past the last request it saw.
    assert json.loads(result.cursor)["after_id"] == max(r.id for r in requests)
