"""Recovery of enrichment batches whose run process died: `enrichment_recovery_sensor`, and
`retry_will_follow`, which the run-failure sensor asks before it closes a batch.

Who notices a dead run, by where it ran (docs/architecture.md, "Recovery"):

- a run subprocess of a live code server (the laptop's DefaultRunLauncher): the code server
  sees its child die and fails the run;
- a Kubernetes run pod (K8sRunLauncher): run monitoring checks the pod and fails the run;
- everything else (the code server died with its runs, `dagster job execute`, a lost host):
  this sensor, from the batch's heartbeat (`enrichment/heartbeat.py`): a STARTED run silent
  for longer than the silence bound is failed.

A failed run is then Dagster's business: run retries (`run_retries` in the instance, the job's
`dagster/max_retries` and `dagster/retry_strategy: FROM_FAILURE` tags) re-execute it, and the
stored source results keep finished sources from being called again. The failure sensor
closes the batch only when no retry will follow; this sensor also closes a batch left
`running` behind a run chain that is over (a retry that could not be launched, a run failed
while no daemon was retrying).

Dagster's retry daemon (EventLogConsumerDaemon, Dagster 1.13) can lose a retry it promised. It
reads the RUN_FAILURE events newer than its cursor, then their runs; the instance stores the
event a moment before it sets the run's status to FAILURE and tags it `dagster/will_retry`
(`DagsterInstance.handle_new_event`: 9 ms median, 62 ms at most with two busy cores, on the
laptop's SQLite storage). A daemon iteration in between sees the run still STARTED, does not
retry it, and moves its cursor past the event for good: the run ends FAILURE, tagged
`dagster/will_retry: true`, with no retry. Once in 5 s it would be rare, but the daemon's loops
start together, so after a daemon restart this sensor's failures land next to the retry daemon's
reads (each one in the recovery test was retried 5.1-7.4 s after it: the read just before had
missed it). So this sensor reports the failure of such a run again, a silence bound after it:
the daemon reads it (the run is FAILURE by then) and launches the retry. The batch is closed
only after `MAX_RETRY_NUDGES` reminders went unanswered.
"""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.db.sql_files import load_sql
from phronesis_dagster.enrichment.heartbeat import silence_seconds
from phronesis_dagster.enrichment.requests import utcnow
from phronesis_dagster.enrichment.store import fail_batch
from phronesis_dagster.jobs import enrichment_batch_job
from phronesis_dagster.resources.app_db import AppDatabase

ENRICHMENT_RECOVERY_SENSOR = "enrichment_recovery_sensor"
INTERVAL_SECONDS_ENV = "PHRONESIS_RECOVERY_INTERVAL_SECONDS"
DEFAULT_INTERVAL_SECONDS = 15
# Dagster's own run tags (dagster._core.storage.tags), spelled out: the public API has no names
# for them. WILL_RETRY is set on a failed run when the failure is stored (from
# `dagster/max_retries`, the run group's size and the failure reason); AUTO_RETRY_RUN_ID once
# the daemon launched the retry.
WILL_RETRY_TAG = "dagster/will_retry"
AUTO_RETRY_RUN_ID_TAG = "dagster/auto_retry_run_id"
FAILURE_REASON_TAG = "dagster/failure_reason"
HEARTBEAT_KEEP_DAYS = 7
MAX_BATCHES_PER_TICK = 500
# How many times the failure of a run whose promised retry never came is reported again before
# its batch is closed; counted in a run tag, so that every daemon process sees the same count. A
# reminder cannot be lost the way the first failure was (the run is FAILURE before its new event
# is stored); the second one covers a daemon started meanwhile without a cursor, which skips
# the events older than its start.
RETRY_NUDGES_TAG = "phronesis/retry_nudges"
MAX_RETRY_NUDGES = 2
# Reminders are a silence bound apart (60 s; 300 s in Kubernetes): failed runs of the last day
# cover every run still owed one.
NUDGE_LOOKBACK = timedelta(days=1)


def retry_will_follow(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """True when Dagster will re-execute this failed run (or already has): its batch must stay
    open. Reads the run afresh, since the tags are added after the failure event is stored."""
    fresh = instance.get_run_by_id(run.run_id) or run
    if fresh.status != dg.DagsterRunStatus.FAILURE:
        return False
    if fresh.tags.get(AUTO_RETRY_RUN_ID_TAG):
        return True
    tag = fresh.tags.get(WILL_RETRY_TAG)
    if tag is not None:
        return tag.lower() == "true"
    if not instance.run_retries_enabled:
        return False
    # The tag is not there yet: ask the function Dagster itself decides with.
    from dagster._core.events import RunFailureReason
    from dagster._core.execution.retries import auto_reexecution_should_retry_run

    raw = fresh.tags.get(FAILURE_REASON_TAG)
    reason = RunFailureReason(raw) if raw in RunFailureReason._value2member_map_ else None
    return bool(auto_reexecution_should_retry_run(instance, fresh, reason))


def _nudges(run: dg.DagsterRun) -> int:
    """How many times the recovery sensor already reported this run's failure again."""
    try:
        return int(run.tags.get(RETRY_NUDGES_TAG) or 0)
    except ValueError:
        return MAX_RETRY_NUDGES


def _retry_owed(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Dagster promised a retry of this failed run (`dagster/will_retry: true`) and no run of
    its group re-executes it: neither the daemon's tag nor a child run."""
    if run.tags.get(AUTO_RETRY_RUN_ID_TAG):
        return False
    if (run.tags.get(WILL_RETRY_TAG) or "").lower() != "true":
        return False
    try:
        group = instance.get_run_group(run.run_id)
    except dg.DagsterRunNotFoundError:
        return False  # its root run was deleted: Dagster cannot retry it either
    children = [r for r in (group[1] if group else []) if r.parent_run_id == run.run_id]
    return not children


def remind_lost_retries(
    instance: dg.DagsterInstance, *, bound: float
) -> list[tuple[str, str, int]]:
    """Report again the failure of each failed enrichment run whose promised retry has not been
    launched `bound` seconds after the failure (module docstring: the retry daemon lost it), at
    most `MAX_RETRY_NUDGES` times a run. The new RUN_FAILURE event is after the daemon's cursor:
    its next iteration retries the run (or, finding a retry it created but did not tag, tags and
    submits that one). Returns (batch, run_id, reminder number) of each run reminded."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(
            job_name=enrichment_batch_job.name,
            statuses=[dg.DagsterRunStatus.FAILURE],
            tags={WILL_RETRY_TAG: "true"},
            updated_after=utcnow() - NUDGE_LOOKBACK,
        ),
        limit=MAX_BATCHES_PER_TICK,
    )
    now = utcnow().timestamp()
    reminded = []
    for record in records:
        run = record.dagster_run
        ended = record.end_time or record.update_timestamp.timestamp()
        nudges = _nudges(run)
        if now - ended <= bound or nudges >= MAX_RETRY_NUDGES:
            continue
        if not _retry_owed(instance, run):
            continue
        message = (
            f"Dagster tagged this run {WILL_RETRY_TAG}=true {now - ended:.0f} s ago (bound "
            f"{bound:.0f} s) and its retry daemon launched no retry: reporting the failure again "
            f"so that the daemon reads it (reminder {nudges + 1} of {MAX_RETRY_NUDGES})."
        )
        # The count first: a sensor tick dying between the two must not remind for ever.
        instance.add_run_tags(run.run_id, {RETRY_NUDGES_TAG: str(nudges + 1)})
        instance.report_engine_event(message, run)
        instance.report_run_failed(run, message)
        reminded.append((run.tags.get("dagster/partition", "?"), run.run_id, nudges + 1))
    return reminded


def _last_of_chain(instance: dg.DagsterInstance, run_id: str) -> dg.RunRecord | None:
    """The newest run of a retry chain: follows `dagster/auto_retry_run_id` from `run_id`."""
    record = instance.get_run_record_by_id(run_id)
    seen: set[str] = set()
    while record is not None and record.dagster_run.run_id not in seen:
        seen.add(record.dagster_run.run_id)
        child = record.dagster_run.tags.get(AUTO_RETRY_RUN_ID_TAG)
        newer = instance.get_run_record_by_id(child) if child else None
        if newer is None:
            return record
        record = newer
    return record


def fail_silent_runs(
    instance: dg.DagsterInstance, engine: sa.Engine, *, bound: float
) -> list[tuple[str, str, float]]:
    """Fail every STARTED enrichment run whose heartbeat (or, before its first beat, whose
    start) is older than `bound` seconds. Returns (batch, run_id, silent seconds) of each."""
    records = list(
        instance.get_run_records(
            filters=dg.RunsFilter(
                job_name=enrichment_batch_job.name, statuses=[dg.DagsterRunStatus.STARTED]
            )
        )
    )
    if not records:
        return []
    stmt = sa.text(load_sql("recovery_run_silence")).bindparams(
        sa.bindparam("run_ids", expanding=True)
    )
    with engine.connect() as conn:
        beats = {
            r.run_id: r
            for r in conn.execute(stmt, {"run_ids": [r.dagster_run.run_id for r in records]})
        }
    now = utcnow().timestamp()
    failed = []
    for record in records:
        run = record.dagster_run
        beat = beats.get(run.run_id)
        if beat is not None:
            silent = float(beat.silent_seconds)
            seen = f"its last heartbeat (host {beat.host}, pid {beat.pid})"
        elif record.start_time is not None:
            silent = now - record.start_time
            seen = "its start, and it never sent a heartbeat"
        else:
            continue
        if silent <= bound:
            continue
        message = (
            f"No sign of life from this run for {silent:.0f} s (bound {bound:.0f} s) since "
            f"{seen}: its process is gone. Marking it failed so that run retries resume "
            "the batch from failure."
        )
        instance.report_engine_event(message, run)
        instance.report_run_failed(run, message)
        failed.append((run.tags.get("dagster/partition", "?"), run.run_id, silent))
    return failed


def close_abandoned_batches(
    instance: dg.DagsterInstance, engine: sa.Engine, *, bound: float
) -> list[tuple[str, str]]:
    """Fail the `running` requests of batches whose run chain is over with no retry coming,
    once they have been idle for `bound` seconds (the failure sensor normally does it at once;
    this catches a retry that could not be launched, or runs failed with no daemon retrying).
    Returns (batch, run_id) of each batch closed."""
    with engine.connect() as conn:
        rows = list(
            conn.execute(
                sa.text(load_sql("recovery_running_batches")), {"limit": MAX_BATCHES_PER_TICK}
            )
        )
    closed = []
    now = utcnow().timestamp()
    for row in rows:
        if float(row.idle_seconds) <= bound:
            continue
        record = _last_of_chain(instance, row.run_id)
        if record is None:
            continue  # a run of another instance (or deleted): not ours to judge
        run = record.dagster_run
        if not run.is_finished or run.status == dg.DagsterRunStatus.SUCCESS:
            continue
        ended = record.end_time or record.update_timestamp.timestamp()
        waiting = retry_will_follow(instance, run) and not run.tags.get(AUTO_RETRY_RUN_ID_TAG)
        if waiting and now - ended <= bound:
            continue  # the daemon has not launched the retry yet
        if waiting and _nudges(run) < MAX_RETRY_NUDGES and _retry_owed(instance, run):
            continue  # remind_lost_retries reports the failure again for the daemon
        error = (
            f"run {run.status.value.lower()} and no retry followed within {bound:.0f} s "
            f"({_nudges(run)} reminder(s) to the retry daemon)"
            if waiting
            else f"run {run.status.value.lower()}"
        )
        fail_batch(engine, row.batch_key, error=error, run_id=run.run_id, now=utcnow())
        closed.append((row.batch_key, run.run_id))
    return closed


def build_enrichment_recovery_sensor(
    *,
    name: str = ENRICHMENT_RECOVERY_SENSOR,
    minimum_interval_seconds: int | None = None,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """The recovery sensor; its interval from `PHRONESIS_RECOVERY_INTERVAL_SECONDS` (default
    15 s) when not given."""
    interval = minimum_interval_seconds or int(
        os.environ.get(INTERVAL_SECONDS_ENV) or DEFAULT_INTERVAL_SECONDS
    )

    @dg.sensor(name=name, minimum_interval_seconds=interval, default_status=default_status)
    def _sensor(context: dg.SensorEvaluationContext, app_db: AppDatabase) -> dg.SkipReason:
        """Finds enrichment batch runs whose process died where nothing else can tell (no
        heartbeat for longer than `PHRONESIS_RECOVERY_SILENCE_SECONDS`, default 60 s) and marks
        them failed, so that run retries resume their batch from failure; reports again the
        failure of a run whose promised retry the retry daemon lost; closes batches left
        `running` behind a run that failed with no retry coming."""
        bound = silence_seconds()
        engine = app_db.engine
        failed = fail_silent_runs(context.instance, engine, bound=bound)
        # Before the closing: a run reminded now has a fresh failure, its batch stays open.
        reminded = remind_lost_retries(context.instance, bound=bound)
        closed = close_abandoned_batches(context.instance, engine, bound=bound)
        with engine.begin() as conn:
            conn.execute(
                sa.text(load_sql("recovery_heartbeat_prune")), {"keep_days": HEARTBEAT_KEEP_DAYS}
            )
        for batch, run_id, silent in failed:
            context.log.warning(f"{batch}: run {run_id} silent for {silent:.0f} s, failed")
        for batch, run_id, n in reminded:
            context.log.warning(
                f"{batch}: run {run_id} failed and its retry never came; failure reported "
                f"again for the retry daemon ({n}/{MAX_RETRY_NUDGES})"
            )
        for batch, run_id in closed:
            context.log.warning(f"{batch}: run {run_id} is over with no retry; batch closed")
        return dg.SkipReason(
            f"{len(failed)} silent run(s) failed, {len(reminded)} lost retry(ies) reminded, "
            f"{len(closed)} abandoned batch(es) closed (silence bound {bound:.0f} s)"
        )

    return _sensor


enrichment_recovery_sensor = build_enrichment_recovery_sensor()
