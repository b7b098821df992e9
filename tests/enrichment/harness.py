"""Running enrichment batches in tests: Definitions wired to the emulator, and a batch worker
that the SIGKILL test starts as a subprocess (`python -m tests.enrichment.harness ...`)."""

from __future__ import annotations

import sys

import dagster as dg

from phronesis_dagster.assets.enrichment import ENRICHMENT_ASSETS
from phronesis_dagster.checks.enrichment import ENRICHMENT_CHECKS
from phronesis_dagster.jobs import enrichment_batch_job
from phronesis_dagster.local_runner import execute_batch
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.providers import build_provider_resources
from phronesis_dagster.sensors.enrichment import ENRICHMENT_SENSORS


def emulator_resources(app_db: AppDatabase, emulator_url: str) -> dict:
    return build_provider_resources(
        app_db,
        {"PHRONESIS_PROVIDER_MODE": "emulator", "PHRONESIS_EMULATOR_URL": emulator_url},
    )


def enrichment_defs(app_db: AppDatabase, emulator_url: str, sensors=None) -> dg.Definitions:
    return dg.Definitions(
        assets=ENRICHMENT_ASSETS,
        asset_checks=ENRICHMENT_CHECKS,
        jobs=[enrichment_batch_job],
        sensors=sensors or ENRICHMENT_SENSORS,
        resources={"app_db": app_db, **emulator_resources(app_db, emulator_url)},
    )


def run_batch(
    db_url: str, emulator_url: str, batch_key: str, max_workers: int = 32
) -> dg.ExecuteInProcessResult:
    """Execute the batch job for `batch_key` in this process on a throwaway Dagster instance."""
    app_db = AppDatabase(url=db_url)
    return execute_batch(
        enrichment_defs(app_db, emulator_url), batch_key, max_workers_per_provider=max_workers
    )


if __name__ == "__main__":
    db, url, key, workers = sys.argv[1:5]
    result = run_batch(db, url, key, int(workers))
    sys.exit(0 if result.success else 1)
