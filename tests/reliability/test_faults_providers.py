"""Faults: provider storms. Every provider answers 20% 5xx throughout, and 429s arrive in
bursts (every provider 429s nearly every call for a moment, then not at all). Afterwards no
request is lost, no prospect is stuck `in_progress`, and re-executing every batch (what a run
retry or "re-execute" from the UI does) calls no provider again for a source that completed."""

from __future__ import annotations

import threading

import dagster as dg
import pytest

from phronesis_dagster.emulator.config import PROVIDERS
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.local_runner import execute_batch, run_pending_enrichment
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.enrichment.harness import enrichment_defs
from tests.reliability.conftest import (
    assert_enrichment_invariants,
    completed_pairs,
    repeated_calls,
    seed_prospects,
)

STORM = {"error_rate": 0.2, "retry_after_seconds": 0}
BURST_SECONDS, CALM_SECONDS = 0.3, 0.7


class Bursts:
    """Toggles `storm_429_rate` between 0.9 and 0 for every provider until stopped."""

    def __init__(self, emulator) -> None:
        self.emulator = emulator
        self.stop = threading.Event()
        self.bursts = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _set(self, rate: float) -> None:
        self.emulator.configure(faults={p: {"storm_429_rate": rate} for p in PROVIDERS})

    def _run(self) -> None:
        while not self.stop.is_set():
            self._set(0.9)
            self.bursts += 1
            self.stop.wait(BURST_SECONDS)
            self._set(0.0)
            self.stop.wait(CALM_SECONDS)

    def __enter__(self) -> Bursts:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self._set(0.0)


@pytest.mark.postgres
def test_storms_lose_nothing_and_never_repeat_a_completed_source(pg_app_db, emulator):
    emulator.configure(faults={p: STORM for p in PROVIDERS})
    tenant, ids = seed_prospects(pg_app_db, 12, public_share=0.3)
    enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    defs = enrichment_defs(
        pg_app_db,
        emulator.url,
        sensors=[build_enrichment_request_sensor(SensorSettings(batch_size=6))],
    )

    with dg.instance_for_test() as instance, Bursts(emulator) as bursts:
        summary = run_pending_enrichment(instance, defs)

    # 12 prospects in batches of 6; public-company prospects get batches of their own.
    assert 2 <= len(summary.runs) <= 3
    codes = [
        code
        for routes in emulator.stats()["responses"].values()
        for counts in routes.values()
        for code, n in counts.items()
        for _ in range(n)
    ]
    assert bursts.bursts >= 2 and "429" in codes and any(c.startswith("5") for c in codes), (
        "the storm did not happen: the test proves nothing"
    )
    assert_enrichment_invariants(pg_app_db.engine, ids)

    # Re-execute every batch with the providers healthy: completed sources are not called.
    emulator.configure(reset_faults=True)
    done = completed_pairs(pg_app_db.engine)
    before = emulator.stats()["keys"]
    for batch in summary.batches:
        assert execute_batch(defs, batch).success
    after = emulator.stats()["keys"]

    assert repeated_calls(pg_app_db.engine, done, before, after) == []
    assert_enrichment_invariants(pg_app_db.engine, ids)
