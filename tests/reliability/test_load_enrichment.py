"""Load (slow): 10,000 pending requests through the full enrichment, on PostgreSQL and the
emulator with the clients' own rate limits: the sensor cuts them into batches over its capped
ticks, each batch runs in its own process (four at a time, as the run queue allows), and in
the end every request is closed, every prospect enriched, each source called for it once, and
the emulator never answered 429. Runs only with `PHRONESIS_RUN_SLOW=1`."""

from __future__ import annotations

import time
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentSourceResult, Prospect
from phronesis_dagster.enrichment.constants import ALL_SOURCES
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.reliability.conftest import assert_enrichment_invariants, seed_prospects
from tests.reliability.test_scale_out import CLIENT_RATES, start_run, status_codes, wait_all

PENDING = 10_000
CONCURRENT_RUNS = 4


def all_batches(app_db) -> list[str]:
    """Tick the request sensor until it asks for no new batch (the default 5,000 per tick)."""
    keys: list[str] = []
    cursor = None
    with dg.instance_for_test() as instance:
        for _ in range(10):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"app_db": app_db}
            )
            result = build_enrichment_request_sensor(SensorSettings())(context)
            cursor = result.cursor
            new = [
                r.partition_key for r in result.run_requests or [] if r.partition_key not in keys
            ]
            if not new:
                break
            keys += new
    return keys


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(3600)
def test_ten_thousand_requests_through_full_enrichment(pg_app_db, emulator, tmp_path, capsys):
    emulator.configure(rate_limit_per_second=CLIENT_RATES)
    tenant, ids = seed_prospects(pg_app_db, PENDING, public_share=0.05)
    enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    batches = all_batches(pg_app_db)
    assert len(batches) == PENDING // 100

    started = time.perf_counter()
    todo = list(batches)
    while todo:
        chunk, todo = todo[:CONCURRENT_RUNS], todo[CONCURRENT_RUNS:]
        logs = [tmp_path / f"{b}.log" for b in chunk]
        wait_all(
            [
                start_run(pg_app_db, emulator.url, b, log)
                for b, log in zip(chunk, logs, strict=True)
            ],
            logs,
        )
    seconds = time.perf_counter() - started
    stats = emulator.stats()
    with capsys.disabled():
        print(
            f"\n{PENDING:,} prospects in {len(batches)} runs: {seconds:.0f} s; {stats['requests']}"
        )

    assert not {p: c["429"] for p, c in status_codes(stats).items() if c.get("429")}
    assert_enrichment_invariants(pg_app_db.engine, ids)
    res = EnrichmentSourceResult.__table__
    with pg_app_db.connect() as conn:
        statuses = Counter(conn.execute(sa.select(Prospect.enrichment_status)).scalars())
        pairs = conn.execute(sa.select(sa.func.count()).select_from(res)).scalar_one()
    assert statuses == {"complete": PENDING}
    assert pairs == PENDING * len(ALL_SOURCES)
