"""The run queue of both instances - the laptop's (`LOCAL_INSTANCE_YAML`, what `make dev` writes)
and production's (deploy/dagster.yaml) - loaded through Dagster's own config validation, then
driven by Dagster's own dequeue logic (`QueuedRunCoordinatorDaemon`) over queued runs carrying
the tags the request sensor gives them: a rep's single "Enrich" is launched before older bulk
batches, bulk batches never take the last enrichment slot, and two tenants' bulk jobs take
turns instead of the big one starving the small one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.instance.config import dagster_instance_config
from dagster._core.remote_origin import (
    RegisteredCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster._core.test_utils import create_run_for_test
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from phronesis_dagster.demo import LOCAL_INSTANCE_YAML
from phronesis_dagster.enrichment.requests import (
    BULK,
    INTERACTIVE,
    INTERACTIVE_PRIORITY,
    Batch,
    SensorSettings,
    plan_tick,
)
from phronesis_dagster.jobs import enrichment_batch_job
from phronesis_dagster.sensors.enrichment import LANE_TAG, TENANT_TAG, batch_run_request

REPO_ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_YAML = REPO_ROOT / "deploy" / "dagster.yaml"
PG_ENV = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "postgres",
    "DAGSTER_PG_PASSWORD": "",
    "DAGSTER_PG_DB": "dagster",
}
INSTANCES = ("laptop", "production")
# Where a queued run says its job lives (Dagster requires it of queued runs; the dequeue logic
# reads only the location name, to pause a location whose code server is down).
JOB_ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(
        RegisteredCodeLocationOrigin("phronesis_dagster.definitions"), "__repository__"
    ),
    enrichment_batch_job.name,
)


def _config(which: str) -> dict:
    text = LOCAL_INSTANCE_YAML if which == "laptop" else PRODUCTION_YAML.read_text()
    return yaml.safe_load(text)


@contextmanager
def queue_instance(which: str, tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    """A real instance with that configuration's run coordinator and limits. The laptop's is its
    yaml verbatim; production's keeps its queue and limits on local storage (the dequeue
    decisions do not depend on where runs are stored)."""
    if which == "laptop":
        (tmp_path / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            yield instance
        return
    config = _config(which)
    overrides = {key: config[key] for key in ("run_coordinator", "concurrency")}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        yield instance


def limits(instance: dg.DagsterInstance) -> tuple[int, int, int]:
    """(max concurrent runs, enrichment runs, bulk enrichment runs) allowed at once."""
    queue = instance.get_concurrency_config().run_queue_config
    assert queue is not None
    by_tag = {(lim["key"], lim.get("value")): lim["limit"] for lim in queue.tag_concurrency_limits}
    return (
        queue.max_concurrent_runs,
        by_tag[("phronesis/domain", "enrichment")],
        by_tag[(LANE_TAG, BULK)],
    )


def queue_batch(instance: dg.DagsterInstance, batch: Batch) -> dg.DagsterRun:
    """A queued run of `batch` with the tags the real one gets: the job's and the sensor's."""
    tags = {**enrichment_batch_job.tags, **batch_run_request(batch).tags}
    return create_run_for_test(
        instance,
        job_name=enrichment_batch_job.name,
        status=dg.DagsterRunStatus.QUEUED,
        tags=tags,
        remote_job_origin=JOB_ORIGIN,
    )


def _report(instance: dg.DagsterInstance, run: dg.DagsterRun, event: DagsterEventType) -> None:
    instance.report_dagster_event(
        DagsterEvent(event_type_value=event.value, job_name=run.job_name), run_id=run.run_id
    )


def dequeue(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """One pass of the daemon's queue: the runs it launches, in order; they are then started
    (what the run worker reports once up)."""
    daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
    picked = daemon._get_runs_to_dequeue(
        instance, instance.get_concurrency_config(), fixed_iteration_time=None
    )
    for run in picked:
        _report(instance, run, DagsterEventType.RUN_START)
    return picked


def finish(instance: dg.DagsterInstance, runs: list[dg.DagsterRun]) -> None:
    for run in runs:
        _report(instance, run, DagsterEventType.RUN_SUCCESS)


def bulk(n: int, tenant: uuid.UUID, priority: int) -> Batch:
    return Batch(
        key=f"batch-{tenant.hex[:6]}-{n}",
        request_ids=(n,),
        prospect_ids=(),
        lane=BULK,
        tenant_id=tenant,
        priority=priority,
    )


def interactive(n: int) -> Batch:
    return Batch(
        key=f"batch-click-{n}",
        request_ids=(n,),
        prospect_ids=(),
        lane=INTERACTIVE,
        priority=INTERACTIVE_PRIORITY,
    )


def test_both_instances_pass_dagsters_validation_with_a_slot_bulk_runs_cannot_take(
    tmp_path: Path, monkeypatch
) -> None:
    # Production's file as a whole (storage included) through Dagster's own validation.
    home = tmp_path / "production"
    home.mkdir()
    (home / "dagster.yaml").write_text(PRODUCTION_YAML.read_text())
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    validated, _ = dagster_instance_config(str(home))
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"

    for which in INSTANCES:
        (tmp_path / which).mkdir(exist_ok=True)
        with queue_instance(which, tmp_path / which) as instance:
            assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
            # A click waits for at most one dequeue interval once its run is queued.
            assert instance.run_coordinator.dequeue_interval_seconds <= 1
            most, enrichment, bulk_limit = limits(instance)
            assert bulk_limit < enrichment <= most, (which, most, enrichment, bulk_limit)


@pytest.mark.parametrize("which", INSTANCES)
def test_a_click_is_launched_before_older_bulk_batches_which_never_take_the_last_slot(
    which: str, tmp_path: Path
) -> None:
    with queue_instance(which, tmp_path) as instance:
        _, enrichment, bulk_limit = limits(instance)
        tenant = uuid.uuid4()
        for n in range(bulk_limit + 5):
            queue_batch(instance, bulk(n, tenant, -n))

        first = dequeue(instance)
        assert [r.tags[LANE_TAG] for r in first] == [BULK] * bulk_limit
        assert dequeue(instance) == [], "a bulk batch took a slot kept for clicks"

        click = queue_batch(instance, interactive(1))
        assert [r.run_id for r in dequeue(instance)] == [click.run_id]

        # If every enrichment slot is busy now, the next click waits, and the first slot that
        # frees goes to it, not to the bulk batches queued earlier.
        second = queue_batch(instance, interactive(2))
        if bulk_limit + 1 == enrichment:
            assert dequeue(instance) == []
            finish(instance, first[:1])
        assert [r.run_id for r in dequeue(instance)] == [second.run_id]


@pytest.mark.parametrize("which", INSTANCES)
def test_three_clicks_in_a_row_are_launched_together_while_bulk_batches_hold_theirs(
    which: str, tmp_path: Path
) -> None:
    # Clicks 3 s apart each get a run (the interactive sensor batches a click as it commits),
    # and a click's run lives ~9 s under a bulk job: three are in flight at once.
    with queue_instance(which, tmp_path) as instance:
        _, _, bulk_limit = limits(instance)
        tenant = uuid.uuid4()
        for n in range(bulk_limit + 5):
            queue_batch(instance, bulk(n, tenant, -n))
        assert len(dequeue(instance)) == bulk_limit

        clicks = [queue_batch(instance, interactive(n)) for n in range(3)]
        assert sorted(r.run_id for r in dequeue(instance)) == sorted(c.run_id for c in clicks)


def _rows(tenant: uuid.UUID, n: int, first_id: int) -> list[dict]:
    """Pending request rows of one tenant's bulk job, as `load_pending` returns them."""
    job = uuid.uuid4()
    rows = []
    for i in range(n):
        prospect = uuid.uuid4()
        rows.append(
            {
                "id": first_id + i,
                "tenant_id": tenant,
                "prospect_id": prospect,
                "job_id": job,
                "force": False,
                "busy": False,
                "p_id": prospect,
                "p_tenant_id": tenant,
                "p_name": f"Person {i}",
                "p_company": "Acme",
                "p_status": "pending",
                "p_last_enriched_at": None,
                "p_public": False,
            }
        )
    return rows


@pytest.mark.parametrize("which", INSTANCES)
def test_a_small_tenants_bulk_job_is_not_starved_by_a_big_one_queued_before_it(
    which: str, tmp_path: Path
) -> None:
    big, small = uuid.uuid4(), uuid.uuid4()
    settings = SensorSettings()
    now = datetime.now(UTC)
    with queue_instance(which, tmp_path) as instance:
        _, _, bulk_limit = limits(instance)
        # The sensor's first tick sees only the big tenant's 1,500 prospects (15 batches)...
        rows = _rows(big, 1_500, 1)
        plan = plan_tick(rows, settings, now=now, limit=5_000)
        for batch in plan.batches:
            queue_batch(instance, batch)
        launched = dequeue(instance)
        # ...the small tenant's 300 arrive at the next tick, behind 15 - 3 queued big batches.
        rows = _rows(small, 300, 10_000)
        plan = plan_tick(rows, settings, now=now, limit=5_000, outstanding={big: 15})
        for batch in plan.batches:
            queue_batch(instance, batch)
        while True:
            finish(instance, launched)
            picked = dequeue(instance)
            if not picked:
                break
            launched += picked

    order = [r.tags[TENANT_TAG] for r in launched]
    assert sorted(order) == sorted([str(big)] * 15 + [str(small)] * 3)
    # The big tenant's first wave was not cut short, and the small tenant's three batches are
    # the very next wave, while 12 big batches queued before them still wait.
    assert order[:bulk_limit] == [str(big)] * bulk_limit
    assert order[bulk_limit : 2 * bulk_limit] == [str(small)] * 3, order
