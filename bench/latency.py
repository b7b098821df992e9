"""Benchmark: a sales rep's "Enrich" click, answered by the running daemon, with and without a
bulk job in flight, and two tenants' bulk jobs taking turns.

Everything runs as `phronesis dev` runs it: the embedded PostgreSQL server under a temporary data
folder (app database `phronesis`, Dagster's runs and events in its `dagster` database), the
laptop instance `LOCAL_INSTANCE_YAML` as `ensure_local_dagster_home` writes it, the provider
emulator (bench/enrichment.py's: 50 ms latency, the providers' published limits, the resources
at their published defaults too) and `dagster-daemon run` on workspace.yaml (its code
server and the run processes it launches; `--dagster dev` runs `dagster dev` instead, with the
webserver as well).

A click is `enqueue_enrichment` of one prospect (no job: the interactive lane); click-to-done is
the request row's `created_at` (the INSERT) to its `updated_at` when it became `done`/`failed`,
both written by this machine's clock. Each click is broken down with the run's timestamps:
sensor (INSERT -> the sensor created the run), queue (-> the daemon dequeued it: RUN_STARTING),
process start (-> the run process reported RUN_START: with the laptop instance's WarmRunLauncher a
child forked from its warm worker, which imported Dagster and the code location once; the first
launch waits for the worker's start), enrichment (-> the request closed).

Each click's run also gives its set-up before the first provider call (RUN_STARTING, when the
launcher starts the process, -> the start of the run's first call in `api_call_log`, its
`called_at` less its latency), in three parts: spawn (-> the run process's "Started process"
event: the fork and the run's instance; a fresh interpreter and `import dagster` before the warm
launcher), code location (-> RUN_START: the job and its plan; importing
`phronesis_dagster.definitions` too before the warm launcher), resources and step (-> the first
call).

The stack runs with bytecode caching on (`PYTHONDONTWRITEBYTECODE` removed from its environment,
as on a developer's laptop and in the production image, which compiles at install): with it set,
every run process compiled the project's 54 modules from source again. Bulk batch runs take the
niceness `phronesis dev` gives them (`PHRONESIS_BULK_RUN_NICENESS`, enrichment/cpu_priority.py;
`--bulk-niceness 0` measures without).

Modes (`--mode`, default all, in this order):
- single: `--requests` clicks (default 30), `--spacing` seconds apart (default 3), nothing else
  running;
- bulk: a `--prospects` bulk job (default 2,000, 10 % public companies) enqueued, then the same
  clicks while it is in flight; the job's wall time (its row's created_at -> finished_at) against
  the rate-limit bound of the provider requests the emulator saw in that window
  (`bench.enrichment.bound_seconds`);
- fairness: two tenants' bulk jobs (`--tenants 1500,300`), the big one enqueued first and the
  small one `--gap` seconds later (a later sensor tick, behind the big one's queued batches); when
  each tenant's first/last batch run started and finished.

Usage, from the repository root: `.venv/bin/python -m bench.latency [--mode single|bulk|fairness]
[--requests 30] [--spacing 3] [--prospects 2000] [--tenants 1500,300]`. The ratios are printed
last: p95 / 10 s target per mode, bulk wall / bound, small tenant's time to done / big tenant's.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import sqlalchemy as sa
from dagster._core.scheduler.instigation import InstigatorType

from bench.enrichment import CLIENT_RATE_LIMITS, EMULATOR_RATES, Emulator, bound_seconds, seed
from phronesis_dagster.cli import LAPTOP_BULK_RUN_NICENESS
from phronesis_dagster.db.models import ApiCallLog, EnrichmentJob, EnrichmentRequest
from phronesis_dagster.enrichment.cpu_priority import BULK_RUN_NICENESS_ENV
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.sensors.enrichment import REQUEST_SENSOR_NAMES, TENANT_TAG

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_P95_S = 10.0
CLOSED = ("done", "failed", "rejected")
PARTITION_TAG = "dagster/partition"


@dataclass
class Click:
    request_id: int
    inserted: datetime
    closed: datetime
    status: str
    run_id: str | None
    bulk_in_flight: bool = False
    sensor: float | None = None
    queue: float | None = None
    process: float | None = None
    enrichment: float | None = None
    # set-up before the run's first provider call, and its parts
    setup: float | None = None
    spawn: float | None = None
    code_location: float | None = None
    resources_step: float | None = None

    @property
    def seconds(self) -> float:
        return (self.closed - self.inserted).total_seconds()


# --- the stack ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dev_stack(args: argparse.Namespace, folder: Path) -> Iterator[tuple[AppDatabase, Emulator]]:
    """The embedded server, the laptop instance, the emulator and the daemon, as `phronesis
    dev` starts them; everything under `folder`, stopped on exit."""
    from phronesis_dagster.cli import app_database
    from phronesis_dagster.db import migrate
    from phronesis_dagster.demo import ensure_local_dagster_home

    os.environ["PHRONESIS_DATA_DIR"] = str(folder / "data")
    for key in ("PHRONESIS_DATABASE_URL", "DAGSTER_HOME", "PHRONESIS_DAGSTER_DATABASE_URL"):
        os.environ.pop(key, None)
    with app_database(recreate=True) as url:
        migrate.upgrade(url)
        home = ensure_local_dagster_home()
        emulator = Emulator()
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        env = {
            **os.environ,
            BULK_RUN_NICENESS_ENV: str(args.bulk_niceness),
            **emulator.provider_env(),
            "PHRONESIS_PROVIDER_RATE_LIMITS": CLIENT_RATE_LIMITS,
            "PYTHONPATH": str(REPO),
            "DAGSTER_HOME": str(home),
        }
        if args.dagster == "dev":
            cmd = [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-p", str(free_port())]
        else:
            cmd = [str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"]
        log = folder / "dagster.log"
        with log.open("ab") as out:
            daemon = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        print(f"{' '.join(Path(c).name for c in cmd[:2])} started; its log: {log}")
        try:
            yield AppDatabase(url=url), emulator
        except BaseException:
            print(f"--- last lines of {log} ---\n{log.read_text()[-3000:]}")
            raise
        finally:
            try:
                os.killpg(daemon.pid, signal.SIGTERM)
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
            except ProcessLookupError:
                pass
            emulator.stop()


# --- clicks ---------------------------------------------------------------------------------


def wait_closed(app_db: AppDatabase, request_ids: list[int], timeout: float) -> None:
    req = EnrichmentRequest.__table__
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app_db.connect() as conn:
            open_ = conn.execute(
                sa.select(sa.func.count()).where(
                    req.c.id.in_(request_ids), req.c.status.not_in(CLOSED)
                )
            ).scalar_one()
        if not open_:
            return
        time.sleep(0.5)
    raise SystemExit(f"{open_} of {len(request_ids)} request(s) still open after {timeout:.0f} s")


def enqueue_one(app_db: AppDatabase, tenant, prospect) -> int:
    enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=[prospect])
    with app_db.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(EnrichmentRequest.id)).where(
                EnrichmentRequest.prospect_id == prospect
            )
        ).scalar_one()


def clicks(app_db: AppDatabase, n: int, spacing: float, salt: int, timeout: float) -> list[int]:
    """`n` single-prospect requests `spacing` seconds apart; returns their ids once all closed."""
    tenant, ids = seed(app_db, n, 0.1, salt)
    request_ids = []
    for i, prospect in enumerate(ids):
        if i:
            time.sleep(spacing)
        request_ids.append(enqueue_one(app_db, tenant, prospect))
    wait_closed(app_db, request_ids, timeout)
    return request_ids


def load_clicks(app_db: AppDatabase, request_ids: list[int]) -> list[Click]:
    req = EnrichmentRequest.__table__
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.select(req.c.id, req.c.created_at, req.c.updated_at, req.c.status, req.c.run_id)
            .where(req.c.id.in_(request_ids))
            .order_by(req.c.id)
        ).all()
    return [Click(r.id, r.created_at, r.updated_at, r.status, r.run_id) for r in rows]


def event_time(
    instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType
) -> float | None:
    records = instance.get_records_for_run(run_id=run_id, of_type=kind, limit=1).records
    return records[0].event_log_entry.timestamp if records else None


def process_started(instance: dg.DagsterInstance, run_id: str) -> float | None:
    """When the run process reported "Started process for run" (its instance is up)."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records
    for record in records:
        entry = record.event_log_entry
        texts = (entry.user_message, entry.dagster_event.message if entry.dagster_event else None)
        if any((t or "").startswith("Started process for run") for t in texts):
            return entry.timestamp
    return None


def first_calls(app_db: AppDatabase, run_ids: list[str]) -> dict[str, float]:
    """{run id: when its first provider call started}: `called_at` (written as the call ended)
    less the call's latency."""
    log = ApiCallLog.__table__
    with app_db.connect() as conn:
        rows = conn.execute(
            sa.select(log.c.run_id, log.c.called_at, log.c.latency_ms).where(
                log.c.run_id.in_(run_ids)
            )
        ).all()
    first: dict[str, float] = {}
    for r in rows:
        began = r.called_at.timestamp() - (r.latency_ms or 0.0) / 1000
        first[r.run_id] = min(began, first.get(r.run_id, began))
    return first


def break_down(instance: dg.DagsterInstance, app_db: AppDatabase, found: list[Click]) -> None:
    """Fill each click's phases from its run's record and events."""
    calls = first_calls(app_db, sorted({c.run_id for c in found if c.run_id}))
    for click in found:
        if not click.run_id:
            continue
        record = instance.get_run_record_by_id(click.run_id)
        if record is None:
            continue
        created = record.create_timestamp.timestamp()
        launched = event_time(instance, click.run_id, dg.DagsterEventType.RUN_STARTING)
        started = record.start_time or event_time(
            instance, click.run_id, dg.DagsterEventType.RUN_START
        )
        click.sensor = created - click.inserted.timestamp()
        if launched:
            click.queue = launched - created
            if started:
                click.process = started - launched
        if started:
            click.enrichment = click.closed.timestamp() - started
        first = calls.get(click.run_id)
        if launched and first:
            click.setup = first - launched
            spawned = process_started(instance, click.run_id)
            if spawned and started:
                click.spawn = spawned - launched
                click.code_location = started - spawned
                click.resources_step = first - started


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def report_clicks(label: str, found: list[Click]) -> float:
    secs = [c.seconds for c in found]
    statuses = {s: sum(c.status == s for c in found) for s in {c.status for c in found}}
    print(
        f"  {label}: {len(found)} clicks {statuses}; click-to-done p50 {pct(secs, 50):.1f} s, "
        f"p95 {pct(secs, 95):.1f} s, max {max(secs):.1f} s"
    )
    phases = ("sensor", "queue", "process", "enrichment")
    names = {
        "sensor": "sensor (INSERT -> run created)",
        "queue": "queue (-> dequeued)",
        "process": "run process start (-> RUN_START)",
        "enrichment": "enrichment (-> request closed)",
    }
    for phase in phases:
        values = [getattr(c, phase) for c in found if getattr(c, phase) is not None]
        if values:
            print(
                f"    {names[phase]:<36} p50 {pct(values, 50):5.1f} s  p95 {pct(values, 95):5.1f} s"
                f"  max {max(values):5.1f} s"
            )
    setup = {}
    for c in found:
        if c.setup is not None:
            setup.setdefault(c.run_id, c)
    if setup:
        runs = list(setup.values())
        values = [c.setup for c in runs]
        parts = ", ".join(
            f"{name} {statistics.median(v):.2f} s"
            for name, v in (
                ("spawn + import dagster + instance", [c.spawn for c in runs if c.spawn]),
                ("code location + plan", [c.code_location for c in runs if c.code_location]),
                ("resources + step", [c.resources_step for c in runs if c.resources_step]),
            )
            if v
        )
        print(
            f"    set-up before first call, per run ({len(runs)} runs): p50 "
            f"{pct(values, 50):.2f} s, p95 {pct(values, 95):.2f} s; medians: {parts}"
        )
    slowest = max(found, key=lambda c: c.seconds)
    parts = ", ".join(
        f"{p} {getattr(slowest, p):.1f}" for p in phases if getattr(slowest, p) is not None
    )
    print(f"    slowest click ({slowest.seconds:.1f} s): {parts}")
    return pct(secs, 95)


def sensor_tick_spacing(instance: dg.DagsterInstance) -> str:
    """The request sensors' last 200 ticks: how far apart they started, how long they took."""
    lines = []
    states = instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
    for state in sorted(states, key=lambda s: s.name):
        if state.name not in REQUEST_SENSOR_NAMES:
            continue
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
        stamps = sorted(t.timestamp for t in ticks)
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        spans = [t.end_timestamp - t.timestamp for t in ticks if t.end_timestamp]
        if gaps and spans:
            lines.append(
                f"{state.name} ticks: {len(stamps)}, median gap {statistics.median(gaps):.1f} s,"
                f" max {max(gaps):.1f} s; duration median {statistics.median(spans):.1f} s, "
                f"max {max(spans):.1f} s"
            )
    return "\n".join(lines) or "request sensor ticks: none found"


# --- modes ----------------------------------------------------------------------------------


def warm_up(app_db: AppDatabase, timeout: float) -> None:
    """One click before measuring: the daemon's first sensor tick loads the code location."""
    started = time.monotonic()
    tenant, ids = seed(app_db, 1, 0.0, 900)
    rid = enqueue_one(app_db, tenant, ids[0])
    wait_closed(app_db, [rid], timeout)
    print(f"warm-up click (daemon start, code location load): {time.monotonic() - started:.1f} s")


def mode_single(args, app_db, instance) -> float:
    print(f"\nsingle: {args.requests} clicks {args.spacing:g} s apart, nothing else running")
    ids = clicks(app_db, args.requests, args.spacing, 100, args.timeout)
    found = load_clicks(app_db, ids)
    break_down(instance, app_db, found)
    return report_clicks("alone", found)


def job_row(app_db: AppDatabase, job_id):
    with app_db.connect() as conn:
        return conn.execute(
            sa.select(EnrichmentJob.__table__).where(EnrichmentJob.id == job_id)
        ).one()


def wait_job(app_db: AppDatabase, job_id, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_row(app_db, job_id)
        if job.finished_at is not None:
            return job
        time.sleep(1)
    raise SystemExit(f"job {job_id} not finished after {timeout:.0f} s: {job.status}")


def mode_bulk(args, app_db, instance, emulator) -> tuple[float, float, float]:
    print(
        f"\nbulk: {args.prospects:,} prospects (10 % public) as one job, then {args.requests} "
        f"clicks {args.spacing:g} s apart while it runs"
    )
    tenant, ids = seed(app_db, args.prospects, 0.1, 200)
    emulator.reset()
    job_id = enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)
    # Clicks start once the bulk job's runs are going (its first batch running).
    deadline = time.monotonic() + args.timeout
    while job_row(app_db, job_id).status == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
    result: dict[str, list[int]] = {}
    worker = threading.Thread(
        target=lambda: result.update(
            ids=clicks(app_db, args.requests, args.spacing, 300, args.timeout)
        )
    )
    worker.start()
    job = wait_job(app_db, job_id, args.timeout)
    worker.join()
    stats = emulator.stats()
    requests = stats["requests"]
    found = load_clicks(app_db, result["ids"])
    for click in found:
        click.bulk_in_flight = click.closed <= job.finished_at
    break_down(instance, app_db, found)
    overlapped = [c for c in found if c.bulk_in_flight]
    print(f"  {len(overlapped)} of {len(found)} clicks closed while the bulk job was in flight")
    p95 = report_clicks("with bulk in flight", overlapped or found)
    wall = (job.finished_at - job.created_at).total_seconds()
    bound, slowest = bound_seconds(stats["groups"], EMULATOR_RATES)
    print(
        f"  bulk job: {job.status} {job.processed}/{job.total} (succeeded {job.succeeded}, "
        f"failed {job.failed}) in {wall:.1f} s; provider requests {requests} "
        f"(clicks' included); rate-limit bound {bound:.1f} s ({slowest})"
    )
    runs = instance.get_run_records(dg.RunsFilter(tags={TENANT_TAG: str(tenant)}), ascending=True)
    spans = [(r.end_time - r.start_time) for r in runs if r.start_time is not None and r.end_time]
    if spans:
        print(
            f"  {len(runs)} bulk batch runs; run duration median {statistics.median(spans):.1f}"
            f" s, max {max(spans):.1f} s"
        )
    return p95, wall, bound


def mode_fairness(args, app_db, instance) -> float:
    big_n, small_n = args.tenants
    print(
        f"\nfairness: tenant A {big_n:,} prospects enqueued, tenant B {small_n:,} "
        f"{args.gap:g} s later"
    )
    big, big_ids = seed(app_db, big_n, 0.1, 400)
    small, small_ids = seed(app_db, small_n, 0.1, 500)
    t0 = time.time()
    big_job = enqueue_enrichment(app_db.engine, tenant_id=big, prospect_ids=big_ids)
    time.sleep(args.gap)
    small_at = time.time()
    small_job = enqueue_enrichment(app_db.engine, tenant_id=small, prospect_ids=small_ids)
    jobs = {
        "A": (big, wait_job(app_db, big_job, args.timeout), t0),
        "B": (small, wait_job(app_db, small_job, args.timeout), small_at),
    }
    took = {}
    for name, (tenant, job, enqueued) in jobs.items():
        runs = instance.get_run_records(dg.RunsFilter(tags={TENANT_TAG: str(tenant)}))
        starts = sorted(r.start_time for r in runs if r.start_time)
        ends = sorted(r.end_time for r in runs if r.end_time)
        took[name] = job.finished_at.timestamp() - enqueued
        print(
            f"  tenant {name}: {len(runs)} batches, enqueued at t={enqueued - t0:5.1f} s; first "
            f"batch started t={starts[0] - t0:5.1f} s, finished t={ends[0] - t0:5.1f} s; last "
            f"started t={starts[-1] - t0:5.1f} s, finished t={ends[-1] - t0:5.1f} s; job "
            f"{job.status} {job.processed}/{job.total}, {took[name]:.1f} s after its enqueue"
        )
    # What B would have waited behind A without turns: A's whole job.
    a_last = jobs["A"][1].finished_at.timestamp() - t0
    print(
        f"  tenant B done {took['B']:.1f} s after its enqueue; first come, first served it "
        f"would have waited for A's last batch (t={a_last:.1f} s) before its own started"
    )
    return took["B"] / took["A"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("all", "single", "bulk", "fairness"), default="all")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--spacing", type=float, default=3.0)
    parser.add_argument("--prospects", type=int, default=2_000)
    parser.add_argument(
        "--tenants",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=(1_500, 300),
        help="prospects of the big and the small tenant, e.g. 1500,300",
    )
    parser.add_argument("--gap", type=float, default=5.0, help="seconds between the two jobs")
    parser.add_argument("--dagster", choices=("daemon", "dev"), default="daemon")
    parser.add_argument(
        "--bulk-niceness",
        type=int,
        default=LAPTOP_BULK_RUN_NICENESS,
        help=f"{BULK_RUN_NICENESS_ENV} of the stack (default: what `phronesis dev` sets)",
    )
    parser.add_argument("--timeout", type=float, default=1_800.0)
    args = parser.parse_args()
    modes = ("single", "bulk", "fairness") if args.mode == "all" else (args.mode,)

    ratios: list[str] = []
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp, dev_stack(args, Path(tmp)) as (app_db, emulator):
        warm_up(app_db, args.timeout)
        with dg.DagsterInstance.get() as instance:
            if "single" in modes:
                p95 = mode_single(args, app_db, instance)
                ratios.append(f"p95 alone / {TARGET_P95_S:g} s target = {p95 / TARGET_P95_S:.2f}")
            if "bulk" in modes:
                p95, wall, bound = mode_bulk(args, app_db, instance, emulator)
                ratios.append(
                    f"p95 with bulk in flight / {TARGET_P95_S:g} s target = "
                    f"{p95 / TARGET_P95_S:.2f}"
                )
                ratios.append(f"bulk wall / rate-limit bound = {wall / bound:.2f}x")
            if "fairness" in modes:
                share = mode_fairness(args, app_db, instance)
                ratios.append(f"small tenant's time to done / big tenant's = {share:.2f}")
            print(f"\n{sensor_tick_spacing(instance)}")
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    for line in ratios:
        print(line)


if __name__ == "__main__":
    main()
