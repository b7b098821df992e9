"""Enrichment sensors: the request sensors that turn the web app's `enrichment_requests` rows into
batch partitions and runs - one for the bulk lane, one for the interactive lane (a rep's click) -
and the run-status sensors that close a batch whose run failed or was canceled, so nothing stays
`in_progress`."""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from datetime import timedelta

import dagster as dg

from phronesis_dagster.assets.enrichment.partitions import (
    BATCH_TAG,
    PARTITION_TAG,
    enrichment_batch_partitions,
)
from phronesis_dagster.db.listen import ENRICHMENT_REQUESTS_CHANNEL, listening
from phronesis_dagster.enrichment.requests import (
    ALL_LANES,
    BULK,
    DEFAULT_BATCH_SIZE,
    DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_REQUESTS_PER_TICK,
    DEFAULT_STALENESS,
    INTERACTIVE,
    LANE_TAG,
    Batch,
    SensorSettings,
    TickPlan,
    apply_plan,
    cursor_after_id,
    load_pending,
    lock_planning,
    outstanding_bulk_batches,
    plan_tick,
    queued_batches,
    utcnow,
)
from phronesis_dagster.enrichment.store import fail_batch
from phronesis_dagster.jobs import enrichment_batch_job
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.env import non_negative_number
from phronesis_dagster.sensors.recovery import enrichment_recovery_sensor, retry_will_follow

ENRICHMENT_REQUEST_SENSOR = "enrichment_request_sensor"
ENRICHMENT_INTERACTIVE_SENSOR = "enrichment_interactive_sensor"
ENRICHMENT_INTERACTIVE_2_SENSOR = "enrichment_interactive_2_sensor"
# The second interactive sensor's batch keys (`batch2-<first request id>`).
INTERACTIVE_2_KEY_PREFIX = "batch2"
# All of them, interactive first: what the local runner ticks.
REQUEST_SENSOR_NAMES = (
    ENRICHMENT_INTERACTIVE_SENSOR,
    ENRICHMENT_INTERACTIVE_2_SENSOR,
    ENRICHMENT_REQUEST_SENSOR,
)
BATCH_SIZE_ENV = "PHRONESIS_ENRICHMENT_BATCH_SIZE"
STALENESS_DAYS_ENV = "PHRONESIS_ENRICHMENT_STALENESS_DAYS"
MAX_REQUESTS_PER_TICK_ENV = "PHRONESIS_ENRICHMENT_MAX_REQUESTS_PER_TICK"
# Dagster's sensor daemon looks at its sensors once a loop, every 5 s (MIN_INTERVAL_LOOP_TIME in
# dagster/_daemon/sensor.py), and skips one whose last tick *ended* less than its interval ago.
# An interval of 5 s was therefore 10 s in practice (the next loop comes 5 s after the last
# tick *started*): ticks 9.7 s apart on a quiet machine, a click's sensor wait p50 4.7 s, p95
# 8.7 s (bench/latency.py --mode single, 2026-12-03). Below the loop time, the sensor ticks at
# every loop. (With a 30 s interval a single click waited 17-31 s before its run even started.)
DEFAULT_INTERVAL_SECONDS = 2
# A tick of the interactive sensor that finds nothing to batch LISTENs for a click (migration
# 0007's NOTIFY) for up to this long, and batches one that arrives at once: the daemon starts a
# tick only once a loop (5 s), so a click arriving just after a tick waited ~5 s for the next
# one. 3 s leaves the tick 2 s under the loop time: a tick still running when the next loop
# comes is skipped for that loop (one tick per sensor in flight, dagster/_daemon/sensor.py).
# Tests and the local runner set 0 (no wait).
TICK_WAIT_ENV = "PHRONESIS_ENRICHMENT_TICK_WAIT_SECONDS"
DEFAULT_TICK_WAIT_SECONDS = 3.0
TENANT_TAG = "phronesis/tenant_id"
PRIORITY_TAG = "dagster/priority"


def settings_from_env(env: dict[str, str] | None = None) -> SensorSettings:
    """Sensor settings from `PHRONESIS_ENRICHMENT_*` variables (defaults: 100 per batch, 7 days,
    5,000 requests per tick). A malformed value is an error naming the variable."""
    env = dict(os.environ) if env is None else env

    def number(name: str, default: float, cast: type) -> float:
        raw = env.get(name)
        if raw in (None, ""):
            return default
        try:
            return cast(raw)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {raw!r}") from None

    return SensorSettings(
        batch_size=int(number(BATCH_SIZE_ENV, DEFAULT_BATCH_SIZE, int)),
        staleness=timedelta(
            days=number(STALENESS_DAYS_ENV, DEFAULT_STALENESS.total_seconds() / 86400, float)
        ),
        max_requests_per_tick=int(
            number(MAX_REQUESTS_PER_TICK_ENV, DEFAULT_MAX_REQUESTS_PER_TICK, int)
        ),
    )


def tick_wait_seconds(env: dict[str, str] | None = None) -> float:
    """`PHRONESIS_ENRICHMENT_TICK_WAIT_SECONDS` (default 3): how long an idle interactive tick
    listens for a click. A malformed or negative value is an error naming the variable."""
    return non_negative_number(TICK_WAIT_ENV, DEFAULT_TICK_WAIT_SECONDS, unit="seconds", env=env)


def queue_pending(
    app_db: AppDatabase,
    settings: SensorSettings,
    *,
    lane: str,
    after_id: int,
    key_prefix: str = DEFAULT_KEY_PREFIX,
) -> tuple[TickPlan, list[Batch]]:
    """One planning pass of a request sensor, in one transaction under the planning lock: the
    batches of `lane` this sensor (`key_prefix`) queued in earlier ticks whose run has not
    started (to re-emit), then its pending requests planned and written. Returns the plan and
    the batches to re-emit."""
    now = utcnow()
    limit = settings.max_requests_per_tick
    with app_db.engine.begin() as conn:
        lock_planning(conn)
        # Before this pass's own updates, so only batches queued by earlier ticks come back.
        stale = queued_batches(
            conn, limit=settings.max_reemit_per_tick, lane=lane, key_prefix=key_prefix
        )
        rows = load_pending(conn, after_id=after_id, limit=limit, lane=lane)
        outstanding = outstanding_bulk_batches(conn) if rows else {}
        plan = plan_tick(
            rows,
            settings,
            now=now,
            limit=limit,
            outstanding=outstanding,
            lane=lane,
            key_prefix=key_prefix,
        )
        apply_plan(conn, plan, now=now)
    return plan, stale


def batch_run_request(batch: Batch) -> dg.RunRequest:
    """The run of one batch. run_key = batch key: a re-emitted request for a batch that already
    has a run is dropped by Dagster, so a batch never runs twice from the sensor. The lane and
    priority tags let the run queue launch interactive batches first and take turns between
    tenants' bulk batches (deploy/dagster.yaml keeps a run slot free of bulk runs)."""
    tags = {
        BATCH_TAG: batch.key,
        "phronesis/batch_prospects": str(len(batch.prospect_ids)),
        LANE_TAG: batch.lane,
        PRIORITY_TAG: str(batch.priority),
    }
    if batch.tenant_id is not None:
        tags[TENANT_TAG] = str(batch.tenant_id)
    return dg.RunRequest(run_key=batch.key, partition_key=batch.key, tags=tags)


REQUEST_SENSOR_DESCRIPTION = (
    "Turns pending `enrichment_requests` into batches: rejects bad requests with a reason, marks "
    "requests for freshly enriched prospects done (unless force), coalesces duplicates, leaves a "
    "prospect that another batch is enriching for a later tick, then adds one dynamic partition "
    "and launches one run (run_key = batch key) per batch of up to `batch_size` prospects. Also "
    "re-launches batches that are queued in the database but whose run request was lost."
)
LANE_DESCRIPTIONS = {
    ALL_LANES: "",
    BULK: (
        "Bulk lane: the requests of bulk jobs. A prospect a rep has clicked is left to "
        f"{ENRICHMENT_INTERACTIVE_SENSOR}."
    ),
    INTERACTIVE: (
        'Interactive lane: a rep\'s single "Enrich" (requests without a job, with the same '
        "prospect's bulk requests). A tick with nothing to batch listens for a click for up to "
        f"{TICK_WAIT_ENV} (3 s) and batches it as soon as it commits."
    ),
}


def build_enrichment_request_sensor(
    settings: SensorSettings | None = None,
    *,
    name: str = ENRICHMENT_REQUEST_SENSOR,
    lane: str = ALL_LANES,
    key_prefix: str = DEFAULT_KEY_PREFIX,
    minimum_interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A request sensor for the requests of `lane` (`all` by default: tests, benchmarks) with
    explicit settings; `settings_from_env()` when None. An `interactive` one listens for a click
    while it has nothing to batch (`PHRONESIS_ENRICHMENT_TICK_WAIT_SECONDS`). Its batch keys
    start with `key_prefix`: two sensors of one lane need different ones."""

    @dg.sensor(
        name=name,
        job=enrichment_batch_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=f"{REQUEST_SENSOR_DESCRIPTION}\n\n{LANE_DESCRIPTIONS[lane]}".strip(),
    )
    def _sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SensorResult:
        tick_settings = settings or settings_from_env()
        started = time.perf_counter()
        after_id = cursor_after_id(context.cursor)
        wait = tick_wait_seconds() if lane == INTERACTIVE else 0.0
        waited = 0.0
        # LISTEN before the first pass: a click committed while it runs is not missed.
        with (
            listening(app_db.database_url, ENRICHMENT_REQUESTS_CHANNEL)
            if wait > 0
            else nullcontext()
        ) as listener:
            plan, stale = queue_pending(
                app_db, tick_settings, lane=lane, after_id=after_id, key_prefix=key_prefix
            )
            deadline = time.perf_counter() + wait
            while listener is not None and not plan.batches:
                before = time.perf_counter()
                if not listener.wait(deadline - before):
                    waited += time.perf_counter() - before
                    break
                waited += time.perf_counter() - before
                after_id = plan.next_after_id
                plan, stale = queue_pending(
                    app_db, tick_settings, lane=lane, after_id=after_id, key_prefix=key_prefix
                )

        run_requests = [batch_run_request(b) for b in (*stale, *plan.batches)]
        seconds = time.perf_counter() - started
        cursor = json.dumps(
            {
                "after_id": plan.next_after_id,
                "last_tick_at": utcnow().isoformat(),
                "last_scanned": plan.scanned,
                "last_tick_seconds": round(seconds, 3),
            }
        )
        summary = (
            f"scanned {plan.scanned} pending request(s) after id {after_id}: "
            f"{len(plan.batches)} new batch(es), {len(stale)} re-emitted, "
            f"{len(plan.rejected)} rejected, {len(plan.fresh)} already fresh, "
            f"{plan.deferred} waiting for a running enrichment ({seconds:.2f}s"
            + (f", {waited:.2f}s of it listening for a click)" if wait > 0 else ")")
        )
        context.log.info(summary)
        if not run_requests:
            reason = (
                "No pending enrichment requests."
                if not plan.scanned
                else f"No batch to run: {summary}."
            )
            return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor)
        return dg.SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=[
                enrichment_batch_partitions.build_add_request(
                    [r.partition_key for r in run_requests]
                )
            ],
            cursor=cursor,
        )

    return _sensor


# The two lanes have a sensor each: the tick that queues a big bulk job's batches (~10 s in the
# daemon for 21 runs, bench/latency.py) never holds up a click, and the interactive sensor's tick
# stays small enough to listen for clicks in between (migration 0007). They plan one at a time
# (`lock_planning`), and each re-emits only the batches it made (Dagster de-duplicates run keys
# per sensor).
# Two interactive sensors, alike: the daemon starts both at each loop; whichever plans first
# takes the clicks that came since the last tick, and the other, finding none, listens. A tick
# that batched a click ends there, and the daemon starts the next only at the next loop, 5 s on:
# with one sensor, clicks 3 s apart always found the last tick over (bench/latency.py --mode
# bulk: no tick ever listened, sensor wait p95 5 s). Each re-emits only its own batches, told
# apart by their key prefix.
enrichment_request_sensor = build_enrichment_request_sensor(lane=BULK)
enrichment_interactive_sensor = build_enrichment_request_sensor(
    name=ENRICHMENT_INTERACTIVE_SENSOR, lane=INTERACTIVE
)
enrichment_interactive_2_sensor = build_enrichment_request_sensor(
    name=ENRICHMENT_INTERACTIVE_2_SENSOR, lane=INTERACTIVE, key_prefix=INTERACTIVE_2_KEY_PREFIX
)


def _run_error(context: dg.RunStatusSensorContext) -> str:
    """The run's error in one line: the failing step's error if there is one."""
    if isinstance(context, dg.RunFailureSensorContext):
        for event in context.get_step_failure_events():
            data = event.step_failure_data
            if data is not None and data.error is not None:
                # Dagster wraps the user's exception; its cause is what a person needs to read.
                error = data.error
                while error.cause is not None:
                    error = error.cause
                return f"step {event.step_key} failed: {error.message.strip()}"
        if context.failure_event.message:
            return context.failure_event.message
    return f"run {context.dagster_run.status.value.lower()}"


def close_failed_run(
    context: dg.RunStatusSensorContext, app_db: AppDatabase
) -> dg.SkipReason | None:
    """Mark the batch of a failed or canceled run failed (prospects, requests, jobs)."""
    run = context.dagster_run
    batch_key = run.tags.get(PARTITION_TAG) or run.tags.get(BATCH_TAG)
    if not batch_key:
        return dg.SkipReason(f"run {run.run_id} has no batch partition tag")
    if retry_will_follow(context.instance, run):
        return dg.SkipReason(f"{batch_key}: run {run.run_id} failed; Dagster retries it")
    error = _run_error(context)
    n = fail_batch(app_db.engine, batch_key, error=error, run_id=run.run_id, now=utcnow())
    context.log.info(
        f"{batch_key}: run {run.run_id} ended {run.status.value}; {n} prospect(s) "
        f"marked failed: {error}"
    )
    return None


@dg.run_failure_sensor(
    name="enrichment_run_failure_sensor",
    monitored_jobs=[enrichment_batch_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def enrichment_run_failure_sensor(context: dg.RunFailureSensorContext, app_db: AppDatabase):
    """When an enrichment batch run fails and no run retry follows, marks the batch's prospects that
    are still `in_progress` as `failed`, its open requests `failed` with the run's error, and
    refreshes the bulk jobs - what the old system's `onFailure` did."""
    return close_failed_run(context, app_db)


@dg.run_status_sensor(
    name="enrichment_run_canceled_sensor",
    run_status=dg.DagsterRunStatus.CANCELED,
    monitored_jobs=[enrichment_batch_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def enrichment_run_canceled_sensor(context: dg.RunStatusSensorContext, app_db: AppDatabase):
    """When an enrichment batch run is canceled, marks the batch's `in_progress` prospects and
    open requests `failed` ("run canceled") and refreshes the bulk jobs."""
    return close_failed_run(context, app_db)


ENRICHMENT_SENSORS = [
    enrichment_interactive_sensor,
    enrichment_interactive_2_sensor,
    enrichment_request_sensor,
    enrichment_run_failure_sensor,
    enrichment_run_canceled_sensor,
    enrichment_recovery_sensor,
]
