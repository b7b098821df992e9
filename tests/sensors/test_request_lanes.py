"""The two request sensors of the daemon - `enrichment_interactive_sensor` (a rep's clicks) and
`enrichment_request_sensor` (bulk jobs) - on a real PostgreSQL database: each batches and
re-emits only its own lane, they plan one at a time, and an idle interactive tick batches a click
as soon as it commits (migration 0007's NOTIFY) instead of at the next tick."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from phronesis_dagster.db.listen import ENRICHMENT_REQUESTS_CHANNEL, listening
from phronesis_dagster.enrichment.requests import (
    BULK,
    INTERACTIVE,
    LANE_TAG,
    enqueue_enrichment,
    lock_planning,
)
from phronesis_dagster.sensors.enrichment import (
    ENRICHMENT_SENSORS,
    TICK_WAIT_ENV,
    enrichment_interactive_2_sensor,
    enrichment_interactive_sensor,
    enrichment_request_sensor,
    tick_wait_seconds,
)
from tests.enrichment.fixtures import add_prospects, add_tenant, requests_by_id, tick

# A budget far above how long a woken tick takes, so "returned early" cannot be luck.
LONG_WAIT_S = 8.0
CLICK_AFTER_S = 0.5


def test_the_daemon_runs_two_interactive_request_sensors_and_one_bulk():
    names = {s.name for s in ENRICHMENT_SENSORS}
    assert {
        "enrichment_interactive_sensor",
        "enrichment_interactive_2_sensor",
        "enrichment_request_sensor",
    } <= names


def test_each_sensor_batches_and_re_emits_only_its_own_lane(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    bulk_ids = add_prospects(engine, tenant, 4)
    clicked = bulk_ids[0]  # also in the bulk job: the click takes its bulk request along
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=bulk_ids)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[clicked])

    bulk_tick = tick(enrichment_request_sensor, instance, app_db)
    (bulk_run,) = bulk_tick.run_requests
    assert bulk_run.tags[LANE_TAG] == BULK
    assert bulk_run.tags["phronesis/batch_prospects"] == "3"
    rows = requests_by_id(engine).values()
    assert {r.status for r in rows if r.prospect_id == clicked} == {"pending"}

    click_tick = tick(enrichment_interactive_sensor, instance, app_db)
    (click_run,) = click_tick.run_requests
    assert click_run.tags[LANE_TAG] == INTERACTIVE
    clicked_rows = [r for r in requests_by_id(engine).values() if r.prospect_id == clicked]
    assert len(clicked_rows) == 2  # the bulk request and the click, one batch
    assert {(r.status, r.batch_key) for r in clicked_rows} == {("queued", click_run.run_key)}

    # Next ticks: each sensor re-emits its own queued batch (same run key), never the other's,
    # whose run key Dagster would not recognise as already launched.
    again_bulk = tick(enrichment_request_sensor, instance, app_db, bulk_tick.cursor)
    again_click = tick(enrichment_interactive_sensor, instance, app_db, click_tick.cursor)
    assert [r.run_key for r in again_bulk.run_requests] == [bulk_run.run_key]
    assert [r.run_key for r in again_click.run_requests] == [click_run.run_key]


def test_a_sensor_waits_for_the_other_to_finish_planning(app_db, instance):
    engine = app_db.engine
    tenant = add_tenant(engine)
    (pid,) = add_prospects(engine, tenant, 1)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[pid])
    results: list[dg.SensorResult] = []

    with engine.begin() as holder:
        lock_planning(holder)  # as the other sensor's planning pass holds it
        worker = threading.Thread(
            target=lambda: results.append(tick(enrichment_interactive_sensor, instance, app_db))
        )
        worker.start()
        worker.join(1.0)
        assert worker.is_alive() and not results
    worker.join(10)
    assert len(results[0].run_requests) == 1


def test_an_idle_interactive_tick_batches_a_click_as_soon_as_it_commits(
    app_db, instance, monkeypatch
):
    monkeypatch.setenv(TICK_WAIT_ENV, str(LONG_WAIT_S))
    engine = app_db.engine
    tenant = add_tenant(engine)
    (pid,) = add_prospects(engine, tenant, 1)
    results: list[dg.SensorResult] = []
    worker = threading.Thread(
        target=lambda: results.append(tick(enrichment_interactive_sensor, instance, app_db))
    )
    worker.start()
    time.sleep(CLICK_AFTER_S)
    clicked_at = time.monotonic()
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[pid])
    worker.join(LONG_WAIT_S + 5)

    took = time.monotonic() - clicked_at
    (run,) = results[0].run_requests
    assert run.tags[LANE_TAG] == INTERACTIVE
    assert took < LONG_WAIT_S / 2, f"the click waited {took:.1f} s for the tick"
    assert {r.status for r in requests_by_id(engine).values()} == {"queued"}


def test_two_clicks_in_a_row_are_batched_at_once_by_the_two_listening_sensors(
    app_db, instance, monkeypatch
):
    # The first woken tick ends with its click; the other interactive sensor, still listening,
    # takes the next one. Each re-emits only the batch it made.
    monkeypatch.setenv(TICK_WAIT_ENV, str(LONG_WAIT_S))
    engine = app_db.engine
    tenant = add_tenant(engine)
    first, second = add_prospects(engine, tenant, 2)
    sensors = (enrichment_interactive_sensor, enrichment_interactive_2_sensor)
    results: dict[str, dg.SensorResult] = {}
    workers = [
        threading.Thread(target=lambda s=s: results.__setitem__(s.name, tick(s, instance, app_db)))
        for s in sensors
    ]
    for worker in workers:
        worker.start()
    time.sleep(CLICK_AFTER_S)
    clicked_at = time.monotonic()
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[first])
    time.sleep(CLICK_AFTER_S)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[second])
    for worker in workers:
        worker.join(LONG_WAIT_S + 5)

    took = time.monotonic() - clicked_at
    assert took < LONG_WAIT_S / 2, f"the clicks waited {took:.1f} s for the ticks"
    keys = {name: [r.run_key for r in res.run_requests] for name, res in results.items()}
    assert sorted(len(k) for k in keys.values()) == [1, 1], keys
    assert keys["enrichment_interactive_2_sensor"][0].startswith("batch2-")
    assert keys["enrichment_interactive_sensor"][0].startswith("batch-")
    assert {r.status for r in requests_by_id(engine).values()} == {"queued"}

    monkeypatch.setenv(TICK_WAIT_ENV, "0")
    for sensor in sensors:
        again = tick(sensor, instance, app_db, results[sensor.name].cursor)
        assert [r.run_key for r in again.run_requests] == keys[sensor.name]


def test_a_bulk_job_does_not_wake_the_interactive_tick(app_db, instance, monkeypatch):
    wait_s = 1.5
    monkeypatch.setenv(TICK_WAIT_ENV, str(wait_s))
    engine = app_db.engine
    tenant = add_tenant(engine)
    pids = add_prospects(engine, tenant, 3)
    results: list[dg.SensorResult] = []
    started = time.monotonic()
    worker = threading.Thread(
        target=lambda: results.append(tick(enrichment_interactive_sensor, instance, app_db))
    )
    worker.start()
    time.sleep(0.3)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=pids)
    worker.join(wait_s + 5)

    assert time.monotonic() - started >= wait_s
    assert not results[0].run_requests
    assert {r.status for r in requests_by_id(engine).values()} == {"pending"}


def test_only_a_request_without_a_job_notifies(app_db):
    engine = app_db.engine
    tenant = add_tenant(engine)
    a, b, c = add_prospects(engine, tenant, 3)

    with listening(app_db.database_url, ENRICHMENT_REQUESTS_CHANNEL) as listener:
        enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[a, b])
        assert not listener.wait(0.5)
        enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[c])
        assert listener.wait(2.0)


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, 3.0), ({TICK_WAIT_ENV: ""}, 3.0), ({TICK_WAIT_ENV: "0"}, 0.0)],
)
def test_tick_wait_from_env(env, expected):
    assert tick_wait_seconds(env) == expected


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_tick_wait_refuses_a_bad_value_naming_the_variable(raw):
    with pytest.raises(ValueError, match=TICK_WAIT_ENV):
        tick_wait_seconds({TICK_WAIT_ENV: raw})
