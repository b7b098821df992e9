"""Live progress of the web app's bulk jobs on the real PostgreSQL: `enrichment_jobs` moves while
a batch runs (a slow emulator, the row polled from here while the batch runs in its own
process, as a launched run does), two batches of one job add up, highlights carry no contact
data, and a batch re-executed after a SIGKILL does not count its prospects twice."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest, Prospect
from phronesis_dagster.demo_data import insert_demo_prospects
from phronesis_dagster.enrichment.progress import (
    JobProgress,
    ProgressLogger,
    highlight_text,
    without_contact_data,
)
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment, utcnow
from phronesis_dagster.enrichment.store import SourceOutcome, fail_batch
from phronesis_dagster.local_runner import execute_batch
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.enrichment.fixtures import add_tenant
from tests.enrichment.harness import enrichment_defs

REPO = Path(__file__).resolve().parents[2]
# The emulator fixture runs seed 0; public prospects are its Form 4 insiders only then.
EMULATOR_SEED = 0
RUN_TIMEOUT_S = 240
# Slow enough that one batch of 40 takes several seconds: the 2 s write interval fires mid-run.
SLOW_LATENCY_MS = 250
PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def seed_job(app_db: AppDatabase, n: int, *, public_share: float, salt: int = 3):
    """A tenant with `n` demo prospects and one bulk job asking for all of them."""
    tenant = add_tenant(app_db.engine, name=f"Progress {salt}")
    with app_db.begin() as conn:
        ids = insert_demo_prospects(
            conn,
            tenant_id=tenant,
            count=n,
            rng=random.Random(salt),
            public_company_share=public_share,
            emulator_seed=EMULATOR_SEED,
        )
    job = enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)
    assert job is not None
    return tenant, ids, job


def batch_job(app_db: AppDatabase, batch_size: int) -> list[str]:
    """Let the real request sensor cut the pending requests into batches; their keys."""
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
        result = build_enrichment_request_sensor(SensorSettings(batch_size=batch_size))(context)
    return [r.partition_key for r in result.run_requests]


def start_run(db_url: str, emulator_url: str, batch: str, log: Path) -> subprocess.Popen:
    """One batch run in a fresh process, as the run launcher starts one, with two calls in
    flight per provider: prospects then finish one after another over seconds, instead of all
    in the same few hundred milliseconds, which no progress write could catch in between."""
    env = {
        **os.environ,
        "PHRONESIS_PROVIDER_MODE": "emulator",
        "PHRONESIS_EMULATOR_URL": emulator_url,
        "PYTHONPATH": str(REPO),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "phronesis_dagster.local_runner", db_url, batch, "2"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def job_row(engine: sa.Engine, job_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(EnrichmentJob.__table__).where(EnrichmentJob.id == job_id)
        ).one()


def poll_until_exit(
    engine: sa.Engine, job_id: uuid.UUID, procs: list[subprocess.Popen], logs: list[Path]
) -> list[Any]:
    """Snapshots of the job row every 100 ms while the runs go; fails on a failed run."""
    seen = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail("runs did not finish in time")
        seen.append(job_row(engine, job_id))
        time.sleep(0.1)
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log.read_text()[-3000:]
    return seen


def request_counts(engine: sa.Engine, job_id: uuid.UUID) -> dict[str, int]:
    """The independent count: the job's requests by status once everything closed."""
    req = EnrichmentRequest.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(req.c.status, sa.func.count())
            .where(req.c.job_id == job_id)
            .group_by(req.c.status)
        )
        return {r[0]: int(r[1]) for r in rows}


def contact_strings(engine: sa.Engine, ids: list[uuid.UUID]) -> set[str]:
    """Every email and phone the prospects hold, typed by the web app or found by ContactOut /
    Apollo: none of them may reach a highlight."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and ("@" in value or PHONE.fullmatch(value.strip())):
            found.add(value.strip())

    with engine.connect() as conn:
        for p in conn.execute(sa.select(Prospect.__table__).where(Prospect.id.in_(ids))):
            walk([p.email, p.phone, p.contact_data, p.person_data])
    return {s for s in found if s}


# -- pure pieces -----------------------------------------------------------------------------


def test_highlights_are_made_from_finds_and_never_from_contact_data():
    prospect = {"id": uuid.uuid4(), "name": "Avery Stone"}
    sec = SourceOutcome(status="complete", data={"transactions": [{}, {}, {}]})
    assert highlight_text("sec", prospect, sec) == "3 insider trades found for Avery Stone"
    exa = SourceOutcome(status="complete", data={"mentions": [{}], "wealth_signals": [{}, {}]})
    assert highlight_text("exa", prospect, exa) == (
        "1 web mention found for Avery Stone, 2 wealth signals"
    )
    contact = SourceOutcome(
        status="complete", data={"emails": ["avery@home.example"], "phones": ["+1 415 555 0100"]}
    )
    assert highlight_text("contactout", prospect, contact) is None
    assert highlight_text("sec", prospect, SourceOutcome(status="failed", error="x")) is None
    # A name the web app filled with contact handles loses them.
    odd = {"id": uuid.uuid4(), "name": "avery@home.example +1 (415) 555-0100"}
    text = highlight_text("sec", odd, sec)
    assert text is not None and "@" not in text and "555" not in text
    assert without_contact_data("call 415-555-0100 now") == "call now"


def test_job_writes_are_batched_by_prospects_or_seconds(postgres_url):
    app_db = AppDatabase(url=postgres_url)
    _, ids, job = seed_job(app_db, 2, public_share=0.0)
    now = [0.0]
    tracker = JobProgress(
        app_db.engine,
        batch_key="b",
        job_ids=[job],
        calls_per_prospect=5,
        log=lambda _m: None,
        every_prospects=25,
        every_seconds=2.0,
        clock=lambda: now[0],
    )
    progress = ProgressLogger(lambda _m: None, label="b", total=1000, listener=tracker)
    outcome = SourceOutcome(status="not_found")
    for _ in range(124):  # 24.8 prospects' worth of calls within one instant: no write yet
        progress.advance(source="exa", prospect={"id": ids[0], "name": "N"}, outcome=outcome)
    assert tracker.writes == 0
    progress.advance(source="exa", prospect={"id": ids[0], "name": "N"}, outcome=outcome)
    assert tracker.writes == 1  # the 25th prospect
    now[0] += 2.5
    progress.advance(source="exa", prospect={"id": ids[0], "name": "N"}, outcome=outcome)
    assert tracker.writes == 2  # 2 s since the last write
    progress.close()
    assert tracker.writes == 3
    assert job_row(app_db.engine, job).progress_at is not None


# -- on the real database, batches in their own processes -----------------------------------


def test_progress_moves_while_the_batch_runs(postgres_url, emulator, tmp_path):
    app_db = AppDatabase(url=postgres_url)
    emulator.configure(latency_ms=SLOW_LATENCY_MS)
    _, ids, job = seed_job(app_db, 40, public_share=0.0)
    (batch,) = batch_job(app_db, batch_size=40)
    assert job_row(app_db.engine, job).phase == "queued"

    log = tmp_path / "run.log"
    seen = poll_until_exit(
        app_db.engine, job, [start_run(postgres_url, emulator.url, batch, log)], [log]
    )

    mid = [s for s in seen if 0 < s.processed < s.total]
    assert mid, f"no progress visible before the end: {[s.processed for s in seen][-20:]}"
    assert {s.phase for s in mid} <= {"enriching", "summarizing"}
    assert all(s.progress_at is not None and s.succeeded + s.failed == s.processed for s in mid)
    # Counts only grow, and an ETA is shown once something finished.
    processed = [s.processed for s in seen]
    assert processed == sorted(processed)
    assert any(s.eta_seconds is not None and s.eta_seconds > 0 for s in mid)
    # Highlights tick in before the end too.
    assert any(s.highlights for s in mid)

    end = job_row(app_db.engine, job)
    assert (end.status, end.phase, end.eta_seconds) == ("done", "done", 0)
    assert end.processed == end.total == 40
    closed = request_counts(app_db.engine, job)
    assert end.succeeded == closed.get("done", 0)
    assert end.failed == closed.get("failed", 0) + closed.get("rejected", 0)


def test_two_batches_of_one_job_add_up_and_highlight_no_contact_data(
    postgres_url, emulator, tmp_path
):
    app_db = AppDatabase(url=postgres_url)
    _, ids, job = seed_job(app_db, 40, public_share=0.3, salt=11)
    batches = batch_job(app_db, batch_size=25)
    assert len(batches) >= 2  # public-company prospects get batches of their own

    logs = [tmp_path / f"{b}.log" for b in batches]
    procs = [
        start_run(postgres_url, emulator.url, b, log) for b, log in zip(batches, logs, strict=True)
    ]
    seen = poll_until_exit(app_db.engine, job, procs, logs)
    assert all(s.processed <= s.total for s in seen)

    end = job_row(app_db.engine, job)
    closed = request_counts(app_db.engine, job)
    assert end.processed == end.total == sum(closed.values()) == 40
    assert end.succeeded == closed.get("done", 0)
    assert end.failed == closed.get("failed", 0) + closed.get("rejected", 0)
    assert end.phase == "done"

    assert 0 < len(end.highlights) <= 20  # the newest only
    # Everything the ticker showed while the batches ran.
    ticked = {
        (h["prospect_id"], h["source"], h["text"]) for s in [*seen, end] for h in s.highlights
    }
    texts = [text for _, _, text in ticked]
    assert any("insider trade" in t for t in texts), texts
    contacts = contact_strings(app_db.engine, ids)
    assert contacts, "the fixture should hold contact data to leak"
    for text in texts:
        assert "@" not in text and not PHONE.search(text), text
        assert not any(c in text for c in contacts), text
    # Each highlight names a prospect of this job.
    assert {uuid.UUID(pid) for pid, _, _ in ticked} <= set(ids)


def test_a_batch_re_executed_after_a_kill_counts_each_prospect_once(
    postgres_url, emulator, tmp_path
):
    app_db = AppDatabase(url=postgres_url)
    emulator.configure(latency_ms=SLOW_LATENCY_MS)
    _, ids, job = seed_job(app_db, 40, public_share=0.0, salt=5)
    (batch,) = batch_job(app_db, batch_size=40)

    log = tmp_path / "killed.log"
    proc = start_run(postgres_url, emulator.url, batch, log)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while job_row(app_db.engine, job).processed == 0:
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no progress before the kill"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = job_row(app_db.engine, job)
    assert 0 < before.processed < 40

    # What the failure / recovery sensors do with a dead run, then a re-execution of the batch.
    fail_batch(app_db.engine, batch, error="killed", run_id=None, now=utcnow())
    emulator.configure(latency_ms=0)
    result = execute_batch(enrichment_defs(app_db, emulator.url), batch)
    assert result.success

    end = job_row(app_db.engine, job)
    closed = request_counts(app_db.engine, job)
    assert end.processed == end.total == 40
    assert end.succeeded + end.failed == 40
    assert end.succeeded == closed.get("done", 0)
    assert (end.status, end.phase) == ("done", "done")
