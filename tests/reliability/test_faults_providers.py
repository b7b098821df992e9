"""Faults: provider storms. Every provider answers 20% 5xx throughout, and 429s arrive in
bursts (every provider 429s nearly every call for a moment, then not at all). Afterwards no
request is lost, no prospect is stuck `in_progress`, and re-executing every batch (what a run
retry or "re-execute" from the UI does) calls no provider again for a source that completed.

Refusals: Exa out of credits (its 402) stops Exa for every batch at once, each prospect's web
source `circuit_open` with the reason, while the other providers enrich as usual."""

from __future__ import annotations

import threading

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentSourceResult, ProviderCircuitState
from phronesis_dagster.emulator.config import PROVIDERS
from phronesis_dagster.enrichment.constants import CIRCUIT_OPEN, SKIPPED, SUCCESS_STATUSES
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.local_runner import execute_batch, run_pending_enrichment
from phronesis_dagster.resources.exa import ExaResource
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


@pytest.mark.postgres
def test_exa_out_of_credits_skips_every_web_source_with_the_reason_the_rest_succeeds(
    pg_app_db, emulator
):
    # Exa answers its 402 NO_MORE_CREDITS to every request, as until someone tops up.
    emulator.configure(faults={"exa": {"scenario": "out_of_credits"}})
    tenant, ids = seed_prospects(pg_app_db, 30, public_share=0.2)
    enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    defs = enrichment_defs(
        pg_app_db,
        emulator.url,
        sensors=[build_enrichment_request_sensor(SensorSettings(batch_size=10))],
    )

    with dg.instance_for_test() as instance:
        summary = run_pending_enrichment(instance, defs)

    assert len(summary.runs) >= 3 and all(ok for _, _, ok in summary.runs)
    res = EnrichmentSourceResult.__table__
    with pg_app_db.connect() as conn:
        rows = conn.execute(
            sa.select(res.c.prospect_id, res.c.source, res.c.status, res.c.error).where(
                res.c.prospect_id.in_(ids)
            )
        ).all()
        breaker = conn.execute(
            sa.select(ProviderCircuitState.__table__).where(ProviderCircuitState.provider == "exa")
        ).one()
    web = {r.prospect_id: r for r in rows if r.source == ExaResource.SOURCE}
    assert set(web) == set(ids)
    assert {r.status for r in web.values()} == {CIRCUIT_OPEN}
    assert all("out of credits" in r.error for r in web.values()), next(iter(web.values())).error
    others = [(r.source, r.status, r.error) for r in rows if r.source != ExaResource.SOURCE]
    assert others and all(s in SUCCESS_STATUSES | {SKIPPED} for _, s, _ in others), [
        o for o in others if o[1] not in SUCCESS_STATUSES | {SKIPPED}
    ][:5]
    # Exa was asked only by the calls already in flight when its first 402 came back (at most
    # one per thread of the first batch's Exa pool, `pool_width` <= its 10 requests/s); every
    # later call, the later batches' included, was skipped by the held breaker.
    codes = {
        code: n
        for counts in emulator.stats()["responses"]["exa"].values()
        for code, n in counts.items()
    }
    assert set(codes) == {"402"} and 1 <= codes["402"] <= ExaResource.DEFAULT_RPS, codes
    # Held, not tripped: no outage counted, the credits reason is what skipped calls report.
    assert breaker.state == "open" and breaker.open_until is not None
    assert "out of credits" in breaker.last_error and breaker.window_failures == 0
    assert_enrichment_invariants(pg_app_db.engine, ids)
