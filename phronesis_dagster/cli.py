"""`phronesis` command line: migrate, seed, demo, dev.

`phronesis demo` is the README's main command: it migrates, seeds demo data, starts the provider
emulator and materializes the whole pipeline end to end, printing what it did.

With `PHRONESIS_DATABASE_URL` unset, every command runs on the embedded PostgreSQL server under the
data folder (`db/embedded.py`): started or reused when the command begins, named in
`PHRONESIS_DATABASE_URL` for everything the command starts (Dagster's code server, daemon and run
processes inherit it), stopped when the command ends unless another command still uses it.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.db.engine import DATABASE_URL_ENV, engine_for, local_data_dir, normalize_url

# The app database's name on the embedded server.
EMBEDDED_APP_DATABASE = "phronesis"
# Where the laptop's Dagster instance keeps runs and events when the app database is the embedded
# server: "postgres" (a `dagster` database on that server, as production does) or "local"
# (Dagster's default files under DAGSTER_HOME). docs/deployment.md ("Laptop default") has the
# measurements behind the default; bench/laptop_instance.py compares the two.
DAGSTER_STORAGE_ENV = "PHRONESIS_LAPTOP_DAGSTER_STORAGE"
DEFAULT_DAGSTER_STORAGE = "postgres"
EMBEDDED_DAGSTER_DATABASE = "dagster"
# Set to that database's URL while the embedded server runs; the local dagster.yaml reads it.
DAGSTER_DATABASE_URL_ENV = "PHRONESIS_DAGSTER_DATABASE_URL"
# How long `phronesis dev` waits for `dagster dev` to shut down after Ctrl-C before killing it.
DEV_SHUTDOWN_TIMEOUT_S = 30
# The niceness of bulk batch run processes under `phronesis dev` (enrichment/cpu_priority.py).
LAPTOP_BULK_RUN_NICENESS = 10


@contextmanager
def app_database(explicit_url: str | None = None, *, recreate: bool = False) -> Iterator[str]:
    """The app database URL for one command.

    A URL given (`--database-url`, else `PHRONESIS_DATABASE_URL`) is used as it is and never
    dropped. Otherwise the embedded server under the data folder is started or reused, its
    `phronesis` database created (`recreate`: dropped and created afresh, the demo's reset), and
    `PHRONESIS_DATABASE_URL` set for this process and every process it starts; on exit the
    variable is removed and the server stopped unless another command still holds it."""
    url = explicit_url or os.environ.get(DATABASE_URL_ENV)
    if url:
        shown = sa.make_url(normalize_url(url)).render_as_string(hide_password=True)
        print(f"app database: {shown}")
        yield url
        return
    from phronesis_dagster.db import embedded

    try:
        server = embedded.start(local_data_dir())
    except embedded.EmbeddedUnavailable as exc:
        raise SystemExit(str(exc)) from None
    storage = os.environ.get(DAGSTER_STORAGE_ENV, DEFAULT_DAGSTER_STORAGE)
    if storage not in ("postgres", "local"):
        raise SystemExit(f"{DAGSTER_STORAGE_ENV} must be 'postgres' or 'local', not {storage!r}")
    url = None
    try:
        url = server.ensure_database(EMBEDDED_APP_DATABASE, recreate=recreate)
        state = "reused" if server.reused else "started"
        print(f"app database: embedded PostgreSQL 18 ({state}), data in {server.data_dir}")
        env = {DATABASE_URL_ENV: url}
        if storage == "postgres":
            server.ensure_database(EMBEDDED_DAGSTER_DATABASE, recreate=recreate)
            # dagster-postgres needs psycopg2: it sends NOTIFY with a bound parameter, which
            # psycopg 3's server-side binding refuses (see deploy/dagster.yaml).
            env[DAGSTER_DATABASE_URL_ENV] = server.database_url(
                EMBEDDED_DAGSTER_DATABASE, driver="postgresql+psycopg2"
            )
        os.environ.update(env)
        try:
            yield url
        finally:
            for key in env:
                os.environ.pop(key, None)
    finally:
        if url is not None:
            # Close this process's pooled connections before the server goes away.
            engine_for(url).dispose()
        embedded.stop(server)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the Alembic migrations to the app database (production: run before each deploy)."""
    from phronesis_dagster.db import migrate

    with app_database(args.database_url) as url:
        if args.downgrade:
            migrate.downgrade(url, args.revision)
        else:
            migrate.upgrade(url, args.revision)
        print(f"app database at revision {migrate.current(url)}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Generate deterministic demo data into a migrated app database."""
    import time

    from phronesis_dagster.db import migrate
    from phronesis_dagster.demo_data import DemoDataSpec, seed_demo_data

    spec = DemoDataSpec(
        seed=args.seed,
        tenants=args.tenants,
        users_per_tenant=args.users_per_tenant,
        events=args.events,
        days=args.days,
        end=date.fromisoformat(args.end) if args.end else DemoDataSpec().end,
        prospects_per_tenant=args.prospects_per_tenant,
    )
    with app_database(args.database_url) as url:
        migrate.upgrade(url)
        started = time.perf_counter()
        summary = seed_demo_data(engine_for(url), spec)
    print(
        f"seeded {len(summary.tenant_ids)} tenants, {len(summary.user_ids)} users, "
        f"{len(summary.prospect_ids)} prospects, {summary.events:,} events "
        f"({summary.first_day} .. {summary.last_day}) in {time.perf_counter() - started:.1f}s"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Seed a small data set and run every part of the pipeline once, end to end."""
    from phronesis_dagster.demo import ensure_local_dagster_home, reset_local_dagster_home, run_demo

    fresh = not args.keep
    if fresh:
        reset_local_dagster_home()
    with app_database(recreate=fresh) as url:
        ensure_local_dagster_home()
        return run_demo(url, seed=args.seed, days=args.days)


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the provider emulator (unless provider keys are set) and `dagster dev`."""
    from phronesis_dagster.db import migrate
    from phronesis_dagster.demo import ensure_local_dagster_home, provider_environment
    from phronesis_dagster.enrichment.cpu_priority import BULK_RUN_NICENESS_ENV

    with app_database() as url, provider_environment(port=args.emulator_port):
        # The UI's sensors and schedules read the app tables: a first `make dev` without a
        # `make demo` before it gets them too.
        migrate.upgrade(url)
        ensure_local_dagster_home()
        # Bulk batch runs yield the laptop's cores to a rep's interactive run
        # (enrichment/cpu_priority.py).
        os.environ.setdefault(BULK_RUN_NICENESS_ENV, str(LAPTOP_BULK_RUN_NICENESS))
        # The dagster CLI installed next to this interpreter: `make dev` does not put .venv/bin
        # on PATH.
        dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
        cmd = [dagster, "dev", "-w", "workspace.yaml", "-p", str(args.port)]
        print(f"Dagster UI: http://127.0.0.1:{args.port}  (Ctrl-C stops it and the database)")
        return _run_until_it_exits(cmd)


def _run_until_it_exits(cmd: list[str]) -> int:
    """Run `cmd` to its end. On Ctrl-C the terminal has sent SIGINT to `dagster dev` too, which
    then stops its webserver, daemon and code servers: wait for that (killing it only after
    DEV_SHUTDOWN_TIMEOUT_S) so nothing still holds a connection when the database stops.
    `subprocess.call` would kill it at once instead."""
    process = subprocess.Popen(cmd)
    try:
        return process.wait()
    except (KeyboardInterrupt, SystemExit):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=DEV_SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phronesis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help=cmd_migrate.__doc__)
    p.add_argument(
        "--database-url",
        help=f"defaults to ${DATABASE_URL_ENV}, else the embedded PostgreSQL server",
    )
    p.add_argument("--revision", default="head")
    p.add_argument("--downgrade", action="store_true", help="downgrade to --revision instead")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("seed", help=cmd_seed.__doc__)
    p.add_argument("--database-url")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--tenants", type=int, default=3)
    p.add_argument("--users-per-tenant", type=int, default=5)
    p.add_argument("--events", type=int, default=5_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--end", help="last UTC day with activity (YYYY-MM-DD); default yesterday")
    p.add_argument("--prospects-per-tenant", type=int, default=20)
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("demo", help=cmd_demo.__doc__)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--days", type=int, default=7)
    p.add_argument(
        "--keep", action="store_true", help="keep the existing data and runs instead of resetting"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("dev", help=cmd_dev.__doc__)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--emulator-port", type=int, default=8765)
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Partitioned asset checks are a 1.13 preview feature we use on purpose; say it once in the
    # docs, not on every command.
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    args = build_parser().parse_args(argv)
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C does, so the embedded server is stopped. A
    # command started in the background of a script inherits SIGINT ignored, and so would every
    # process it starts (`dagster dev` would then never stop): Ctrl-C/SIGINT always interrupts.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
