"""The batch-partition retention sensor on a real PostgreSQL app database and a Dagster test
instance: finished batches older than the retention lose their partition, open or recent ones
keep it, and the runs recorded under a retired partition stay in the run history."""

from __future__ import annotations

import uuid
from datetime import timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.partitions import enrichment_batch_partitions
from phronesis_dagster.enrichment.requests import utcnow
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.batch_retention import (
    RETENTION_DAYS_ENV,
    build_batch_retention_sensor,
    retention_from_env,
)

PARTITIONS = enrichment_batch_partitions.name

# batch key -> request (status, age in days) rows under it
BATCHES: dict[str, list[tuple[str, float]]] = {
    "old-done": [("done", 40), ("failed", 41), ("rejected", 45)],
    "old-but-one-open": [("done", 40), ("running", 40)],
    "recent-done": [("done", 2)],
    "old-queued": [("queued", 60)],
}
ORPHAN = "no-requests-left"


def _seed(app_db: AppDatabase) -> None:
    now = utcnow()
    with app_db.begin() as conn:
        for key, rows in BATCHES.items():
            for status, days in rows:
                conn.execute(
                    sa.text(
                        "INSERT INTO enrichment_requests (tenant_id, prospect_id, status, "
                        "batch_key, created_at, updated_at) VALUES (:t, :p, :s, :k, :at, :at)"
                    ),
                    {
                        "t": uuid.uuid4(),
                        "p": uuid.uuid4(),
                        "s": status,
                        "k": key,
                        "at": now - timedelta(days=days),
                    },
                )


def _tick(instance: dg.DagsterInstance, app_db: AppDatabase, **kwargs) -> dg.SensorResult:
    sensor = build_batch_retention_sensor(timedelta(days=30), **kwargs)
    result = sensor(dg.build_sensor_context(instance=instance, resources={"app_db": app_db}))
    assert isinstance(result, dg.SensorResult)
    return result


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    # What the sensor daemon does with the sensor's delete request.
    for request in result.dynamic_partitions_requests or []:
        assert isinstance(request, dg.DeleteDynamicPartitionsRequest)
        for key in request.partition_keys:
            instance.delete_dynamic_partition(request.partitions_def_name, key)


def test_retires_only_finished_batches_older_than_the_retention(app_db, instance):
    _seed(app_db)
    instance.add_dynamic_partitions(PARTITIONS, [*BATCHES, ORPHAN])

    result = _tick(instance, app_db)

    (delete,) = result.dynamic_partitions_requests
    assert delete.partitions_def_name == PARTITIONS
    assert sorted(delete.partition_keys) == sorted(["old-done", ORPHAN])
    _apply(instance, result)
    assert sorted(instance.get_dynamic_partitions(PARTITIONS)) == sorted(
        ["old-but-one-open", "recent-done", "old-queued"]
    )
    # Nothing left to retire: the next tick says why it did nothing.
    again = _tick(instance, app_db)
    assert not again.dynamic_partitions_requests
    assert "3 batch partitions" in again.skip_reason.skip_message


def test_a_retired_batch_keeps_its_runs_and_the_partitioned_asset_still_resolves(app_db, instance):
    _seed(app_db)
    instance.add_dynamic_partitions(PARTITIONS, ["old-done", "recent-done"])

    @dg.asset(partitions_def=enrichment_batch_partitions)
    # Unannotated: under `from __future__ import annotations` Dagster cannot resolve a local
    # function's annotation string.
    def batch_marker(context) -> None:
        context.log.info(f"batch {context.partition_key}")

    for key in ("old-done", "recent-done"):
        assert dg.materialize([batch_marker], instance=instance, partition_key=key).success

    _apply(instance, _tick(instance, app_db))

    assert instance.get_dynamic_partitions(PARTITIONS) == ["recent-done"]
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": "old-done"}))
    assert len(runs) == 1 and runs[0].is_success
    # The asset's partition status, what the UI's partition bar reads, no longer lists it.
    materialized = instance.get_materialized_partitions(batch_marker.key)
    assert "recent-done" in materialized


def test_caps_the_partitions_retired_per_tick(app_db, instance):
    keys = [f"gone-{i:03d}" for i in range(12)]
    instance.add_dynamic_partitions(PARTITIONS, keys)

    result = _tick(instance, app_db, max_per_tick=5)

    assert len(result.dynamic_partitions_requests[0].partition_keys) == 5


def test_retention_setting_is_validated():
    assert retention_from_env({}) == timedelta(days=30)
    assert retention_from_env({RETENTION_DAYS_ENV: "7.5"}) == timedelta(days=7.5)
    with pytest.raises(ValueError, match=RETENTION_DAYS_ENV):
        retention_from_env({RETENTION_DAYS_ENV: "a month"})
    with pytest.raises(ValueError, match="negative"):
        retention_from_env({RETENTION_DAYS_ENV: "-1"})
