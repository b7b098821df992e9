"""The end-to-end demo behind `make demo` / `phronesis demo`, and the provider environment
shared with `phronesis dev`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.runner import run_pending_enrichment
from phronesis_dagster.db import migrate
from phronesis_dagster.db.models import Prospect
from phronesis_dagster.demo_data import DemoDataSpec, seed_demo_data
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from phronesis_dagster.resources.app_db import (
    DATABASE_URL_ENV,
    AppDatabase,
    default_database_url,
    engine_for,
    local_data_dir,
)

# The demo prints its own summary; each run's full event log is in the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
PROVIDER_KEY_ENVS = ("CONTACTOUT_API_KEY", "EXA_API_KEY", "APOLLO_API_KEY", "ANTHROPIC_API_KEY")


@contextmanager
def provider_environment(port: int = 0) -> Iterator[str]:
    """Yield the provider mode. With no provider keys set, start the provider emulator on
    127.0.0.1:`port` (0 = any free port) and point every provider resource at it through
    environment variables, which Dagster's run processes inherit. With keys set, use the real
    APIs. Never a mix of both."""
    if any(os.environ.get(name) for name in PROVIDER_KEY_ENVS):
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
# The laptop instance recovers killed runs like production (deploy/dagster.yaml): the code
# server fails a run whose process died, enrichment_recovery_sensor one whose heartbeat stopped,
# and run retries re-execute it from failure. The DefaultRunLauncher cannot check or resume
# workers, so max_resume_run_attempts stays 0.
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
"""


def _reset_local_files() -> None:
    """Start the demo from nothing: the SQLite app database and the local Dagster instance. An
    app database given by PHRONESIS_DATABASE_URL is never dropped."""
    data_dir = local_data_dir()
    if not os.environ.get(DATABASE_URL_ENV):
        for path in data_dir.glob("phronesis.db*"):
            path.unlink()
    home = Path(os.environ["DAGSTER_HOME"])
    if home.is_relative_to(data_dir) and home.exists():
        shutil.rmtree(home)
    ensure_local_dagster_home()


def ensure_local_dagster_home() -> Path:
    """DAGSTER_HOME for the embedded default (`.data/dagster_home` unless already set), with a
    dagster.yaml so Dagster keeps quiet about a missing one."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(local_data_dir() / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    return home


def _execute(defs: dg.Definitions, instance: dg.DagsterInstance, job: str, key: str | None) -> None:
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key=key, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    label = f"{job}[{key}]" if key else job
    print(f"  {label:<48} {'ok' if result.success else 'FAILED'}  run {result.run_id[:8]}")
    if not result.success:
        raise SystemExit(f"{label} failed; see the run in the Dagster UI (make dev)")


def run_demo(*, fresh: bool = True, seed: int = 42, days: int = 7) -> int:
    """Migrate, seed, and materialize every asset once on the embedded default."""
    if fresh:
        _reset_local_files()
    url = default_database_url()
    print(f"app database: {AppDatabase(url=url).display_url()}")
    migrate.upgrade(url)
    spec = DemoDataSpec(seed=seed, days=days)
    seeded = seed_demo_data(engine_for(url), spec)
    print(
        f"seeded {len(seeded.tenant_ids)} tenants, {len(seeded.user_ids)} users, "
        f"{len(seeded.prospect_ids)} prospects, {seeded.events:,} activity events "
        f"({seeded.first_day} .. {seeded.last_day})"
    )
    instance = dg.DagsterInstance.get()
    with provider_environment() as mode:
        # Imported only now: the provider resources read the emulator's address at import.
        from phronesis_dagster.definitions import defs

        print("\n1. usage rollup")
        _execute(defs, instance, "activity_log_partitions_job", None)
        for offset in range(days - 1, -1, -1):
            day = seeded.last_day - timedelta(days=offset)
            _execute(defs, instance, "usage_metrics_daily_job", day.isoformat())

        print(f"\n2. enrichment (providers: {mode})")
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
        print(f"  enqueued {len(prospect_ids)} prospects of tenant {first_tenant} as job {job_id}")
        enrichment = run_pending_enrichment(instance, defs, log=lambda m: print(f"  {m}"))
        print(f"  {len(enrichment.runs)} batch run(s); per-source outcomes:")
        for source, counts in sorted(enrichment.source_outcomes.items()):
            outcome = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            print(f"    {source:<12} {outcome}")
        status = ", ".join(f"{k} {v}" for k, v in sorted(enrichment.prospect_status.items()))
        print(f"  prospects: {status}")

        print("\n3. API quotas and operations datasets")
        today = datetime.now(UTC).date().isoformat()
        _execute(defs, instance, "api_quota_daily_job", today)
        _execute(defs, instance, "enrichment_health_daily_job", today)
        _execute(defs, instance, "enrichment_error_feed_job", None)

    print(
        "\nDone. Open the Dagster UI on this instance to see the runs, lineage, partitions and "
        "checks:\n  make dev        # then http://127.0.0.1:3000"
    )
    return 0
