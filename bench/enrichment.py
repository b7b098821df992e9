"""Benchmark: prospect enrichment end to end against the standalone provider emulator.

Three measurements, on PostgreSQL databases the bench creates on the server of `--database-url`
(default: $PHRONESIS_TEST_POSTGRES_URL or the local server):

1. sensor tick: `enrichment_request_sensor` over 10,000 pending requests (plus duplicates and
   bad rows) - must stay well under Dagster's 60 s tick budget;
2. throughput: N prospects (default 2,000) enqueued as one bulk job, batched by the sensor, each
   batch a Dagster run forked from the WarmRunLauncher's warm worker, as the laptop instance
   launches runs (`--launch warm`, the default; runs and events in a PostgreSQL database of the
   bench's own), or a fresh `local_runner` process each, as before the warm launcher (`--launch
   spawn`, on a throwaway in-memory instance), with `--concurrency` runs at a time,
   emulator at 50 ms latency, **at the providers' published default limits**: the emulator keeps
   its defaults (no `--rate-limit`) and the resources theirs (no
   `PHRONESIS_PROVIDER_RATE_LIMITS`). Both enforce a per-minute limit as its per-second share
   rounded down (1,000/min -> 16/s): that enforced share is the limit of this benchmark. Printed
   per provider and endpoint group (the emulator's rate-limit buckets): the limit in effect
   (published, as the resource reports it, and per second as enforced), the requests the
   emulator saw and the share of the limit they used (requests / (limit x wall)). Wall time is
   compared with the rate-limit bound = max over those groups of (requests / enforced limit),
   the time the slowest group needs even with perfect concurrency, and with the CPU floor = CPU
   seconds the run processes and the emulator used / cores, the time this machine needs for that
   work even with perfect scheduling. CPU per provider request = (the run processes' CPU - the
   runs x what a run costs besides its calls) / the requests the emulator saw, where a run's
   cost besides its calls is that of a run whose sources are all final already (set-up, the
   step's Dagster events and materializations, the batch's start and finish), measured with
   `--concurrency` such runs at once (median of 3 rounds; one alone is printed beside it);
3. one run per prospect: 20 prospects as 20 single-prospect runs, the per-prospect cost
   compared with the batched per-prospect cost.

Usage: `.venv/bin/python bench/enrichment.py [--prospects 2000] [--public-share 0.1]
[--concurrency 4] [--batch-size 100] [--workers N] [--database-url URL] [--skip-tick]
[--launch warm|spawn]`.
Prints figures; the wall/bound ratio is the last line.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import random
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import dagster as dg
import httpx
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment.partitions import enrichment_batch_partitions
from phronesis_dagster.db import migrate
from phronesis_dagster.db.models import EnrichmentJob, EnrichmentSourceResult, Prospect, Tenant
from phronesis_dagster.demo_data import insert_demo_prospects
from phronesis_dagster.emulator.config import PUBLISHED_RATE_LIMITS
from phronesis_dagster.enrichment.requests import SensorSettings, enqueue_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.contract import ProspectInput
from phronesis_dagster.sensors.enrichment import build_enrichment_request_sensor

REPO = Path(__file__).resolve().parents[1]
LAUNCH_LABELS = {
    "warm": "forked from the WarmRunLauncher's warm worker",
    "spawn": "a fresh process each",
}
LATENCY_MS = 50
# Requests per second per rate-limit bucket ("provider" or "provider.group") the emulator enforces
# by default: the published limits, per-minute ones as their per-second share rounded down.
EMULATOR_RATES: dict[str, float] = {
    bucket: limit for bucket, limit in PUBLISHED_RATE_LIMITS.items() if limit is not None
}
# No plan of our own: the resources keep their published DEFAULT_LIMITS (an empty
# PHRONESIS_PROVIDER_RATE_LIMITS overrides nothing; bench/latency.py passes it on as well).
CLIENT_RATE_LIMITS = ""
# The emulator's provider names -> the resource keys (the same provider).
RESOURCE_KEYS = {"anthropic": "claude"}
EMULATOR_SEED = 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_db(url: str, folder: Path) -> AppDatabase:
    migrate.upgrade(url)
    return AppDatabase(url=url)


def seed(
    app_db: AppDatabase, n: int, public_share: float, salt: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A tenant of the web app's schema (UUID ids) and `n` of its prospects."""
    with app_db.begin() as conn:
        tenant = conn.execute(
            sa.insert(Tenant).returning(Tenant.id), {"name": f"Bench {salt}"}
        ).scalar_one()
        ids = insert_demo_prospects(
            conn,
            tenant_id=tenant,
            count=n,
            rng=random.Random(salt),
            public_company_share=public_share,
            emulator_seed=EMULATOR_SEED,
        )
    return tenant, ids


def prospect_inputs(app_db: AppDatabase, ids: list[uuid.UUID]) -> list[ProspectInput]:
    """The prospects `ids` as the provider resources are given them."""
    with app_db.connect() as conn:
        rows = conn.execute(sa.select(Prospect.__table__).where(Prospect.id.in_(ids)))
        return [ProspectInput.from_row(dict(r._mapping)) for r in rows]


def tick(app_db: AppDatabase, settings: SensorSettings, cursor: str | None = None):
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"app_db": app_db}
        )
        started = time.perf_counter()
        result = build_enrichment_request_sensor(settings)(context)
        return result, time.perf_counter() - started


def bench_sensor_tick(db_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app_db = fresh_db(_new_pg_db(db_url, "tick"), Path(tmp))
        tenant, ids = seed(app_db, 10_000, 0.0, 1)
        enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)
        # Duplicates and bad rows make the tick do all of its work: coalescing and rejecting.
        for pid in ids[:500]:
            enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=[pid])
        other, _ = seed(app_db, 1, 0.0, 9)
        enqueue_enrichment(app_db.engine, tenant_id=other, prospect_ids=ids[500:600])
        pending = 10_000 + 500 + 100
        print(f"sensor tick over {pending:,} pending requests (PostgreSQL):")
        result, first = tick(app_db, SensorSettings())
        print(
            f"  tick 1 (cap 5,000 requests): {first:6.2f} s, {len(result.run_requests)} runs, "
            f"{len(result.dynamic_partitions_requests[0].partition_keys)} partitions"
        )
        result, second = tick(app_db, SensorSettings(), result.cursor)
        print(
            f"  tick 2 (the rest + re-emits): {second:6.2f} s, {len(result.run_requests)} run "
            "requests (re-emitted ones carry their old run_key)"
        )
        with tempfile.TemporaryDirectory() as tmp2:
            app_db2 = fresh_db(_new_pg_db(db_url, "tick2"), Path(tmp2))
            tenant2, ids2 = seed(app_db2, 10_000, 0.0, 2)
            enqueue_enrichment(app_db2.engine, tenant_id=tenant2, prospect_ids=ids2)
            _, full = tick(app_db2, SensorSettings(max_requests_per_tick=10_000))
        print(f"  one tick over all 10,000 (cap raised): {full:6.2f} s  (budget: 60 s)")


def _new_pg_db(admin_url: str, suffix: str) -> str:
    """A new database on the server of `admin_url`, dropped when the bench process exits (left
    behind, every bench run's prospects and Dagster event log stayed on the shared server)."""
    name = f"bench_enrich_{suffix}_{os.getpid()}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    atexit.register(_drop_pg_db, admin, name)
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _drop_pg_db(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


class Emulator:
    """`python -m phronesis_dagster.emulator` in its own process."""

    def __init__(self, latency_ms: int = LATENCY_MS, rate_limit: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # No --rate-limit unless given: the emulator enforces the published limits.
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phronesis_dagster.emulator",
                "--port",
                str(self.port),
                "--seed",
                str(EMULATOR_SEED),
                "--latency-ms",
                str(latency_ms),
                *(["--rate-limit", rate_limit] if rate_limit else []),
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/_emulator/stats", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the emulator did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_emulator/stats", timeout=10).json()

    def provider_env(self) -> dict[str, str]:
        """The variables that point the provider resources at this emulator."""
        return {"PHRONESIS_PROVIDER_MODE": "emulator", "PHRONESIS_EMULATOR_URL": self.url}

    def rates(self) -> dict[str, float]:
        """The limits the emulator enforces, requests per second per bucket."""
        config = httpx.get(f"{self.url}/_emulator/config", timeout=10).json()
        return {k: v for k, v in config["rate_limit_per_second"].items() if v is not None}

    def reset(self) -> None:
        httpx.post(f"{self.url}/_emulator/reset", timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def run_env(emulator: Emulator, data_dir: Path) -> dict[str, str]:
    """The environment of a run process: emulator mode, the resources' published limits."""
    env = {
        **os.environ,
        **emulator.provider_env(),
        "PHRONESIS_DATA_DIR": str(data_dir),
        "PHRONESIS_PROVIDER_RATE_LIMITS": CLIENT_RATE_LIMITS,
        "PYTHONPATH": str(REPO),
    }
    if not CLIENT_RATE_LIMITS:
        del env["PHRONESIS_PROVIDER_RATE_LIMITS"]  # no override: the published defaults
    return env


class SpawnRuns:
    """`--launch spawn`, the way before the warm launcher: each batch in a fresh `python -m
    phronesis_dagster.local_runner` process (Dagster, the code location and, at its first
    summary, the anthropic SDK imported again by each), on a throwaway instance."""

    name = "spawn"

    def __init__(
        self, app_db: AppDatabase, env: dict[str, str], workers: int | None, logs: Path | None
    ) -> None:
        self.app_db, self.env, self.workers, self.logs = app_db, env, workers, logs

    def start(self, batch: str) -> subprocess.Popen:
        out = (self.logs / f"{batch}.log").open("wb") if self.logs else subprocess.DEVNULL
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phronesis_dagster.local_runner",
                self.app_db.url,
                batch,
                *([str(self.workers)] if self.workers else []),
            ],
            cwd=REPO,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if self.logs:
            out.close()  # the child has its own copy
        return proc

    def finished(self, proc: subprocess.Popen) -> bool | None:
        """None while running, else whether the run succeeded."""
        return None if proc.poll() is None else proc.returncode == 0

    def cpu_seconds(self) -> float:
        """User + system CPU of the run processes finished so far."""
        return children_cpu_seconds()

    def peak_rss_mb(self) -> float:
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    def close(self) -> None:
        pass


class WarmRuns:
    """`--launch warm` (the default), as the laptop instance launches runs: each batch a Dagster
    run of `enrichment_batch_job` on an instance of the bench's own (runs and events in a
    PostgreSQL database), launched by the WarmRunLauncher, so forked from its warm worker.

    CPU is counted from the worker's /proc figures: its own (the preload once, then forking)
    plus its reaped children's, i.e. every run it forked."""

    name = "warm"

    def __init__(
        self,
        admin_url: str,
        app_db: AppDatabase,
        env: dict[str, str],
        workers: int | None,
        logs: Path | None,
        home: Path,
    ) -> None:
        from dagster._core.definitions.reconstruct import ReconstructableRepository

        # The worker inherits this process's environment, as it inherits the daemon's.
        os.environ.update(env)
        os.environ["PHRONESIS_DATABASE_URL"] = app_db.url
        dagster_url = sa.make_url(_new_pg_db(admin_url, "dagster")).set(
            drivername="postgresql+psycopg2"
        )
        home.mkdir(parents=True, exist_ok=True)
        log = str(logs / "warm_worker.log") if logs else os.devnull
        (home / "dagster.yaml").write_text(
            f"""\
telemetry:
  enabled: false
storage:
  postgres:
    postgres_url: "{dagster_url.render_as_string(hide_password=False)}"
run_launcher:
  module: phronesis_dagster.launcher
  class: WarmRunLauncher
  config:
    worker_log: "{log}"
"""
        )
        self.instance = dg.DagsterInstance.from_config(str(home))
        self.recon_job = ReconstructableRepository.for_module(
            "phronesis_dagster.definitions", "defs", working_directory=str(REPO)
        ).get_reconstructable_job("enrichment_batch_job")
        self.job_def = self.recon_job.get_definition()
        self.run_config = (
            {"ops": {"enrich_batch": {"config": {"max_workers_per_provider": workers}}}}
            if workers
            else {}
        )
        self.worker_pid: int | None = None
        self.preload_cpu: float | None = None

    def start(self, batch: str) -> tuple[str, int]:
        from phronesis_dagster.launcher import RUN_WORKER_TAG

        self.instance.add_dynamic_partitions(enrichment_batch_partitions.name, [batch])
        run = self.instance.create_run_for_job(
            job_def=self.job_def,
            run_config=self.run_config,
            tags={**self.job_def.tags, "dagster/partition": batch},
            job_code_origin=self.recon_job.get_python_origin(),
        )
        # No workspace: a run the worker cannot take fails here instead of going to a code
        # server, so every figure below is the warm path's.
        self.instance.launch_run(run.run_id, None)
        launched = self.instance.get_run_by_id(run.run_id)
        pid = json.loads(launched.tags[RUN_WORKER_TAG])["pid"]
        worker = self.instance.run_launcher.worker_pid
        if self.worker_pid is None:
            self.worker_pid = worker
            self.preload_cpu = proc_cpu_seconds(worker, children=False)
        elif worker != self.worker_pid:
            raise RuntimeError("the warm worker was replaced during the bench")
        return run.run_id, pid

    def finished(self, handle: tuple[str, int]) -> bool | None:
        run_id, pid = handle
        if Path(f"/proc/{pid}").exists():  # until the worker reaped it: its CPU is counted
            return None
        run = self.instance.get_run_by_id(run_id)
        return run.status == dg.DagsterRunStatus.SUCCESS

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.worker_pid) if self.worker_pid else 0.0

    def peak_rss_mb(self) -> float:
        """The worker's peak resident set; its children share most of those pages."""
        for line in Path(f"/proc/{self.worker_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def close(self) -> None:
        self.instance.dispose()  # stops (and reaps) the worker


def proc_cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of process `pid` (Linux /proc), plus that of its children it reaped."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def run_batches(
    runner: SpawnRuns | WarmRuns,
    batches: list[str],
    concurrency: int,
    spans: list[tuple[float, float]] | None = None,
) -> float:
    """Each batch as one run of `runner`, `concurrency` at a time. Appends each run's (start,
    end) offset in seconds to `spans` when given."""
    todo = list(batches)
    running: dict[object, float] = {}
    failures = 0
    started = time.perf_counter()
    while todo or running:
        while todo and len(running) < concurrency:
            running[runner.start(todo.pop(0))] = time.perf_counter() - started
        time.sleep(0.05)
        for handle in list(running):
            outcome = runner.finished(handle)
            if outcome is None:
                continue
            failures += not outcome
            began = running.pop(handle)
            if spans is not None:
                spans.append((began, time.perf_counter() - started))
    if failures:
        print(f"  WARNING: {failures} batch run(s) failed")
    return time.perf_counter() - started


# Rounds of `--concurrency` no-call runs at once (see `no_call_cpu_per_run`).
NO_CALL_ROUNDS = 3


def no_call_cpu_per_run(
    runner: SpawnRuns | WarmRuns, batches: list[str], concurrency: int
) -> list[float]:
    """CPU per run of batches whose sources are all final (a run with no provider call to
    make), `concurrency` runs at a time: one figure per round of `NO_CALL_ROUNDS`."""
    per_run = []
    for i in range(NO_CALL_ROUNDS):
        chunk = [batches[(i * concurrency + j) % len(batches)] for j in range(concurrency)]
        before = runner.cpu_seconds()
        run_batches(runner, chunk, concurrency)
        per_run.append((runner.cpu_seconds() - before) / len(chunk))
    return per_run


def children_cpu_seconds() -> float:
    """User + system CPU of every finished child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sdk_import_cpu_seconds(runs: int = 3) -> float:
    """Median CPU of importing the anthropic SDK as a run process does: after the code
    location, with its objects frozen, through `ClaudeResource`'s own import (a fresh
    interpreter each time)."""
    probe = (
        "import gc, time, phronesis_dagster.definitions; gc.freeze(); "
        "from phronesis_dagster.resources.claude import _import_sdk; "
        "t = time.process_time(); _import_sdk(); print(time.process_time() - t)"
    )
    figures = sorted(
        float(
            subprocess.run(
                [sys.executable, "-W", "ignore", "-c", probe],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
        )
        for _ in range(runs)
    )
    return figures[len(figures) // 2]


def busy_share(per_second: list[int], rate: float) -> float:
    """Share of the provider's rate-limit capacity used over the whole timeline."""
    return sum(per_second) / (rate * max(len(per_second), 1))


def timeline(per_second: list[int], width: int = 10) -> str:
    """Requests per `width`-second slice, e.g. `72 80 79 ... 31`."""
    return " ".join(str(sum(per_second[i : i + width])) for i in range(0, len(per_second), width))


def queue_all(app_db: AppDatabase, settings: SensorSettings) -> list[str]:
    keys: list[str] = []
    cursor = None
    while True:
        result, _ = tick(app_db, settings, cursor)
        cursor = result.cursor
        new = [r.partition_key for r in (result.run_requests or []) if r.partition_key not in keys]
        if not new:
            return keys
        keys += new


def bound_seconds(requests: dict[str, int], rates: dict[str, float]) -> tuple[float, str]:
    """(max over rate-limit buckets of requests / limit, that bucket). `requests` per bucket as
    the emulator counts them (`stats()["groups"]`: "apollo.enrichment", "exa", ...)."""
    per = {b: requests.get(b, 0) / rates[b] for b in rates}
    worst = max(per, key=per.get)
    return per[worst], worst


def client_limits(app_db: AppDatabase, env: dict[str, str]) -> dict[str, str]:
    """{emulator bucket: the limit the resource enforces there, e.g. "1000/min"}, from the
    resources the runs build (`rate_limits_in_effect`, also in each run's metadata)."""
    from phronesis_dagster.resources.providers import build_provider_resources

    limits: dict[str, str] = {}
    for key, client in build_provider_resources(app_db, env).items():
        provider = next((e for e, r in RESOURCE_KEYS.items() if r == key), key)
        for group, limit in client.rate_limits_in_effect().items():
            limits[provider if group == "*" else f"{provider}.{group}"] = limit
    return limits


def published_per_second(limit: str) -> float:
    """ "1000/min" -> 16.67, "10/s" -> 10."""
    number, _, unit = limit.partition("/")
    return int(number) / (60 if unit.startswith("m") else 1)


def limits_table(
    groups: dict[str, int], rates: dict[str, float], published: dict[str, str], wall: float
) -> list[str]:
    """One line per rate-limit bucket: the limit in effect and the share of it used."""
    lines = [
        f"    {'bucket':<20}{'published':>11}{'enforced':>10}{'requests':>10}{'bound':>9}"
        f"{'share used':>12}{'of published':>14}"
    ]
    for bucket in sorted(rates):
        n = groups.get(bucket, 0)
        limit = rates[bucket]
        text = published.get(bucket, "?")
        of_published = f"{n / (published_per_second(text) * wall):.0%}" if text != "?" else "?"
        lines.append(
            f"    {bucket:<20}{text:>11}{f'{limit:g}/s':>10}{n:>10,}{n / limit:>8.1f}s"
            f"{n / (limit * wall):>12.0%}{of_published:>14}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prospects", type=int, default=2_000)
    parser.add_argument("--public-share", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=SensorSettings().batch_size,
        help="the sensor's max batch size (default: the sensor's default)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "PHRONESIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL admin URL; the bench creates its own databases there",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads per provider in a run (run config max_workers_per_provider)",
    )
    parser.add_argument(
        "--run-logs", type=Path, default=None, help="folder for each run process's output"
    )
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument(
        "--launch",
        choices=("warm", "spawn"),
        default="warm",
        help="warm: Dagster runs forked from the WarmRunLauncher's worker, as the laptop "
        "instance launches them (default); spawn: a fresh process per batch, as before",
    )
    args = parser.parse_args()
    if args.run_logs:
        args.run_logs.mkdir(parents=True, exist_ok=True)

    if not args.skip_tick:
        bench_sensor_tick(args.database_url)

    emulator = Emulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            os.environ["PHRONESIS_DATA_DIR"] = tmp
            db_url = _new_pg_db(args.database_url, "runs")
            app_db = fresh_db(db_url, folder)

            # 2. throughput
            tenant, ids = seed(app_db, args.prospects, args.public_share, 3)
            job_id = enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=ids)
            batches = queue_all(app_db, SensorSettings(batch_size=args.batch_size))
            env = run_env(emulator, folder)
            if args.launch == "warm":
                runner = WarmRuns(
                    args.database_url, app_db, env, args.workers, args.run_logs, folder / "home"
                )
            else:
                runner = SpawnRuns(app_db, env, args.workers, args.run_logs)
            emulator.reset()
            spans: list[tuple[float, float]] = []
            runs_cpu_before = runner.cpu_seconds()
            emulator_cpu_before = emulator.cpu_seconds()
            wall = run_batches(runner, batches, args.concurrency, spans)
            runs_cpu = runner.cpu_seconds() - runs_cpu_before
            emulator_cpu = emulator.cpu_seconds() - emulator_cpu_before
            stats = emulator.stats()
            rss_mb = runner.peak_rss_mb()
            requests = stats["requests"]
            rates = emulator.rates()
            if rates != EMULATOR_RATES:
                print(f"  WARNING: the emulator enforces {rates}, not the published limits")
            bound, slowest = bound_seconds(stats["groups"], rates)
            published = client_limits(app_db, run_env(emulator, folder))
            published_bound = max(
                stats["groups"].get(b, 0) / published_per_second(t) for b, t in published.items()
            )
            with app_db.connect() as conn:
                job = conn.execute(
                    sa.select(EnrichmentJob.__table__).where(EnrichmentJob.id == job_id)
                ).one()
                outcomes = Counter(
                    (r.source, r.status)
                    for r in conn.execute(
                        sa.select(EnrichmentSourceResult.source, EnrichmentSourceResult.status)
                    )
                )
                statuses = Counter(
                    r[0] for r in conn.execute(sa.select(Prospect.enrichment_status))
                )
            public = round(args.prospects * args.public_share)
            print(
                f"\nthroughput: {args.prospects:,} prospects (~{public} public), "
                f"{len(batches)} batches of <= {args.batch_size}, {args.concurrency} concurrent "
                f"run processes ({LAUNCH_LABELS[runner.name]}), "
                f"PostgreSQL, emulator latency {LATENCY_MS} ms"
            )
            print(f"  provider requests: {json.dumps(requests, sort_keys=True)}")
            answers: dict[str, Counter] = {}
            for p, routes in stats["responses"].items():
                answers[p] = Counter()
                for codes in routes.values():
                    answers[p].update({int(code): n for code, n in codes.items()})
            others = {
                p: dict(sorted((c, n) for c, n in codes.items() if c not in (200, 404)))
                for p, codes in answers.items()
            }
            print(f"  answers other than 200/404 (429 = over the provider's limit): {others}")
            edgar_per = requests.get("edgar", 0) / max(public, 1)
            print(f"  EDGAR requests per public prospect: {edgar_per:.1f}")
            print(f"  outcomes: {dict(sorted(outcomes.items()))}")
            print(f"  prospects: {dict(statuses)}; job {job.status} {job.processed}/{job.total}")
            print(f"  wall time: {wall:7.1f} s")
            print(
                "  limits in effect (published = what the resource enforces, its run metadata's "
                "`rate_limits`; enforced = per second, in the client's limiter and the "
                "emulator), requests the emulator saw, requests / enforced limit, and the share "
                f"of the limit used over the {wall:.1f} s wall:"
            )
            for line in limits_table(stats["groups"], rates, published, wall):
                print(line)
            print(
                f"  rate-limit bound: {bound:7.1f} s ({slowest}, at the enforced limits; "
                f"{published_bound:.1f} s at the published ones)"
            )
            print(
                f"  peak RSS of a run process: {rss_mb:7.1f} MB"
                + (
                    " (the warm worker's; its children share its pages)"
                    if args.launch == "warm"
                    else ""
                )
            )
            # The same run process with nothing left to call (every source of the batch is
            # final): what each run costs besides its provider calls (set-up, the step's
            # Dagster events and materializations, the batch's start and finish). Measured
            # twice: one such run alone on a quiet machine, and `--concurrency` of them at once
            # as the bulk job runs them, the per-run cost under the same contention; the
            # per-request figure subtracts the latter (median of `NO_CALL_ROUNDS` rounds).
            before = runner.cpu_seconds()
            run_batches(runner, batches[:1], 1)
            quiet_fixed_cpu = runner.cpu_seconds() - before
            loaded_rounds = no_call_cpu_per_run(runner, batches, args.concurrency)
            fixed_cpu = statistics.median(loaded_rounds)
            # That run summarizes nothing, so it never imports the anthropic SDK; every bench
            # batch does, once per process (ClaudeResource.warm_up): a per-run cost as well,
            # unless the warm worker imported it once for all of them.
            sdk_cpu = sdk_import_cpu_seconds() if args.launch == "spawn" else 0.0
            cores = os.cpu_count() or 1
            cpu_floor = (runs_cpu + emulator_cpu) / cores
            calls_cpu = max(runs_cpu - (fixed_cpu + sdk_cpu) * len(batches), 0.0)
            n_requests = max(sum(requests.values()), 1)
            print(
                f"  CPU: run processes {runs_cpu:.0f} s, emulator {emulator_cpu:.0f} s; on "
                f"{cores} cores that alone needs {cpu_floor:.1f} s of wall time (the CPU floor)"
            )
            if args.launch == "warm":
                print(
                    f"    the warm worker's preload, once: {runner.preload_cpu:.1f} s (included "
                    "in the run processes' CPU)"
                )
            print(
                f"    a run with no provider call to make: {quiet_fixed_cpu:.2f} s alone, "
                f"{fixed_cpu:.2f} s each with {args.concurrency} at once (rounds: "
                f"{', '.join(f'{c:.2f}' for c in loaded_rounds)} s); subtracting the quiet "
                f"figure instead: "
                f"{max(runs_cpu - quiet_fixed_cpu * len(batches), 0.0) / n_requests * 1000:.1f} "
                "ms per provider request"
            )
            print(
                f"    per run process: {fixed_cpu:.1f} s besides its provider calls (imports, run "
                f"set-up, events) + {sdk_cpu:.1f} s importing the anthropic SDK"
                f"{' (preloaded by the warm worker)' if args.launch == 'warm' else ''} "
                f"({(fixed_cpu + sdk_cpu) * len(batches):.0f} s for {len(batches)} runs), then "
                f"{calls_cpu / n_requests * 1000:.1f} ms per provider request "
                f"({(calls_cpu + sdk_cpu * len(batches)) / n_requests * 1000:.1f} ms counting "
                "the SDK import per request)"
            )
            busiest = stats["per_second"].get(slowest.partition(".")[0], [])
            print(
                f"  {slowest.partition('.')[0]} requests per 10 s (capacity "
                f"{rates[slowest] * 10:g}): {timeline(busiest)}; used "
                f"{busy_share(busiest, rates[slowest]):.0%} of its capacity while the runs lasted"
            )
            durations = sorted(end - start for start, end in spans)
            print(
                f"  run process durations: min {durations[0]:.1f} s, median "
                f"{durations[len(durations) // 2]:.1f} s, max {durations[-1]:.1f} s"
            )
            batched_per_prospect = wall / args.prospects

            # 3. one run per prospect
            tenant2, ids2 = seed(app_db, 20, args.public_share, 4)
            enqueue_enrichment(app_db.engine, tenant_id=tenant2, prospect_ids=ids2)
            singles = queue_all(app_db, SensorSettings(batch_size=1))
            single_wall = run_batches(runner, singles, args.concurrency)
            runner.close()
            per_single = single_wall / len(singles)
            print(
                f"\none run per prospect: {len(singles)} runs in {single_wall:.1f} s "
                f"({args.concurrency} at a time) = {per_single:.2f} s per prospect, against "
                f"{batched_per_prospect * 1000:.0f} ms per prospect batched "
                f"({per_single / batched_per_prospect:.0f}x)"
            )
            print(
                f"\nwall / max(rate-limit bound, CPU floor) = {wall / max(bound, cpu_floor):.2f}x "
                "(how close the runs came to what this machine allows)"
            )
            print(f"wall / rate-limit bound = {wall / bound:.2f}x (target <= 1.2x)")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
