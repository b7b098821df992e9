"""EDGAR check: every insider of the emulator's public companies who filed is found, and a
re-run costs SEC almost nothing.

The emulator's public-company prospects are its reporting owners (`edgar_insiders`, the people
`demo_data.insert_demo_prospects` turns into public-company prospects), each asked for as a CRM
holds them ("First Last" + ticker + CIK). Two runs, each a fresh `EdgarResource` (as two Dagster
runs are), against the emulator at SEC's real 10 requests/s:

1. first run: empty app database (no cached documents, no known owners);
2. re-run: the same prospects, reading filed documents and owner CIKs from the app database.

Prints per prospect the SEC requests of each run (the emulator's count), then totals, the
prospects who filed but were not found (must be 0) and, last, the re-run/first-run ratio of
SEC requests.

Usage: `.venv/bin/python bench/edgar_check.py [--limit N] [--seed 0] [--database-url URL]`
(default: a new PostgreSQL database on 127.0.0.1, dropped afterwards).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from phronesis_dagster.db import migrate
from phronesis_dagster.db.engine import engine_for
from phronesis_dagster.emulator import EmulatorConfig, EmulatorServer, edgar_insiders
from phronesis_dagster.resources.app_db import AppDatabase
from phronesis_dagster.resources.edgar import SEC_REQUESTS_PER_SECOND, EdgarResource

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextmanager
def database(url: str | None) -> Iterator[AppDatabase]:
    """The given database, or a fresh PostgreSQL one dropped at the end; migrated."""
    if url:
        migrate.upgrade(url)
        yield AppDatabase(url=url)
        return
    name = f"bench_edgar_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    fresh = sa.make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(fresh)
        yield AppDatabase(url=fresh)
    finally:
        engine_for(fresh).dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def sec_requests(emu: EmulatorServer) -> int:
    return emu.stats()["requests"].get("edgar", 0)


def one_run(
    emu: EmulatorServer, db: AppDatabase, prospects: list[dict[str, Any]]
) -> tuple[list[tuple[int, Any]], dict[str, int], float]:
    """Each prospect in turn through one resource (one run); (requests, report) per prospect."""
    urls = emu.base_urls()
    resource = EdgarResource(
        user_agent="phronesis bench bench@example.com",
        www_base_url=urls["edgar_www"],
        data_base_url=urls["edgar_data"],
        app_db=db,
        provider_mode="emulator",
    )
    out = []
    started = time.perf_counter()
    try:
        for p in prospects:
            before = sec_requests(emu)
            report = resource.insider_transactions(
                ticker=p["ticker"], cik=p["cik"], owner_name=p["full_name"]
            )
            out.append((sec_requests(emu) - before, report))
    finally:
        resource.close()
    return out, resource.cache_stats(), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="first N prospects only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    prospects = edgar_insiders(args.seed)
    if args.limit:
        prospects = prospects[: args.limit]
    config = EmulatorConfig(
        seed=args.seed, rate_limit_per_second={"edgar": SEC_REQUESTS_PER_SECOND}
    )
    with EmulatorServer(config) as emu, database(args.database_url) as db:
        first, first_stats, first_s = one_run(emu, db, prospects)
        rerun, rerun_stats, rerun_s = one_run(emu, db, prospects)
        blocked = sum(
            int(code == "403" and "Archives" not in route) * n
            for route, codes in emu.stats()["responses"].get("edgar", {}).items()
            for code, n in codes.items()
        )

    print(f"{'ticker':<6} {'prospect':<24} {'filed':>5} {'found':>6} {'first':>6} {'rerun':>6}")
    missed, other_person = [], []
    for p, (n1, r1), (n2, r2) in zip(prospects, first, rerun, strict=True):
        found = r1.total_found if r1 else 0
        if p["filings"] and (r1 is None or r2 is None or not r1.transactions):
            missed.append(p)
        elif r1.owner_cik != p["owner_cik"]:
            other_person.append(p)  # a namesake at the same issuer: the name alone cannot tell
        print(
            f"{p['ticker']:<6} {p['full_name'][:24]:<24} {p['filings']:>5} "
            f"{found if r1 else 'none':>6} {n1:>6} {n2:>6}"
        )
    total1, total2 = sum(n for n, _ in first), sum(n for n, _ in rerun)
    n = len(prospects)
    print()
    print(f"prospects: {n}, SEC at {SEC_REQUESTS_PER_SECOND} requests/s (emulator and client)")
    print(f"first run: {total1} SEC requests ({total1 / n:.2f}/prospect) in {first_s:.1f} s")
    print(f"  {first_stats}")
    print(f"re-run:    {total2} SEC requests ({total2 / n:.2f}/prospect) in {rerun_s:.1f} s")
    print(f"  {rerun_stats}")
    print(f"SEC over-the-limit refusals: {blocked}")
    print(f"insiders who filed but were not found: {len(missed)}")
    for p in missed:
        print(f"  MISSED {p['ticker']} {p['full_name']} ({p['filings']} filings)")
    print(f"found a namesake instead (same name, same issuer): {len(other_person)}")
    for p in other_person:
        print(f"  NAMESAKE {p['ticker']} {p['full_name']} (CIK {p['owner_cik']})")
    print(f"re-run / first-run SEC requests: {total2 / max(total1, 1):.3f}")


if __name__ == "__main__":
    main()
