"""The production instance (`deploy/dagster.yaml`) loaded against the real PostgreSQL:
storage, run queue limits, pools, retries and monitoring, and a real materialization recorded
in PostgreSQL."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from phronesis_dagster.resources.app_db import AppDatabase
from tests.conftest import fresh_database

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
POOL_LIMITS_SCRIPT = REPO_ROOT / "deploy" / "pool_limits.py"
PROVIDER_POOLS = {"contactout", "exa", "edgar", "apollo", "claude"}
PREFERRED_ASSET = dg.AssetKey("usage_metrics_daily")
# Importing the definitions binds the provider resources; emulator mode loads them without keys
# (no provider is called here).
PROVIDER_ENV = {
    "PHRONESIS_PROVIDER_MODE": "emulator",
    "PHRONESIS_EMULATOR_URL": "http://127.0.0.1:9",
}

pytestmark = pytest.mark.postgres


def _load_pool_limits_module():
    spec = importlib.util.spec_from_file_location("deploy_pool_limits", POOL_LIMITS_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def dagster_db_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for Dagster's storage, apart from the app database (both
    use Alembic, whose `alembic_version` table each wants for itself)."""
    with fresh_database("t_dagster") as url:
        yield url


@pytest.fixture
def dagster_home(tmp_path: Path, dagster_db_url: str, monkeypatch) -> Path:
    """A DAGSTER_HOME holding a verbatim copy of the production dagster.yaml, with the DAGSTER_PG_*
    variables pointing at a fresh, empty PostgreSQL database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")
    url = sa.make_url(dagster_db_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database)
    return home


def _materializable_asset(
    app_db_url: str,
) -> tuple[dg.AssetsDefinition, str | None, dict]:
    """`usage_metrics_daily` (one partition, only needs the app DB) when the project has it, else
    a stand-in asset: the instance, not the asset, is under test here."""
    with mock.patch.dict(os.environ, PROVIDER_ENV):
        from phronesis_dagster.definitions import defs

    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and PREFERRED_ASSET in assets_def.keys:
            partition_key = assets_def.partitions_def.get_partition_keys()[0]
            return assets_def, partition_key, {"app_db": AppDatabase(url=app_db_url)}

    @dg.asset(name=PREFERRED_ASSET.path[-1])
    def stand_in() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows_written": 0})

    return stand_in, None, {}


def test_production_instance_uses_postgres_and_the_queue(dagster_home: Path) -> None:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None
        assert 0 < queue.max_concurrent_runs <= 20
        limits = {
            (lim["key"], lim.get("value")): lim["limit"] for lim in queue.tag_concurrency_limits
        }
        assert limits[("phronesis/domain", "enrichment")] < queue.max_concurrent_runs
        assert limits[("dagster/backfill", None)] < queue.max_concurrent_runs

        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1
        assert pools.pool_granularity is not None and pools.pool_granularity.value == "op"

        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds > 0
        assert instance.run_monitoring_poll_interval_seconds > 0
        assert instance.get_settings("telemetry") == {"enabled": False}


def test_materialization_through_production_instance_lands_in_postgres(
    dagster_home: Path, dagster_db_url: str, postgres_url: str
) -> None:
    assets_def, partition_key, resources = _materializable_asset(postgres_url)
    key = assets_def.key

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        result = dg.materialize(
            [assets_def], instance=instance, partition_key=partition_key, resources=resources
        )
        assert result.success
        run_id = result.run_id

    # A second instance (another process in production: webserver, daemon) sees the run and the
    # materialization, because both live in PostgreSQL and not in the process that ran it.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.run_id == run_id
        if partition_key is not None:
            assert event.asset_materialization.partition == partition_key

    engine = sa.create_engine(sa.make_url(dagster_db_url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            status = conn.execute(
                sa.text("SELECT status FROM runs WHERE run_id = :run_id"), {"run_id": run_id}
            ).scalar_one()
            materializations = conn.execute(
                sa.text(
                    "SELECT count(*) FROM event_logs WHERE run_id = :run_id "
                    "AND dagster_event_type = 'ASSET_MATERIALIZATION'"
                ),
                {"run_id": run_id},
            ).scalar_one()
    finally:
        engine.dispose()
    assert status == "SUCCESS"
    assert materializations == 1


def test_pool_limits_script_sets_every_provider_pool(dagster_home: Path) -> None:
    pool_limits = _load_pool_limits_module()
    assert set(pool_limits.POOL_LIMITS) == PROVIDER_POOLS

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        stored = pool_limits.apply_pool_limits(instance, {**pool_limits.POOL_LIMITS, "exa": 7})

    # Read back from a fresh instance: the limits are in PostgreSQL, shared by every run worker.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        for pool, limit in stored.items():
            assert instance.event_log_storage.get_concurrency_info(pool).slot_count == limit
        assert instance.event_log_storage.get_concurrency_info("exa").slot_count == 7

    with pytest.raises(ValueError, match="must be >= 0"):
        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            pool_limits.apply_pool_limits(instance, {"exa": -1})
