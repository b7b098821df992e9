"""Benchmark: recovery under chaos. A bulk enrichment job through the provider emulator, run by
`dagster-daemon run` on the project's workspace (the laptop instance: DefaultRunLauncher,
QueuedRunCoordinator, run retries and run monitoring as `make dev` writes them, at most 4
enrichment runs at a time as in production), while a killer SIGKILLs a random live batch run
process every `--kill-every` seconds and, once, the daemon with its whole process group (its
code server and every run die with it), then starts the daemon again.

The same job runs first without kills (the baseline; `--skip-baseline` to skip it).

Prints, for the run with kills:
- requests finished / total (done) and any that ended otherwise;
- prospects still `in_progress` at the end (target 0);
- provider calls repeated for a (prospect, source) already final before a kill (target 0),
  from the emulator's own request log (Apollo, ContactOut, Exa: the providers whose request
  key names the prospect);
- for every kill, how long until the killed batch's replacement run started (the retry the
  code server's failure report or the heartbeat sensor led to), and the longest (target < 2 min);
- wall time against the baseline; the ratio is the last line.

The emulator runs as in bench/enrichment.py: 50 ms latency, 100 requests/s per provider (EDGAR
10/s), the resources configured with the same rates. The app database is a new PostgreSQL
database on `--database-url`'s server, dropped afterwards.

Usage, from the repository root (it imports `bench.enrichment`):
`.venv/bin/python -m bench.chaos [--prospects 1000] [--batch-size 100] [--kill-every 20]
[--public-share 0.1] [--database-url URL] [--skip-baseline]`.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from bench.enrichment import CLIENT_RATE_LIMITS, Emulator, _new_pg_db, seed
from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.db.models import EnrichmentRequest, EnrichmentRunHeartbeat, Prospect
from phronesis_dagster.demo import LOCAL_INSTANCE_YAML
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from phronesis_dagster.resources.app_db import AppDatabase
from tests.reliability.conftest import completed_pairs, repeated_calls

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
OPEN = ("pending", "queued", "running")
# The laptop instance (LOCAL_INSTANCE_YAML) with the production run queue's enrichment limit and
# a 1 s dequeue interval.
INSTANCE_YAML = (
    """\
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    tag_concurrency_limits:
      - key: phronesis/domain
        value: enrichment
        limit: 4
"""
    + LOCAL_INSTANCE_YAML
)
TARGET_RESUME_S = 120


@dataclass
class Kill:
    """One kill: when, what, and which runs of each hit batch existed then."""

    at: float
    what: str
    batches: dict[str, set[str]]
    done: set = field(default_factory=set)
    keys: dict = field(default_factory=dict)


def start_daemon(home: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_daemon(daemon: subprocess.Popen) -> None:
    if daemon.poll() is not None:
        return
    try:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait(10)
    except ProcessLookupError:
        pass


def live_runs(engine: sa.Engine) -> list:
    """Heartbeat rows of batch steps running now (beat in the last 10 s, not stopped)."""
    hb = EnrichmentRunHeartbeat.__table__
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(hb).where(
                    hb.c.stopped_at.is_(None),
                    hb.c.beat_at > sa.func.now() - sa.text("interval '10 seconds'"),
                )
            )
        )


def runs_by_batch(instance: dg.DagsterInstance, batches: set[str]) -> dict[str, set[str]]:
    return {
        b: {
            r.dagster_run.run_id
            for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": b}))
        }
        for b in batches
    }


def resume_seconds(instance: dg.DagsterInstance, kill: Kill) -> dict[str, float | None]:
    """Per hit batch: seconds from the kill to the start of its first run not there before
    (None: never resumed)."""
    out: dict[str, float | None] = {}
    for batch, before in kill.batches.items():
        starts = [
            r.start_time
            for r in instance.get_run_records(dg.RunsFilter(tags={"dagster/partition": batch}))
            if r.dagster_run.run_id not in before and r.start_time is not None
        ]
        out[batch] = (min(starts) - kill.at) if starts else None
    return out


def request_counts(engine: sa.Engine) -> dict[str, int]:
    req = EnrichmentRequest.__table__
    with engine.connect() as conn:
        return {
            s: int(n)
            for s, n in conn.execute(
                sa.select(req.c.status, sa.func.count()).group_by(req.c.status)
            )
        }


def in_progress(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(Prospect.enrichment_status == "in_progress")
            ).scalar_one()
        )


def run_job(args: argparse.Namespace, emulator: Emulator, *, chaos: bool, folder: Path) -> dict:
    """One bulk job under the daemon; with `chaos`, the killer runs alongside."""
    label = "chaos" if chaos else "baseline"
    db_url = _new_pg_db(args.database_url, label)
    migrate.upgrade(db_url)
    app_db = AppDatabase(url=db_url)
    engine = app_db.engine
    home = folder / f"dagster_home_{label}"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    log = folder / f"daemon_{label}.log"
    env = {
        **os.environ,
        "PHRONESIS_DATABASE_URL": db_url,
        "PHRONESIS_DATA_DIR": str(folder / f"data_{label}"),
        **emulator.provider_env(),
        "PHRONESIS_PROVIDER_RATE_LIMITS": CLIENT_RATE_LIMITS,
        "PHRONESIS_ENRICHMENT_BATCH_SIZE": str(args.batch_size),
        "PYTHONPATH": str(REPO),
    }
    tenant, ids = seed(app_db, args.prospects, args.public_share, 11)
    emulator.reset()
    rng = random.Random(args.seed)
    kills: list[Kill] = []
    daemon_restarted = False
    started = time.time()
    enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=ids)
    daemon = start_daemon(home, env, log)
    next_kill = started + args.kill_every
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            while True:
                counts = request_counts(engine)
                if not any(counts.get(s) for s in OPEN):
                    break
                if time.time() - started > args.timeout:
                    print(f"  {label}: TIMEOUT with requests {counts}")
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited:\n{log.read_text()[-3000:]}")
                if chaos and time.time() >= next_kill:
                    next_kill = time.time() + args.kill_every
                    live = live_runs(engine)
                    if live and not daemon_restarted and len(kills) >= args.daemon_kill_after:
                        batches = {h.batch_key for h in live}
                        kill = Kill(
                            time.time(),
                            "daemon + code server + all runs",
                            runs_by_batch(instance, batches),
                        )
                        kill.done, kill.keys = completed_pairs(engine), emulator.stats()["keys"]
                        os.killpg(daemon.pid, signal.SIGKILL)
                        daemon.wait(10)
                        kill.at = time.time()
                        time.sleep(1)
                        daemon = start_daemon(home, env, log)
                        daemon_restarted = True
                        kills.append(kill)
                        print(
                            f"  t={kill.at - started:6.1f}s killed the daemon ({len(batches)} "
                            "batches running), restarted it"
                        )
                    elif live:
                        victim = rng.choice(live)
                        kill = Kill(
                            time.time(),
                            f"run pid {victim.pid}",
                            runs_by_batch(instance, {victim.batch_key}),
                        )
                        kill.done, kill.keys = completed_pairs(engine), emulator.stats()["keys"]
                        try:
                            os.kill(victim.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            continue
                        kill.at = time.time()
                        kills.append(kill)
                        print(
                            f"  t={kill.at - started:6.1f}s SIGKILL run of {victim.batch_key} "
                            f"(pid {victim.pid})"
                        )
                time.sleep(0.5)
            wall = time.time() - started
            resumes = [(k, resume_seconds(instance, k)) for k in kills]
    finally:
        stop_daemon(daemon)
    keys_after = emulator.stats()["keys"]
    repeated = {r for k in kills for r in repeated_calls(engine, k.done, k.keys, keys_after)}
    result = {
        "wall": wall,
        "requests": request_counts(engine),
        "total": len(ids),
        "in_progress": in_progress(engine),
        "repeated": sorted(repeated),
        "kills": kills,
        "resumes": resumes,
        "started": started,
    }
    engine_for(db_url).dispose()
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(
            f'DROP DATABASE IF EXISTS "{sa.make_url(db_url).database}" WITH (FORCE)'
        )
    admin.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prospects", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--public-share", type=float, default=0.1)
    parser.add_argument("--kill-every", type=float, default=20.0)
    parser.add_argument(
        "--daemon-kill-after", type=int, default=1, help="run kills before the daemon kill"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1_800.0)
    parser.add_argument("--database-url", default=DEFAULT_ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    emulator = Emulator()
    try:
        # Run processes killed by the last SIGTERM may still be writing their logs.
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
            folder = Path(tmp)
            os.environ["PHRONESIS_DATA_DIR"] = tmp
            baseline = None
            if not args.skip_baseline:
                print(f"baseline: {args.prospects:,} prospects, no kills")
                baseline = run_job(args, emulator, chaos=False, folder=folder)
                print(f"  wall {baseline['wall']:.1f} s, requests {baseline['requests']}")
            print(
                f"chaos: {args.prospects:,} prospects, a run SIGKILLed every "
                f"{args.kill_every:g} s, the daemon killed once"
            )
            chaos = run_job(args, emulator, chaos=True, folder=folder)
    finally:
        emulator.stop()

    requests = chaos["requests"]
    done = requests.get("done", 0)
    others = {s: n for s, n in requests.items() if s != "done"}
    print(f"\nrequests finished: {done} / {chaos['total']} done; other statuses: {others or 0}")
    print(f"prospects still in_progress: {chaos['in_progress']}")
    print(
        "provider calls repeated for a (prospect, source) final before a kill: "
        f"{len(chaos['repeated'])} {chaos['repeated'][:5] or ''}"
    )
    longest = 0.0
    never = 0
    for kill, per_batch in chaos["resumes"]:
        for batch, seconds in per_batch.items():
            shown = f"{seconds:6.1f} s" if seconds is not None else "  never"
            print(
                f"  kill at t={kill.at - chaos['started']:6.1f}s ({kill.what}): {batch} "
                f"resumed after {shown}"
            )
            if seconds is None:
                never += 1
            else:
                longest = max(longest, seconds)
    print(f"kills: {len(chaos['kills'])}; batches never resumed: {never}")
    print(
        f"longest time a killed batch took to resume: {longest:.1f} s "
        f"(target < {TARGET_RESUME_S} s)"
    )
    if baseline:
        print(f"wall time: {chaos['wall']:.1f} s with kills, {baseline['wall']:.1f} s without")
        print(f"wall with kills / without = {chaos['wall'] / baseline['wall']:.2f}x")
    else:
        print(f"wall time with kills: {chaos['wall']:.1f} s")


if __name__ == "__main__":
    main()
