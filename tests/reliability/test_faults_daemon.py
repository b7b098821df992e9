"""Faults: the Dagster daemon restarted mid-way. `dagster-daemon run` on the project's
workspace with a temporary DAGSTER_HOME (local storage, the production run coordinator, run
retries and run monitoring settings) and a PostgreSQL app database; the request sensor is on by
default. Requests are enqueued, the daemon is SIGKILLed with its whole process group (its code
server and the run workers it launched die with it) while batches are being enriched, then
started again. Once everything settled: no request lost, no prospect stuck `in_progress`, no
provider call repeated for a source that had completed before the kill."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentRequest
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from scripts.screenshot_lineage import stop
from tests.reliability.conftest import (
    assert_enrichment_invariants,
    completed_pairs,
    repeated_calls,
    seed_prospects,
)
from tests.ui.test_live_webserver import BIN, INSTANCE_YAML, REPO_ROOT, WORKSPACE, _tail

pytestmark = pytest.mark.postgres

# The production instance's recovery settings (deploy/dagster.yaml), with short intervals and a
# maximum run time of seconds instead of an hour: the monitoring daemon fails a STARTED run that
# outlived it, which is how a run killed with the daemon gets closed when the run launcher
# cannot check the worker (the local DefaultRunLauncher cannot).
RECOVERY_YAML = """\
run_retries:
  enabled: true
  max_retries: 2
run_monitoring:
  enabled: true
  start_timeout_seconds: 30
  poll_interval_seconds: 2
  max_resume_run_attempts: 0
  max_runtime_seconds: 25
"""
PROSPECTS, BATCH_SIZE = 10, 5
# Time for everything to settle after the restart: the killed run's 25 s budget, a monitoring
# poll, the failure sensor and a retried run.
SETTLE_TIMEOUT_S = 90


def start_daemon(home: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)],
            cwd=REPO_ROOT,
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def request_statuses(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(EnrichmentRequest.status)).scalars())


def test_daemon_killed_with_its_runs_and_restarted_loses_nothing(pg_app_db, emulator, tmp_path):
    emulator.configure(latency_ms=150)
    engine = pg_app_db.engine
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML + RECOVERY_YAML)
    log = tmp_path / "daemon.log"
    env = {
        **os.environ,
        "PHRONESIS_DATABASE_URL": pg_app_db.url,
        "PHRONESIS_DATA_DIR": str(tmp_path / "data"),
        "PHRONESIS_PROVIDER_MODE": "emulator",
        "PHRONESIS_EMULATOR_URL": emulator.url,
        "PHRONESIS_ENRICHMENT_BATCH_SIZE": str(BATCH_SIZE),
    }
    tenant, ids = seed_prospects(pg_app_db, PROSPECTS, public_share=0.0)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)

    daemon = start_daemon(home, env, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(completed_pairs(engine)) < 4:
            assert daemon.poll() is None, _tail(log)
            time.sleep(0.1)
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        time.sleep(1)  # let the killed group's sockets close
        done_at_kill = completed_pairs(engine)
        keys_at_kill = emulator.stats()["keys"]
        assert 4 <= len(done_at_kill) < PROSPECTS * 4, "the kill did not land mid-way"
        assert set(request_statuses(engine)) & {"pending", "queued", "running"}

        daemon = start_daemon(home, env, log)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if not set(request_statuses(engine)) & {"pending", "queued", "running"}:
                break
            assert daemon.poll() is None, _tail(log)
            time.sleep(0.5)
    finally:
        stop(daemon)

    statuses = request_statuses(engine)
    assert not set(statuses) & {"pending", "queued", "running"}, (
        f"requests never closed after the restart: {statuses}\n{_tail(log)}"
    )
    assert_enrichment_invariants(engine, ids)
    assert repeated_calls(engine, done_at_kill, keys_at_kill, emulator.stats()["keys"]) == []
