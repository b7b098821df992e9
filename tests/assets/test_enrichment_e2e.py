"""End to end through the provider emulator: the request sensor, the batch runs and the real
provider resources. With injected faults and 429 storms every prospect ends with a per-source
status that matches what happened and no request is lost; a batch SIGKILLed mid-way and re-run
does not call a provider again for a source that had completed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import (
    EnrichmentJob,
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
)
from phronesis_dagster.enrichment.constants import ALL_SOURCES, DATA_COLUMN, FINAL_STATUSES
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.enrichment.status import overall_status
from phronesis_dagster.local_runner import run_pending_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import (
    build_enrichment_request_sensor,
    enrichment_run_canceled_sensor,
    enrichment_run_failure_sensor,
)
from tests.enrichment.fixtures import add_prospect, add_tenant
from tests.enrichment.harness import enrichment_defs

REPO = Path(__file__).resolve().parents[2]
FAULTS = {
    "error_rate": 0.2,
    "storm_429_rate": 0.2,
    "malformed_rate": 0.05,
    "retry_after_seconds": 0,
}
# The `emulator` fixture runs seed 0; public prospects are its Form 4 insiders only then.
EMULATOR_SEED = 0
PROVIDERS = ("contactout", "exa", "edgar", "apollo", "anthropic")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def app_db(postgres_url, tmp_path, monkeypatch) -> AppDatabase:
    monkeypatch.setenv("PHRONESIS_DATA_DIR", str(tmp_path))
    return AppDatabase(url=postgres_url)


def seed_mixed_prospects(app_db: AppDatabase, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """`n` prospects: public and private companies, with email, LinkedIn only, or neither."""
    import random

    from phronesis_dagster.demo_data import insert_demo_prospects

    tenant = add_tenant(app_db.engine)
    with app_db.begin() as conn:
        ids = insert_demo_prospects(
            conn,
            tenant_id=tenant,
            count=n,
            rng=random.Random(7),
            public_company_share=0.4,
            emulator_seed=EMULATOR_SEED,
        )
    return tenant, ids


def sensor_defs(app_db, emulator, batch_size):
    sensors = [
        build_enrichment_request_sensor(SensorSettings(batch_size=batch_size)),
        enrichment_run_failure_sensor,
        enrichment_run_canceled_sensor,
    ]
    return enrichment_defs(app_db, emulator.url, sensors=sensors)


def test_faulty_providers_every_prospect_gets_the_right_per_source_status(
    app_db, emulator, instance
):
    # Not SEC's 429 storm: over its limit SEC blocks the IP for 10 minutes (every EDGAR call
    # circuit_open, tests/resources/test_edgar_block.py), not a transient fault to retry.
    emulator.configure(
        faults={p: {**FAULTS, "storm_429_rate": 0.0} if p == "edgar" else FAULTS for p in PROVIDERS}
    )
    tenant, ids = seed_mixed_prospects(app_db, 20)
    job_id = enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)

    summary = run_pending_enrichment(instance, sensor_defs(app_db, emulator, 10))

    with app_db.connect() as conn:
        public = conn.execute(
            sa.select(sa.func.count()).where(Prospect.is_public_company.is_(True))
        ).scalar_one()
    # Public-company prospects are batched apart: ceil(public / 10) + ceil(private / 10) runs.
    assert len(summary.runs) == -(-public // 10) + -(-(20 - public) // 10)
    assert all(ok for _, _, ok in summary.runs)
    stats = emulator.stats()
    injected = sum(
        n
        for routes in stats["responses"].values()
        for codes in routes.values()
        for code, n in codes.items()
        if code != "200" and code != "404"
    )
    assert injected > 0, "the emulator injected no faults: the test proves nothing"
    with app_db.connect() as conn:
        prospects = {r.id: r for r in conn.execute(sa.select(Prospect.__table__))}
        results = {
            (r.prospect_id, r.source): r
            for r in conn.execute(sa.select(EnrichmentSourceResult.__table__))
        }
        requests = list(conn.execute(sa.select(EnrichmentRequest.__table__)))
        job = conn.execute(sa.select(EnrichmentJob).where(EnrichmentJob.id == job_id)).one()

    for pid in ids:
        p = prospects[pid]
        record = p.enrichment_source_status
        assert set(record) == set(ALL_SOURCES), pid
        for source in ALL_SOURCES:
            stored = results[(pid, source)]
            assert record[source]["status"] == stored.status
            if stored.status in ("failed", "circuit_open"):
                assert record[source]["error"]
            if stored.status == "complete":
                assert getattr(p, DATA_COLUMN[source]) == stored.data
        # Skipped exactly where a source does not apply.
        assert (record["sec"]["status"] == "skipped") == (not p.is_public_company)
        no_handle = not (p.email or p.linkedin_url)
        assert (record["contactout"]["status"] == "skipped") == no_handle
        assert p.enrichment_status == overall_status(record)
        assert p.enrichment_status != "in_progress"
    # The public-company prospects are real insiders of the emulator: EDGAR finds their trades.
    assert any(r.status == "complete" for (_, s), r in results.items() if s == "sec")

    # Nothing lost: every request closed, matching its prospect, and the job adds up.
    assert {r.status for r in requests} <= {"done", "failed"}
    for r in requests:
        expected = "done" if prospects[r.prospect_id].enrichment_status == "complete" else "failed"
        assert r.status == expected
    assert (job.status in ("done", "failed"), job.processed, job.total) == (True, 20, 20)
    assert job.succeeded + job.failed == 20
    failed_pairs = {
        (str(pid), s) for (pid, s), r in results.items() if r.status in ("failed", "circuit_open")
    }
    assert {(e["prospect_id"], e["source"]) for e in job.errors} == failed_pairs
    assert summary.source_outcomes == {
        s: dict(Counter(r.status for (_, src), r in results.items() if src == s))
        for s in ALL_SOURCES
    }


def test_unauthorized_provider_fails_only_its_source(app_db, emulator, instance):
    emulator.configure(faults={"exa": {"unauthorized": True}})
    tenant = add_tenant(app_db.engine)
    ids = [
        add_prospect(app_db.engine, tenant, name=f"Dana Quill {i}", email=f"d{i}@quill.example")
        for i in range(3)
    ]
    job_id = enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)

    run_pending_enrichment(instance, sensor_defs(app_db, emulator, 10))

    with app_db.connect() as conn:
        rows = conn.execute(sa.select(Prospect.__table__).where(Prospect.id.in_(ids))).all()
        job = conn.execute(sa.select(EnrichmentJob).where(EnrichmentJob.id == job_id)).one()
    for p in rows:
        assert p.enrichment_source_status["exa"]["status"] == "failed"
        assert "exa" in p.enrichment_source_status["exa"]["error"]
        assert "emulator-key" not in p.enrichment_source_status["exa"]["error"]
        assert p.enrichment_source_status["apollo"]["status"] in ("complete", "not_found")
        assert p.enrichment_status == "complete"  # mixed: usable data arrived
        assert p.ai_summary is not None
    assert (job.status, job.succeeded) == ("done", 3)
    assert sorted((e["prospect_id"], e["source"]) for e in job.errors) == sorted(
        (str(pid), "exa") for pid in ids
    )


def _called_and_final(engine: sa.Engine) -> set[tuple[int, str]]:
    """(prospect, source) pairs whose provider was called and answered for good."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(EnrichmentSourceResult.prospect_id, EnrichmentSourceResult.source).where(
                EnrichmentSourceResult.status.in_(FINAL_STATUSES),
                EnrichmentSourceResult.latency_ms.is_not(None),
            )
        )
        return {(r.prospect_id, r.source) for r in rows}


def _email_key(email: str) -> str:
    return f"email:{email}"


def test_sigkilled_batch_rerun_does_not_call_completed_sources_again(
    app_db, emulator, postgres_url, tmp_path
):
    # Slow providers and one call at a time per provider, so the kill lands mid-batch.
    emulator.configure(latency_ms=150)
    engine = app_db.engine
    tenant = add_tenant(engine)
    emails = [f"kill{i}@victim.example" for i in range(8)]
    ids = [
        add_prospect(engine, tenant, name=f"Kai Lenz {i}", company="Lenz Holdings", email=e)
        for i, e in enumerate(emails)
    ]
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    with dg.instance_for_test() as inst:
        first = build_enrichment_request_sensor()(
            dg.build_sensor_context(instance=inst, resources={"app_db": app_db})
        )
    (run,) = first.run_requests
    batch = run.partition_key

    env = {**os.environ, "PYTHONPATH": str(REPO), "PHRONESIS_DATA_DIR": str(tmp_path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.enrichment.harness", postgres_url, emulator.url, batch, "1"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    try:
        # Kill once a few real provider calls have answered (skipped sources do not count).
        while time.monotonic() < deadline and worker.poll() is None:
            if len(_called_and_final(engine)) >= 4:
                break
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    done_before = _called_and_final(engine)
    with engine.connect() as conn:
        stuck = conn.execute(
            sa.select(sa.func.count()).where(Prospect.enrichment_status == "in_progress")
        ).scalar_one()
    called_sources = ("apollo", "contactout", "exa")
    data_done = {(p, s) for p, s in done_before if s in called_sources}
    assert 4 <= len(data_done) < len(ids) * len(called_sources), "kill did not land mid-batch"
    summaries_before = sum(1 for _, s in done_before if s == "claude")
    assert stuck == len(ids)  # killed: no failure hook ran
    before = emulator.stats()["keys"]

    from tests.enrichment.harness import run_batch

    result = run_batch(postgres_url, emulator.url, batch)

    assert result.success
    after = emulator.stats()["keys"]
    email_of = dict(zip(ids, emails, strict=True))
    new_calls = {
        p: Counter(after.get(p, [])) - Counter(before.get(p, [])) for p in ("apollo", "contactout")
    }
    new_exa = Counter(after.get("exa", [])) - Counter(before.get("exa", []))
    new_summaries = len(after.get("anthropic", [])) - len(before.get("anthropic", []))
    # Completed summaries are not redone; at most the one call in flight at the kill (one
    # worker per provider) is repeated, because its answer never reached the database.
    assert len(ids) - summaries_before <= new_summaries <= len(ids) - summaries_before + 1
    for pid, source in done_before:
        if source in ("apollo", "contactout"):
            assert new_calls[source][_email_key(email_of[pid])] == 0, (pid, source)
        elif source == "exa":
            name = f"Kai Lenz {ids.index(pid)}"
            assert new_exa[f"{name} Lenz Holdings"] == 0, (pid, source)
    # ...and everything that had not completed was called and finished.
    with engine.connect() as conn:
        statuses = {
            r.id: r.enrichment_status
            for r in conn.execute(sa.select(Prospect.id, Prospect.enrichment_status))
        }
        finals = conn.execute(
            sa.select(sa.func.count()).where(EnrichmentSourceResult.status.in_(FINAL_STATUSES))
        ).scalar_one()
    assert set(statuses.values()) == {"complete"}
    assert finals == len(ids) * len(ALL_SOURCES)
    missing_before = {(pid, s) for pid in ids for s in ("apollo", "contactout")} - done_before
    for pid, source in missing_before:
        assert new_calls[source][_email_key(email_of[pid])] >= 1, (pid, source)
