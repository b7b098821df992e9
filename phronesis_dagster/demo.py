"""The end-to-end demo behind `make demo` / `phronesis demo`, and the provider environment
shared with `phronesis dev`."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.cli import DAGSTER_DATABASE_URL_ENV
from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for, local_data_dir
from phronesis_dagster.db.models import Prospect
from phronesis_dagster.demo_data import DemoDataSpec, seed_demo_data
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from phronesis_dagster.local_runner import run_pending_enrichment
from phronesis_dagster.resources.providers import CREDENTIAL_ENVS

# The demo prints its own summary; each run's full event log is in the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
UI_URL = "http://127.0.0.1:3000"


@contextmanager
def provider_environment(port: int = 0) -> Iterator[str]:
    """Yield the provider mode. With no provider credential set (the registry's `KEY_ENV`s),
    start the provider emulator on 127.0.0.1:`port` (0 = any free port) and point every provider
    resource at it through environment variables, which Dagster's run processes inherit. With
    credentials set, use the real APIs. Never a mix of both."""
    if any(os.environ.get(name) for name in CREDENTIAL_ENVS):
        yield "live"
        return
    from phronesis_dagster.emulator.config import EmulatorConfig
    from phronesis_dagster.emulator.server import EmulatorServer

    server = EmulatorServer(EmulatorConfig(), port=port).start()
    saved = {k: os.environ.get(k) for k in ("PHRONESIS_EMULATOR_URL", "PHRONESIS_PROVIDER_MODE")}
    os.environ["PHRONESIS_EMULATOR_URL"] = server.url
    os.environ["PHRONESIS_PROVIDER_MODE"] = "emulator"
    print(f"provider mode: emulator (no provider keys set) at {server.url}")
    try:
        yield "emulator"
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# Dagster's default local storage (SQLite under DAGSTER_HOME), as `dagster dev` would use it.
# The laptop instance recovers killed runs like production (deploy/dagster.yaml): the warm
# worker (or the code server, for a run launched through it) fails a run whose process died,
# enrichment_recovery_sensor one whose heartbeat stopped, and run retries re-execute it from
# failure. A forked run cannot be resumed in place, so max_resume_run_attempts stays 0.
# The run queue is production's (deploy/dagster.yaml explains each limit), sized for a laptop:
# at most 6 enrichment runs, of which at most 3 bulk ones, so a rep's single "Enrich" (an
# interactive batch, `dagster/priority` 100) finds one of three free slots and is launched at the
# next dequeue, within a second, however big the bulk job in flight (bench/latency.py measures it).
# The daemon launches queued runs and evaluates sensors on thread pools: a launch through the
# code server (the warm launcher's fallback) waits until its process has started (2-7 s on a busy
# laptop), and one slow launch or sensor tick must not hold up a click's run or a request
# sensor's next tick.
# The limits go in `concurrency.runs`, not `run_queue`: Dagster refuses `run_queue` next to a
# `run_coordinator` entry, which tests and benchmarks add to this text.
LOCAL_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_retries:
  enabled: true
  max_retries: 2
  retry_on_asset_or_op_failure: false
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
    dequeue_num_workers: 4
# Each run is forked from a warm worker that has Dagster, the code location and the anthropic
# SDK imported, instead of a fresh process that imports them again (about 3 s of CPU per run on
# this laptop's cores; docs/architecture.md, "Run processes"). Falls back to the code server.
run_launcher:
  module: phronesis_dagster.launcher
  class: WarmRunLauncher
sensors:
  use_threads: true
  num_workers: 8
  num_submit_workers: 4
concurrency:
  runs:
    max_concurrent_runs: 8
    tag_concurrency_limits:
      - key: phronesis/domain
        value: enrichment
        limit: 6
      - key: phronesis/lane
        value: bulk
        limit: 3
"""


# Runs, event logs and schedule state in the `dagster` database of the embedded server (the URL
# is set by the CLI while the server runs), as production keeps them in PostgreSQL; see
# docs/deployment.md, "Laptop default", for why and the measurements.
POSTGRES_STORAGE_YAML = f"""\
storage:
  postgres:
    postgres_url:
      env: {DAGSTER_DATABASE_URL_ENV}
"""


def _local_dagster_home() -> Path:
    return Path(os.environ.setdefault("DAGSTER_HOME", str(local_data_dir() / "dagster_home")))


def reset_local_dagster_home() -> None:
    """Forget the local Dagster instance's runs, logs and settings (the demo starts from nothing).
    A DAGSTER_HOME outside the data folder is the user's own and is left alone."""
    home = _local_dagster_home()
    if home.is_relative_to(local_data_dir()) and home.exists():
        shutil.rmtree(home)


def ensure_local_dagster_home() -> Path:
    """DAGSTER_HOME for the laptop default (`.data/dagster_home` unless already set) with its
    dagster.yaml: Dagster's local storage, or PostgreSQL storage when the CLI has put the embedded
    server's `dagster` database in PHRONESIS_DAGSTER_DATABASE_URL. The file is rewritten when the
    home is the default one under the data folder (it follows the storage in use), and written
    only when missing in a DAGSTER_HOME of the user's."""
    home = _local_dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    text = LOCAL_INSTANCE_YAML
    if os.environ.get(DAGSTER_DATABASE_URL_ENV):
        text += POSTGRES_STORAGE_YAML
    if home.is_relative_to(local_data_dir()) or not config.exists():
        config.write_text(text)
    return home


class _Step:
    """One numbered step of the demo's report: a heading, then one summary line with its time."""

    def __init__(self, number: int, title: str) -> None:
        self.number, self.title = number, title
        self.started = time.perf_counter()
        self.failed: list[str] = []

    def done(self, summary: str) -> None:
        took = time.perf_counter() - self.started
        print(f"{self.number}. {self.title:<28} {summary}  ({took:.1f}s)")


def _execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, key: str | None, step: _Step
) -> None:
    """Run `job` (one partition) in this process; its log goes to the run's event log only."""
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    if not result.success:
        label = f"{job}[{key}]" if key else job
        raise SystemExit(
            f"{step.number}. {step.title}: {label} failed, run {result.run_id}; its log is in the "
            f"Dagster UI (make dev, then {UI_URL}/runs/{result.run_id})"
        )


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def run_demo(url: str, *, seed: int = 42, days: int = 7) -> int:
    """Migrate the app database at `url`, seed it, and materialize every asset once, printing a
    short report: one line per step, the per-source outcomes of enrichment, and where to look
    next. Dagster's own log lines stay in each run's event log (the UI shows them)."""
    begun = time.perf_counter()

    step = _Step(1, "app database")
    migrate.upgrade(url)
    revision = migrate.current(url)
    spec = DemoDataSpec(seed=seed, days=days)
    seeded = seed_demo_data(engine_for(url), spec)
    step.done(
        f"revision {revision}; seeded {len(seeded.tenant_ids)} tenants, "
        f"{len(seeded.user_ids)} users, {len(seeded.prospect_ids)} prospects, "
        f"{seeded.events:,} activity events ({seeded.first_day} .. {seeded.last_day})"
    )
    instance = dg.DagsterInstance.get()
    with provider_environment() as mode:
        # Imported only now: the provider resources read the emulator's address at import.
        from phronesis_dagster.definitions import defs

        step = _Step(2, "usage rollup")
        _execute(defs, instance, "activity_log_partitions_job", None, step)
        for offset in range(days - 1, -1, -1):
            day = seeded.last_day - timedelta(days=offset)
            _execute(defs, instance, "usage_metrics_daily_job", day.isoformat(), step)
        step.done(f"activity_log partitions, then usage_metrics_daily for {days} day(s): ok")

        step = _Step(3, f"enrichment ({mode})")
        engine = engine_for(url)
        first_tenant = seeded.tenant_ids[0]
        with engine.connect() as conn:
            prospect_ids = list(
                conn.execute(
                    sa.select(Prospect.id).where(Prospect.tenant_id == first_tenant)
                ).scalars()
            )
        job_id = enqueue_enrichment(
            engine, tenant_id=first_tenant, prospect_ids=prospect_ids, requested_by=None
        )
        # The sensor's evaluations print INFO lines to stderr through a console logger of their
        # own (no level to set): keep them in a file, as a daemon tick would keep its log.
        sensor_log = Path(os.environ["DAGSTER_HOME"]) / "demo_enrichment_sensor.log"
        with sensor_log.open("a") as out, redirect_stderr(out):
            enrichment = run_pending_enrichment(instance, defs, run_config=QUIET_RUN_CONFIG)
        failed_runs = [run_id for _, run_id, ok in enrichment.runs if not ok]
        step.done(
            f"job {job_id}: {len(prospect_ids)} prospects in {len(enrichment.runs)} batch run(s); "
            f"prospects {_counts(enrichment.prospect_status)}"
            + (f"; FAILED runs {', '.join(r[:8] for r in failed_runs)}" if failed_runs else "")
        )
        for source, counts in sorted(enrichment.source_outcomes.items()):
            print(f"     {source:<12} {_counts(counts)}")

        step = _Step(4, "quotas and operations")
        today = datetime.now(UTC).date().isoformat()
        _execute(defs, instance, "api_quota_daily_job", today, step)
        _execute(defs, instance, "enrichment_health_daily_job", today, step)
        _execute(defs, instance, "enrichment_error_feed_job", None, step)
        step.done(f"api_quota_daily and enrichment_health_daily for {today}, error feed: ok")

    print(
        f"\nDone in {time.perf_counter() - begun:.0f}s. Runs, lineage, partitions and checks "
        f"are in the Dagster UI:\n  make dev     then open {UI_URL}"
    )
    return 1 if failed_runs else 0
