"""Recovery without a human: killed enrichment runs come back on their own.

- `test_killed_run_and_killed_daemon_resume_by_themselves`: the short version of
  bench/chaos.py. `dagster-daemon run` on the project's workspace (the laptop instance: its
  WarmRunLauncher and recovery settings), a PostgreSQL app database, slow provider rate limits
  so that batches last. One batch's run process is SIGKILLed (the warm worker that forked it
  sees it die); later the daemon is SIGKILLed with its whole process group (code server, warm
  worker and runs die with it: only
  the heartbeat can tell) and started again. Every killed batch resumes within a bound, every
  request ends `done` (none is ever closed `failed` on the way), no prospect stays
  `in_progress`, no provider is called again for a source finished before a kill.
- `test_postgresql_restart_mid_batch_ends_the_same_way`: the app database is a PostgreSQL server
  of the test's own (`pg_ctl`, temp data dir, free port), restarted while a batch is being
  enriched: the batch finishes, every request `done`, nothing called twice for a finished
  source, and the heartbeat thread is alive and beating after the restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import EnrichmentRequest, EnrichmentRunHeartbeat
from phronesis_dagster.demo import LOCAL_INSTANCE_YAML
from phronesis_dagster.enrichment.heartbeat import BatchHeartbeat
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.local_runner import execute_batch
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor
from scripts.screenshot_lineage import stop
from tests.enrichment.harness import enrichment_defs
from tests.reliability.conftest import (
    assert_enrichment_invariants,
    completed_pairs,
    repeated_calls,
    seed_prospects,
)
from tests.ui.test_live_webserver import BIN, INSTANCE_YAML, REPO_ROOT, WORKSPACE, _tail

pytestmark = pytest.mark.postgres

PROSPECTS, BATCH_SIZE = 12, 6
# One request a second per provider, shared by both batches: a batch's data sources take
# ~8 s and its summaries as long, so the kills land mid-batch.
SLOW_RATES = "apollo=1,contactout=1,exa=1,edgar=1,claude=2"
# Short recovery settings: a beat a second, 8 s of silence, a recovery tick every 2 s.
RECOVERY_ENV = {
    "PHRONESIS_HEARTBEAT_SECONDS": "1",
    "PHRONESIS_RECOVERY_SILENCE_SECONDS": "8",
    "PHRONESIS_RECOVERY_INTERVAL_SECONDS": "2",
}
# Resume bounds. A run killed under a live warm worker: it fails the run at once, the retry
# daemon and the 1 s queue relaunch it (forked again, or a new process loading the code location
# when launched through the code server: a few s on a loaded machine). Killed with the daemon:
# the 8 s silence and a 2 s tick come on top.
RESUME_AFTER_RUN_KILL_S = 45
RESUME_AFTER_DAEMON_KILL_S = 60
SETTLE_TIMEOUT_S = 180
OPEN = {"pending", "queued", "running"}


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


def heartbeats(engine: sa.Engine) -> list:
    hb = EnrichmentRunHeartbeat.__table__
    with engine.connect() as conn:
        return list(conn.execute(sa.select(hb).order_by(hb.c.started_at)))


def db_now(engine: sa.Engine):
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT now()")).scalar_one()


class StatusWatch:
    """Polls the requests' statuses; remembers every status a request ever showed."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.seen: set[str] = set()

    def poll(self) -> list[str]:
        with self.engine.connect() as conn:
            statuses = list(conn.execute(sa.select(EnrichmentRequest.status)).scalars())
        self.seen |= set(statuses)
        return statuses


def wait_for(
    predicate, timeout: float, watch: StatusWatch, daemon: subprocess.Popen, log: Path
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watch.poll()
        if predicate():
            return True
        assert daemon.poll() is None, _tail(log)
        time.sleep(0.2)
    return False


def resumed_after(engine: sa.Engine, batch: str, old_runs: set[str], killed_at) -> float | None:
    """Seconds from the kill to the first heartbeat of a newer run of `batch`, if any."""
    starts = [
        h.started_at
        for h in heartbeats(engine)
        if h.batch_key == batch and h.run_id not in old_runs
    ]
    return (min(starts) - killed_at).total_seconds() if starts else None


def test_killed_run_and_killed_daemon_resume_by_themselves(pg_app_db, emulator, tmp_path):
    engine = pg_app_db.engine
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The laptop instance as `make dev` writes it, with the test's fast run queue.
    instance = {**yaml.safe_load(INSTANCE_YAML), **yaml.safe_load(LOCAL_INSTANCE_YAML)}
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance))
    log = tmp_path / "daemon.log"
    env = {
        **os.environ,
        "PHRONESIS_DATABASE_URL": pg_app_db.url,
        "PHRONESIS_DATA_DIR": str(tmp_path / "data"),
        "PHRONESIS_PROVIDER_MODE": "emulator",
        "PHRONESIS_EMULATOR_URL": emulator.url,
        "PHRONESIS_ENRICHMENT_BATCH_SIZE": str(BATCH_SIZE),
        "PHRONESIS_PROVIDER_RATE_LIMITS": SLOW_RATES,
        **RECOVERY_ENV,
    }
    tenant, ids = seed_prospects(pg_app_db, PROSPECTS, public_share=0.0)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    watch = StatusWatch(engine)
    snapshots = []  # (done pairs, emulator keys) at each kill

    daemon = start_daemon(home, env, log)
    try:
        # 1. SIGKILL one batch's run process once it has finished a few sources.
        def victim():
            done = completed_pairs(engine)
            for h in heartbeats(engine):
                if h.stopped_at is None and len(done) >= 3:
                    return h
            return None

        assert wait_for(lambda: victim() is not None, 120, watch, daemon, log), _tail(log)
        target = victim()
        snapshots.append((completed_pairs(engine), emulator.stats()["keys"]))
        os.kill(target.pid, signal.SIGKILL)
        killed_at = db_now(engine)
        old = {h.run_id for h in heartbeats(engine) if h.batch_key == target.batch_key}
        assert wait_for(
            lambda: resumed_after(engine, target.batch_key, old, killed_at) is not None,
            RESUME_AFTER_RUN_KILL_S,
            watch,
            daemon,
            log,
        ), f"the killed batch never resumed\n{_tail(log)}"
        first_resume = resumed_after(engine, target.batch_key, old, killed_at)

        # 2. SIGKILL the daemon with its code server and every run, while batches are open.
        assert wait_for(
            lambda: any(h.stopped_at is None for h in heartbeats(engine)), 60, watch, daemon, log
        )
        live = {h.batch_key for h in heartbeats(engine) if h.stopped_at is None}
        snapshots.append((completed_pairs(engine), emulator.stats()["keys"]))
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
        killed_at = db_now(engine)
        assert set(watch.poll()) & OPEN, "the daemon kill landed after the work was done"
        old_runs = {h.run_id for h in heartbeats(engine)}
        time.sleep(1)  # let the killed group's sockets close
        daemon = start_daemon(home, env, log)
        assert wait_for(
            lambda: all(resumed_after(engine, b, old_runs, killed_at) is not None for b in live),
            RESUME_AFTER_DAEMON_KILL_S,
            watch,
            daemon,
            log,
        ), f"batches {live} never resumed after the daemon restart\n{_tail(log)}"
        second_resume = max(resumed_after(engine, b, old_runs, killed_at) for b in live)

        assert wait_for(
            lambda: not set(watch.poll()) & OPEN, SETTLE_TIMEOUT_S, watch, daemon, log
        ), f"requests never closed: {watch.poll()}\n{_tail(log)}"
    finally:
        stop(daemon)

    assert first_resume < RESUME_AFTER_RUN_KILL_S
    assert second_resume < RESUME_AFTER_DAEMON_KILL_S
    statuses = watch.poll()
    assert set(statuses) == {"done"}, statuses
    # The failure sensor left the killed batches open for their retries.
    assert "failed" not in watch.seen, watch.seen
    assert_enrichment_invariants(engine, ids)
    keys_after = emulator.stats()["keys"]
    for done, keys in snapshots:
        assert repeated_calls(engine, done, keys, keys_after) == []


# -- PostgreSQL restarting mid-batch ------------------------------------------------------------

PG_BIN = Path(os.environ.get("PHRONESIS_PG_BIN", "/usr/lib/postgresql/15/bin"))


class TempPostgres:
    """A PostgreSQL server of the test's own: initdb in a temp dir, a free port, trust auth.
    PostgreSQL refuses to run as root; then it runs as the `postgres` system user, in a folder
    of its own under /tmp (pytest's root-owned tmp folders are closed to other users)."""

    def __init__(self) -> None:
        from bench.enrichment import free_port

        self.user = "postgres" if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="phronesis-pg-"))
        if self.user:
            shutil.chown(self.folder, self.user)
        self.data = self.folder / "pgdata"
        self.port = free_port()
        self.log = self.folder / "postgres.log"
        self._run(PG_BIN / "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args) -> None:
        subprocess.run(
            [str(a) for a in args], check=True, capture_output=True, timeout=60, user=self.user
        )

    def _ctl(self, *args: str) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.log, *args)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-w", "-o", opts, "start")

    def restart(self, down_seconds: float) -> None:
        """Stop (fast: every connection is cut), stay down a while, start again."""
        self._ctl("-w", "-m", "fast", "stop")
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        try:
            self._ctl("-w", "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def temp_postgres():
    if not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN}")
    server = TempPostgres()
    server.start()
    try:
        yield server
    finally:
        engine_for(server.url).dispose()
        server.stop()


def test_postgresql_restart_mid_batch_ends_the_same_way(temp_postgres, emulator, monkeypatch):
    monkeypatch.setenv("PHRONESIS_HEARTBEAT_SECONDS", "0.5")
    migrate.upgrade(temp_postgres.url)
    app_db = AppDatabase(url=temp_postgres.url)
    engine = app_db.engine
    emulator.configure(latency_ms=300)
    tenant, ids = seed_prospects(app_db, 8, public_share=0.0)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    defs = enrichment_defs(app_db, emulator.url)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
        sensor = build_enrichment_request_sensor(SensorSettings(batch_size=8))
        batches = [r.partition_key for r in sensor(context).run_requests]
    assert len(batches) == 1
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.update(
            result=execute_batch(defs, batches[0], max_workers_per_provider=2)
        ),
        daemon=True,
    )
    runner.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(completed_pairs(engine)) < 4:
        time.sleep(0.05)
    done_before = completed_pairs(engine)
    keys_before = emulator.stats()["keys"]
    assert 4 <= len(done_before) < 8 * 5, "the restart did not land mid-batch"
    temp_postgres.restart(down_seconds=2)
    runner.join(180)
    assert not runner.is_alive(), "the batch never finished after the restart"
    assert outcome["result"].success
    with engine.connect() as conn:
        statuses = list(conn.execute(sa.select(EnrichmentRequest.status)).scalars())
    assert set(statuses) == {"done"}, statuses
    assert_enrichment_invariants(engine, ids)
    assert repeated_calls(engine, done_before, keys_before, emulator.stats()["keys"]) == []


def test_the_heartbeat_outlives_lost_connections(pg_app_db):
    """Every server connection of the app database is cut twice: the heartbeat thread logs the
    missed beats, stays alive, and beats again."""
    messages: list[str] = []
    heart = BatchHeartbeat(
        pg_app_db.engine, batch_key="b1", run_id="r1", interval=0.2, log=messages.append
    )
    heart.start()
    try:
        for _ in range(2):
            with pg_app_db.connect() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            time.sleep(0.6)
        beats = heart.beats
        time.sleep(0.6)
        assert heart._thread.is_alive()
        assert heart.beats > beats, messages
    finally:
        heart.stop()
    (row,) = heartbeats(pg_app_db.engine)
    assert row.stopped_at is not None and row.pid == os.getpid()


def test_the_recovery_sensor_fails_silent_runs_and_their_retry_keeps_the_batch_open(pg_app_db):
    """Three STARTED batch runs: one beating, one silent past the bound, one silent with no
    retries left. Only the silent ones are failed; the failure sensor's question - will a retry
    follow? - is yes for the first (the job's `dagster/max_retries`) and no for the second."""
    from dagster._core.test_utils import create_run_for_test

    from phronesis_dagster.enrichment.heartbeat import beat
    from phronesis_dagster.jobs import enrichment_batch_job
    from phronesis_dagster.sensors.recovery import fail_silent_runs, retry_will_follow

    engine = pg_app_db.engine
    overrides = {"run_retries": {"enabled": True, "max_retries": 2}}
    with dg.instance_for_test(overrides=overrides) as instance:

        def started(batch: str, **tags: str) -> dg.DagsterRun:
            run = create_run_for_test(
                instance,
                job_name=enrichment_batch_job.name,
                status=dg.DagsterRunStatus.STARTED,
                tags={**enrichment_batch_job.tags, "dagster/partition": batch, **tags},
            )
            beat(engine, run_id=run.run_id, batch_key=batch)
            return run

        alive = started("b-alive")
        silent = started("b-silent")
        spent = started("b-spent", **{"dagster/max_retries": "0"})
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE enrichment_run_heartbeats SET beat_at = now() - interval '30 seconds' "
                    "WHERE run_id IN (:a, :b)"
                ),
                {"a": silent.run_id, "b": spent.run_id},
            )

        failed = fail_silent_runs(instance, engine, bound=10)

        assert sorted(b for b, _, _ in failed) == ["b-silent", "b-spent"]
        status = {r.run_id: instance.get_run_by_id(r.run_id).status for r in (alive, silent, spent)}
        assert status[alive.run_id] == dg.DagsterRunStatus.STARTED
        assert status[silent.run_id] == status[spent.run_id] == dg.DagsterRunStatus.FAILURE
        assert retry_will_follow(instance, instance.get_run_by_id(silent.run_id))
        assert not retry_will_follow(instance, instance.get_run_by_id(spent.run_id))
        # A second tick does not fail anything again.
        assert fail_silent_runs(instance, engine, bound=10) == []


def test_a_retry_the_daemon_lost_is_asked_for_again_before_the_batch_is_closed(
    pg_app_db, monkeypatch
):
    """Dagster's retry daemon lost a retry (it read the failed run before its status became
    FAILURE: sensors/recovery.py): the run is FAILURE, tagged `dagster/will_retry: true`, and no
    retry follows. The recovery sensor keeps the batch open and reports the failure again, after
    the daemon's cursor, where Dagster's own retry filter takes the run; it closes the batch only
    once its reminders went unanswered."""
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.runs.schema import RunsTable
    from dagster._core.test_utils import create_run_for_test
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import (
        filter_runs_to_should_retry,
    )

    from phronesis_dagster.enrichment.requests import utcnow
    from phronesis_dagster.enrichment.store import start_batch
    from phronesis_dagster.jobs import enrichment_batch_job
    from phronesis_dagster.sensors import recovery

    monkeypatch.setenv("PHRONESIS_HEARTBEAT_SECONDS", "1")
    monkeypatch.setenv("PHRONESIS_RECOVERY_SILENCE_SECONDS", "8")
    engine = pg_app_db.engine
    tenant, ids = seed_prospects(pg_app_db, 3, public_share=0.0)
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    sensor = recovery.build_enrichment_recovery_sensor()
    overrides = {"run_retries": {"enabled": True, "max_retries": 2}}
    with dg.instance_for_test(overrides=overrides) as instance:
        context = dg.build_sensor_context(instance=instance, resources={"app_db": pg_app_db})
        request_sensor = build_enrichment_request_sensor(SensorSettings(batch_size=8))
        (batch,) = [r.partition_key for r in request_sensor(context).run_requests]
        run = create_run_for_test(
            instance,
            job_name=enrichment_batch_job.name,
            status=dg.DagsterRunStatus.STARTED,
            tags={**enrichment_batch_job.tags, "dagster/partition": batch},
        )
        start_batch(engine, batch, run_id=run.run_id, now=utcnow())
        instance.report_run_failed(run, "run worker killed")
        # The daemon's cursor is past that failure, and it launched nothing.
        cursor = instance.event_log_storage.get_maximum_record_id()
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE enrichment_requests SET updated_at = now() - interval '1 minute' "
                    "WHERE batch_key = :b"
                ),
                {"b": batch},
            )

        def a_bound_later() -> None:
            """The run's last failure (or reminder) is now a minute old, as the requests are."""
            with instance.run_storage.connect() as conn:
                conn.execute(
                    RunsTable.update()
                    .where(RunsTable.c.run_id == run.run_id)
                    .values(end_time=RunsTable.c.end_time - 60)
                )

        def tick() -> tuple[str, list[str]]:
            context = dg.build_sensor_context(instance=instance, resources={"app_db": pg_app_db})
            message = sensor(context).skip_message
            with engine.connect() as conn:
                statuses = conn.execute(
                    sa.select(EnrichmentRequest.status).where(EnrichmentRequest.batch_key == batch)
                ).scalars()
                return message, set(statuses)

        def failures_after(record_id: int) -> list[dg.DagsterRun]:
            events = instance.event_log_storage.get_logs_for_all_runs_by_log_id(
                after_cursor=record_id, dagster_event_type={DagsterEventType.RUN_FAILURE}
            )
            run_ids = [e.run_id for e in events.values()]
            if not run_ids:
                return []
            records = instance.get_run_records(filters=dg.RunsFilter(run_ids=run_ids))
            return [r.dagster_run for r in records]

        # Within the silence bound of the failure: the daemon may still be on its way.
        message, statuses = tick()
        assert statuses == {"running"}, message
        assert failures_after(cursor) == []

        # A bound later, no retry: the failure is reported again and the batch stays open.
        a_bound_later()
        message, statuses = tick()
        assert statuses == {"running"}, message
        assert "1 lost retry(ies) reminded, 0 abandoned" in message, message
        reminded = failures_after(cursor)
        assert [r.run_id for r in reminded] == [run.run_id]
        # What Dagster's retry daemon does with the runs of the failure events after its cursor.
        assert [r.run_id for r in filter_runs_to_should_retry(reminded, instance)] == [run.run_id]

        # Every reminder unanswered: a bound after the last one, the batch is closed, with why.
        for _ in range(recovery.MAX_RETRY_NUDGES - 1):
            a_bound_later()
            message, statuses = tick()
            assert "1 lost retry(ies) reminded" in message and statuses == {"running"}, message
        message, statuses = tick()
        assert "0 lost retry(ies) reminded, 0 abandoned" in message and statuses == {"running"}
        a_bound_later()
        message, statuses = tick()
        assert "0 lost retry(ies) reminded, 1 abandoned batch(es) closed" in message, message
        assert statuses == {"failed"}
        with engine.connect() as conn:
            reasons = set(
                conn.execute(
                    sa.select(EnrichmentRequest.reason).where(EnrichmentRequest.batch_key == batch)
                ).scalars()
            )
        assert all("no retry followed" in r for r in reasons), reasons
