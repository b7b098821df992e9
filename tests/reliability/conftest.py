"""Shared pieces of the reliability suite: the `slow` gate, a PostgreSQL app database for the
enrichment fault tests, and the invariants every fault scenario must leave behind:

- no request lost: every `enrichment_requests` row is closed (done / failed / rejected);
- no prospect stuck `in_progress`, and its per-source record matches the idempotency table;
- no provider call repeated for a source that had completed (emulator request keys).

Tests marked `@pytest.mark.slow` are skipped unless `PHRONESIS_RUN_SLOW=1`.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import pytest
import sqlalchemy as sa

from bench.backfill import expected_counts, stored_counts
from phronesis_dagster.db.models import (
    EnrichmentRequest,
    EnrichmentSourceResult,
    Prospect,
)
from phronesis_dagster.demo_data import insert_demo_prospects
from phronesis_dagster.emulator.data import person_key
from phronesis_dagster.enrichment.constants import ALL_SOURCES, FINAL_STATUSES
from phronesis_dagster.enrichment.status import overall_status
from phronesis_dagster.resources.app_db import AppDatabase
from tests.enrichment.fixtures import add_tenant

SLOW_ENV = "PHRONESIS_RUN_SLOW"
# The `emulator` fixture runs seed 0; public prospects are its Form 4 insiders only then.
EMULATOR_SEED = 0
CLOSED_REQUEST_STATUSES = {"done", "failed", "rejected"}
# Sources whose emulator request key we can derive from the prospect row.
KEYED_SOURCES = ("apollo", "contactout", "exa")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slow") and os.environ.get(SLOW_ENV) != "1":
        pytest.skip(f"slow load test: set {SLOW_ENV}=1 to run it")


@pytest.fixture
def pg_app_db(postgres_url: str, tmp_path, monkeypatch) -> AppDatabase:
    """The production shape: a migrated PostgreSQL app database of the test's own (the rate
    limiter buckets and breaker rows live in it too)."""
    monkeypatch.setenv("PHRONESIS_DATA_DIR", str(tmp_path))
    return AppDatabase(url=postgres_url)


def seed_prospects(
    app_db: AppDatabase, n: int, *, public_share: float = 0.3, salt: int = 7, tenant: str = "Acme"
) -> tuple[int, list[int]]:
    """`n` demo prospects of a new tenant: public and private companies, with email, LinkedIn
    only, or neither (the public ones are the emulator's Form 4 insiders)."""
    tenant_id = add_tenant(app_db.engine, name=f"{tenant} {salt}")
    with app_db.begin() as conn:
        ids = insert_demo_prospects(
            conn,
            tenant_id=tenant_id,
            count=n,
            rng=random.Random(salt),
            public_company_share=public_share,
            emulator_seed=EMULATOR_SEED,
        )
    return tenant_id, ids


# -- the invariants -------------------------------------------------------------------------


def source_keys(p: Any) -> dict[str, str]:
    """The emulator's request key of each keyed source for prospect row `p`."""
    keys = {"exa": f"{p.name} {p.company or ''}".strip()}
    if p.email or p.linkedin_url:
        # ContactOut is skipped without a handle, so its key only exists with one.
        keys["contactout"] = person_key(email=p.email, linkedin_url=p.linkedin_url)
    keys["apollo"] = person_key(
        email=p.email, linkedin_url=p.linkedin_url, name=p.name, company=p.company
    )
    return keys


def completed_pairs(engine: sa.Engine) -> set[tuple[int, str]]:
    """(prospect_id, source) pairs whose result is final in the idempotency table."""
    res = EnrichmentSourceResult.__table__
    with engine.connect() as conn:
        return {
            (r.prospect_id, r.source)
            for r in conn.execute(
                sa.select(res.c.prospect_id, res.c.source).where(res.c.status.in_(FINAL_STATUSES))
            )
        }


def repeated_calls(
    engine: sa.Engine,
    done_before: set[tuple[int, str]],
    keys_before: dict[str, list[str]],
    keys_after: dict[str, list[str]],
) -> list[tuple[int, str, str]]:
    """Provider calls made between the two emulator snapshots for a (prospect, source) that was
    already final before the first one. Calls for a key shared with a prospect that was not
    final are allowed up to the number of those other prospects' attempts (any)."""
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(Prospect.__table__))}
    final_keys: dict[str, Counter] = {s: Counter() for s in KEYED_SOURCES}
    open_keys: dict[str, set[str]] = {s: set() for s in KEYED_SOURCES}
    for pid, p in rows.items():
        for source, key in source_keys(p).items():
            if (pid, source) in done_before:
                final_keys[source][key] += 1
            else:
                open_keys[source].add(key)
    repeats = []
    for source in KEYED_SOURCES:
        # The keyed sources are named like their emulated providers.
        new = Counter(keys_after.get(source, [])) - Counter(keys_before.get(source, []))
        for key in final_keys[source]:
            if new[key] and key not in open_keys[source]:
                pid = next(i for i, p in rows.items() if source_keys(p).get(source) == key)
                repeats.append((pid, source, key))
    return repeats


def assert_enrichment_invariants(engine: sa.Engine, prospect_ids: Iterable[int]) -> None:
    """No request lost, no prospect stuck, every source final and mirrored on the prospect."""
    ids = set(prospect_ids)
    res = EnrichmentSourceResult.__table__
    with engine.connect() as conn:
        prospects = {
            r.id: r for r in conn.execute(sa.select(Prospect.__table__).where(Prospect.id.in_(ids)))
        }
        requests = list(conn.execute(sa.select(EnrichmentRequest.__table__)))
        results: dict[tuple[int, str], list[Any]] = {}
        for r in conn.execute(sa.select(res).where(res.c.prospect_id.in_(ids))):
            results.setdefault((r.prospect_id, r.source), []).append(r)

    open_requests = [(r.id, r.status) for r in requests if r.status not in CLOSED_REQUEST_STATUSES]
    assert not open_requests, f"requests lost (never closed): {open_requests[:10]}"
    requested = {r.prospect_id for r in requests}
    assert ids <= requested, f"prospects without a request: {sorted(ids - requested)[:10]}"
    stuck = [pid for pid, p in prospects.items() if p.enrichment_status == "in_progress"]
    assert not stuck, f"prospects stuck in_progress: {stuck[:10]}"
    for pid, p in prospects.items():
        latest = max(
            (r for r in requests if r.prospect_id == pid), key=lambda r: r.id
        )  # the request that decided the prospect
        if latest.status == "rejected":
            continue
        # A run that died before finishing leaves a partial record (closed by the failure
        # hook); what is there must match the idempotency table.
        record = p.enrichment_source_status or {}
        for source in ALL_SOURCES:
            rows = results.get((pid, source), [])
            assert len(rows) <= 1, (pid, source, "duplicate idempotency rows")
            if rows and rows[0].status in FINAL_STATUSES and source in record:
                assert record[source]["status"] == rows[0].status, (pid, source)
        if set(record) == set(ALL_SOURCES):
            assert p.enrichment_status == overall_status(record), pid
        expected = "done" if p.enrichment_status == "complete" else "failed"
        assert latest.status == expected, (pid, latest.status, p.enrichment_status)


# -- usage rollups --------------------------------------------------------------------------


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, dtime.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


# The same independent GROUP BY the backfill benchmark checks its 30 days with.
expected_usage = expected_counts
stored_usage = stored_counts
