"""Enrichment asset checks on a real database: stuck prospects and source failure rates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from phronesis_dagster.checks.enrichment import failure_rate_result, stuck_prospects_result
from phronesis_dagster.db.models import EnrichmentSourceResult, Prospect
from tests.enrichment.fixtures import add_prospect, add_tenant
from tests.metadata_tables import table_rows

NOW = datetime.now(UTC)


def _touch(engine, pid: int, status: str, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(Prospect)
            .where(Prospect.id == pid)
            .values(enrichment_status=status, updated_at=at)
        )


def test_stuck_check_fails_only_after_an_hour_in_progress(app_db):
    engine = app_db.engine
    tenant = add_tenant(engine)
    recent, old, done = (add_prospect(engine, tenant) for _ in range(3))
    _touch(engine, recent, "in_progress", NOW - timedelta(minutes=10))
    _touch(engine, done, "complete", NOW - timedelta(hours=5))
    assert stuck_prospects_result(app_db, now=NOW).passed

    _touch(engine, old, "in_progress", NOW - timedelta(hours=2))
    result = stuck_prospects_result(app_db, now=NOW)

    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.ERROR
    assert table_rows(
        result.metadata["prospects_sample"], ["prospect_id", "tenant_id", "since"]
    ) == [
        {
            "prospect_id": str(old),
            "tenant_id": str(tenant),
            "since": (NOW - timedelta(hours=2)).isoformat(),
        }
    ]


TENANT = uuid.uuid4()


def _results(engine, source: str, statuses: list[str], at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(EnrichmentSourceResult),
            [
                {
                    "batch_key": f"b-{source}-{i}",
                    "prospect_id": uuid.uuid4(),
                    "tenant_id": TENANT,
                    "source": source,
                    "status": s,
                    "created_at": at,
                    "updated_at": at,
                }
                for i, s in enumerate(statuses)
            ],
        )


def test_failure_rate_check_warns_per_source_over_the_threshold(app_db):
    engine = app_db.engine
    _results(engine, "apollo", ["complete"] * 18 + ["failed"] * 2, NOW)  # 10%
    _results(engine, "exa", ["complete"] * 14 + ["failed", "circuit_open"] * 3, NOW)  # 30%
    _results(engine, "sec", ["skipped"] * 40 + ["failed"] * 2, NOW)  # 2 calls: too few
    _results(engine, "contactout", ["failed"] * 30, NOW - timedelta(days=2))  # outside window

    result = failure_rate_result(app_db, now=NOW, threshold=0.2, min_calls=20)

    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert "exa 30%" in result.description
    assert "apollo" not in result.description and "sec" not in result.description
    assert table_rows(
        result.metadata["failure_rate_by_source"],
        ["source", "calls", "failures", "failure_rate", "over_threshold"],
    ) == [
        {
            "source": "apollo",
            "calls": 20,
            "failures": 2,
            "failure_rate": 0.1,
            "over_threshold": False,
        },
        {"source": "exa", "calls": 20, "failures": 6, "failure_rate": 0.3, "over_threshold": True},
        # 2 of 2 calls failed, but 2 calls are too few to say anything.
        {"source": "sec", "calls": 2, "failures": 2, "failure_rate": 1.0, "over_threshold": False},
    ]
