"""Scale-out: nothing assumes one machine. Two enrichment batches run at the same time in two
separate run processes (each `python -m phronesis_dagster.local_runner`, what the
run launcher starts) against one emulator whose per-provider rate limit equals the clients' own
limit, with the app database on PostgreSQL:

- the shared rate limiter holds across the processes: the emulator never answers 429;
- every prospect of both batches is enriched, each source exactly once;
- a circuit breaker opened by one process (Exa answering 500) is open for the other process,
  which skips Exa (`circuit_open`) without calling it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentSourceResult, Prospect, ProviderCircuitState
from phronesis_dagster.enrichment.constants import ALL_SOURCES, CIRCUIT_OPEN
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.resources.apollo import ApolloResource
from phronesis_dagster.resources.claude import ClaudeResource
from phronesis_dagster.resources.contactout import ContactOutResource
from phronesis_dagster.resources.edgar import EdgarResource
from phronesis_dagster.resources.exa import ExaResource
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from tests.reliability.conftest import (
    assert_enrichment_invariants,
    seed_prospects,
)

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
# The emulator enforces exactly the clients' own per-second limits.
CLIENT_RATES = {
    "apollo": ApolloResource.DEFAULT_RPS,
    "contactout": ContactOutResource.DEFAULT_RPS,
    "exa": ExaResource.DEFAULT_RPS,
    "edgar": EdgarResource.DEFAULT_RPS,
    "anthropic": ClaudeResource.DEFAULT_RPS,
}
BATCH_SIZE = 100
RUN_TIMEOUT_S = 150


def queue_batches(app_db, n_batches: int, batch_size: int) -> list[str]:
    """Let the request sensor cut the pending requests into batches; their keys. Public-company
    prospects get batches of their own, so there may be more than `n_batches`."""
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
        result = build_enrichment_request_sensor(SensorSettings(batch_size=batch_size))(context)
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) >= n_batches
    return keys


def start_run(app_db, emulator_url: str, batch: str, log: Path) -> subprocess.Popen:
    """One batch run in a fresh process, providers in emulator mode."""
    env = {
        **os.environ,
        "PHRONESIS_PROVIDER_MODE": "emulator",
        "PHRONESIS_EMULATOR_URL": emulator_url,
        "PYTHONPATH": str(REPO),
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "phronesis_dagster.local_runner", app_db.url, batch],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_all(processes: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    for proc, log in zip(processes, logs, strict=True):
        try:
            proc.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"run did not finish in {RUN_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")
        assert proc.returncode == 0, log.read_text()[-3000:]


def status_codes(stats: dict) -> dict[str, Counter]:
    """{provider: Counter(status code)} over every route."""
    out: dict[str, Counter] = {}
    for provider, routes in stats["responses"].items():
        for codes in routes.values():
            out.setdefault(provider, Counter()).update({k: int(v) for k, v in codes.items()})
    return out


def test_two_concurrent_runs_share_rate_limits_and_finish(pg_app_db, emulator, tmp_path):
    emulator.configure(rate_limit_per_second=CLIENT_RATES)
    tenant, ids = seed_prospects(pg_app_db, 2 * BATCH_SIZE, public_share=0.1)
    enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    batches = queue_batches(pg_app_db, 2, BATCH_SIZE)
    logs = [tmp_path / f"run{i}.log" for i in range(len(batches))]

    processes = [
        start_run(pg_app_db, emulator.url, b, log) for b, log in zip(batches, logs, strict=True)
    ]
    wait_all(processes, logs)

    codes = status_codes(emulator.stats())
    requests = emulator.stats()["requests"]
    # Both runs together still hit a rate limit somewhere: at 100/s, 200 Apollo lookups alone
    # take two seconds, so the limits were binding, not idle.
    assert requests["apollo"] >= 2 * BATCH_SIZE
    assert_enrichment_invariants(pg_app_db.engine, ids)
    res = EnrichmentSourceResult.__table__
    with pg_app_db.connect() as conn:
        statuses = Counter(r[0] for r in conn.execute(sa.select(Prospect.enrichment_status)))
        per_pair = Counter(
            (r.prospect_id, r.source)
            for r in conn.execute(sa.select(res.c.prospect_id, res.c.source))
        )
        failed = conn.execute(
            sa.select(res.c.source, res.c.status, res.c.error).where(
                res.c.status.in_(("failed", CIRCUIT_OPEN))
            )
        ).all()
    assert statuses == {"complete": 2 * BATCH_SIZE}
    assert not failed, failed[:5]
    assert set(per_pair) == {(p, s) for p in ids for s in ALL_SOURCES}
    assert set(per_pair.values()) == {1}
    overshoot = {p: c["429"] for p, c in codes.items() if c.get("429")}
    assert not overshoot, f"the emulator answered 429 (our own rate overshoot): {overshoot}"


def test_breaker_opened_by_one_process_is_open_in_the_other(pg_app_db, emulator, tmp_path):
    tenant, ids = seed_prospects(pg_app_db, 2 * 15, public_share=0.0)
    enqueue_enrichment(pg_app_db.engine, tenant_id=tenant, prospect_ids=ids)
    first, second = queue_batches(pg_app_db, 2, 15)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    # Exa fails every call: the first process trips the shared breaker.
    emulator.configure(faults={"exa": {"error_rate": 1.0}})
    wait_all([start_run(pg_app_db, emulator.url, first, logs[0])], logs[:1])
    with pg_app_db.connect() as conn:
        state = conn.execute(
            sa.select(ProviderCircuitState.state).where(ProviderCircuitState.provider == "exa")
        ).scalar_one()
    assert state == "open"

    # Exa is healthy again, but the breaker stays open for its reset timeout (30 s): the second
    # process, which shares nothing with the first but the database, must not call it.
    emulator.configure(reset_faults=True)
    exa_before = emulator.stats()["requests"].get("exa", 0)
    wait_all([start_run(pg_app_db, emulator.url, second, logs[1])], logs[1:])

    assert emulator.stats()["requests"].get("exa", 0) == exa_before
    res = EnrichmentSourceResult.__table__
    with pg_app_db.connect() as conn:
        second_exa = conn.execute(
            sa.select(res.c.status).where(res.c.batch_key == second, res.c.source == "exa")
        ).scalars()
        second_apollo = conn.execute(
            sa.select(res.c.status).where(res.c.batch_key == second, res.c.source == "apollo")
        ).scalars()
        assert set(second_exa) == {CIRCUIT_OPEN}
        assert set(second_apollo) <= {"complete", "not_found"}
    assert_enrichment_invariants(pg_app_db.engine, ids)
