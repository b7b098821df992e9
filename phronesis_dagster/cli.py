"""`phronesis` command line: migrate, seed, demo, dev.

`phronesis demo` is the README's main command: on the embedded default (SQLite app data, Dagster's
local storage under .data/) it migrates, seeds demo data, starts the provider emulator and
materializes the whole pipeline end to end, printing what it did.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import date

import dagster as dg

from phronesis_dagster.resources.app_db import (
    DATABASE_URL_ENV,
    default_database_url,
    engine_for,
)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply the Alembic migrations to the app database (production: run before each deploy)."""
    from phronesis_dagster.db import migrate

    url = args.database_url or default_database_url()
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

    url = args.database_url or default_database_url()
    migrate.upgrade(url)
    spec = DemoDataSpec(
        seed=args.seed,
        tenants=args.tenants,
        users_per_tenant=args.users_per_tenant,
        events=args.events,
        days=args.days,
        end=date.fromisoformat(args.end) if args.end else DemoDataSpec().end,
        prospects_per_tenant=args.prospects_per_tenant,
    )
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
    from phronesis_dagster.demo import ensure_local_dagster_home, run_demo

    ensure_local_dagster_home()
    return run_demo(fresh=not args.keep, seed=args.seed, days=args.days)


def cmd_dev(args: argparse.Namespace) -> int:
    """Start the provider emulator (unless provider keys are set) and `dagster dev`."""
    from phronesis_dagster.demo import ensure_local_dagster_home, provider_environment

    ensure_local_dagster_home()
    with provider_environment(port=args.emulator_port):
        import subprocess

        # The dagster CLI installed next to this interpreter: `make dev` does not put .venv/bin
        # on PATH.
        dagster = os.path.join(os.path.dirname(sys.executable), "dagster")
        cmd = [dagster, "dev", "-w", "workspace.yaml", "-p", str(args.port)]
        return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phronesis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help=cmd_migrate.__doc__)
    p.add_argument("--database-url", help=f"defaults to ${DATABASE_URL_ENV} or the local SQLite")
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
    p.add_argument("--keep", action="store_true", help="keep existing .data instead of reseeding")
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
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
