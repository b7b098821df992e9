"""Pure enrichment logic: the status merge, progress lines, the request helper and the planner."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest
from phronesis_dagster.enrichment.progress import ProgressLogger
from phronesis_dagster.enrichment.requests import (
    INTERACTIVE,
    SensorSettings,
    cursor_after_id,
    enqueue_enrichment,
    plan_tick,
)
from phronesis_dagster.enrichment.status import (
    MalformedSourceStatus,
    lenient_source_status,
    overall_status,
    read_source_status,
)
from tests.enrichment.fixtures import add_prospects, add_tenant

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def row(rid: int, pid: int, **kw):
    base = {
        "id": rid,
        "tenant_id": 1,
        "prospect_id": pid,
        "force": False,
        "job_id": None,
        "p_id": pid,
        "p_tenant_id": 1,
        "p_name": "A",
        "p_company": "B",
        "p_status": "pending",
        "p_last_enriched_at": None,
        "busy": 0,
    }
    return {**base, **kw}


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"apollo": {"status": "complete"}, "exa": {"status": "failed"}}, "complete"),
        ({"apollo": {"status": "not_found"}, "exa": {"status": "not_found"}}, "complete"),
        ({"apollo": {"status": "failed"}, "exa": {"status": "circuit_open"}}, "failed"),
        ({"apollo": {"status": "failed"}, "sec": {"status": "skipped"}}, "failed"),
        ({"sec": {"status": "skipped"}, "contactout": {"status": "skipped"}}, "complete"),
        # Legacy plain strings from before the structured records read as {status: v}.
        ({"apollo": "failed", "exa": "complete"}, "complete"),
        ({"apollo": "failed", "sec": "skipped"}, "failed"),
        # The summary does not rescue a prospect whose data sources all failed.
        ({"apollo": {"status": "failed"}, "claude": {"status": "complete"}}, "failed"),
    ],
)
def test_overall_status(record, expected):
    assert overall_status(record) == expected


def test_progress_logger_reports_rate_and_eta():
    lines: list[str] = []
    clock = iter([0.0, 10.0, 10.0, 20.0, 20.0]).__next__
    progress = ProgressLogger(lines.append, label="b1", total=4, every_seconds=5, clock=clock)
    progress.advance(2)  # t=10: 2 of 4 at 0.2/s -> 10 s left
    progress.advance(2)  # t=20: done
    assert lines[0] == "b1: 2/4 (50%), 0.2/s, ETA 10s"
    assert lines[1].startswith("b1: 4/4 (100%)")


JOB = uuid.UUID(int=7)


def test_plan_batches_in_request_order_and_cursor_wraps_at_the_end():
    rows = [row(i, 100 + i, job_id=JOB) for i in range(1, 6)]
    plan = plan_tick(rows, SensorSettings(batch_size=2), now=NOW, limit=10)
    assert [b.prospect_ids for b in plan.batches] == [(101, 102), (103, 104), (105,)]
    assert [b.key for b in plan.batches] == ["batch-1", "batch-3", "batch-5"]
    assert plan.next_after_id == 0
    assert plan_tick(rows, SensorSettings(), now=NOW, limit=5).next_after_id == 5


def test_the_interactive_lane_makes_only_interactive_batches():
    # A clicked prospect's bulk request whose click fell outside the tick's scan: still the
    # interactive sensor's batch (it re-emits only interactive ones).
    rows = [row(1, 101, job_id=JOB)]
    assert [b.lane for b in plan_tick(rows, SensorSettings(), now=NOW, limit=10).batches] == [
        "bulk"
    ]
    plan = plan_tick(rows, SensorSettings(), now=NOW, limit=10, lane=INTERACTIVE)
    assert [b.lane for b in plan.batches] == [INTERACTIVE]


def test_plan_batches_public_company_prospects_apart_and_first():
    rows = [row(i, 100 + i, p_public=i % 2 == 0, job_id=JOB) for i in range(1, 8)]
    plan = plan_tick(rows, SensorSettings(batch_size=2), now=NOW, limit=10)
    assert [b.prospect_ids for b in plan.batches] == [
        (102, 104),
        (106,),
        (101, 103),
        (105, 107),
    ]


def test_plan_staleness_boundary():
    week = timedelta(days=7)
    rows = [
        row(1, 1, p_status="complete", p_last_enriched_at=NOW - week + timedelta(seconds=1)),
        row(2, 2, p_status="complete", p_last_enriched_at=NOW - week - timedelta(seconds=1)),
        # A naive datetime is UTC.
        row(
            3,
            3,
            p_status="complete",
            p_last_enriched_at=(NOW - timedelta(days=1)).replace(tzinfo=None),
        ),
    ]
    plan = plan_tick(rows, SensorSettings(staleness=week), now=NOW, limit=10)
    assert [rid for rid, _ in plan.fresh] == [1, 3]
    assert [b.prospect_ids for b in plan.batches] == [(2,)]


def test_plan_puts_waited_for_requests_in_small_batches_ahead_of_bulk():
    bulk = [row(i, 100 + i, job_id=JOB) for i in range(1, 6)]
    # Single clicks arrive after the bulk list, and one prospect is in both.
    clicks = [row(10 + i, 200 + i) for i in range(3)] + [row(20, 101)]
    plan = plan_tick(
        bulk + clicks,
        SensorSettings(batch_size=100, interactive_batch_size=2),
        now=NOW,
        limit=50,
    )
    lanes = [(b.lane, b.prospect_ids, b.priority) for b in plan.batches]
    assert lanes == [
        # Prospect 101 is waited for (its click coalesced with the bulk request): interactive.
        ("interactive", (101, 200), 100),
        ("interactive", (201, 202), 100),
        ("bulk", (102, 103, 104, 105), 0),
    ]
    assert plan.batches[0].request_ids == (1, 10, 20)


def test_plan_makes_tenants_take_turns_in_the_run_queue():
    big, small = uuid.UUID(int=1), uuid.UUID(int=2)
    rows = [row(i, 1000 + i, tenant_id=big, p_tenant_id=big, job_id=JOB) for i in range(1, 7)]
    rows += [row(i, 1000 + i, tenant_id=small, p_tenant_id=small, job_id=JOB) for i in (7, 8)]
    # The big tenant already has 4 bulk batches queued or running from earlier ticks.
    plan = plan_tick(rows, SensorSettings(batch_size=2), now=NOW, limit=50, outstanding={big: 4})
    order = [(b.tenant_id, b.priority) for b in plan.batches]
    assert order == [(small, 0), (big, -4), (big, -5), (big, -6)]
    # Every bulk batch holds one tenant's prospects.
    for b in plan.batches:
        assert {1000 < p <= 1006 for p in b.prospect_ids} == {b.tenant_id == big}


@pytest.mark.parametrize("cursor", [None, "", "{}", "[1]", '{"after_id": "x"}', "garbage"])
def test_cursor_survives_missing_or_broken_values(cursor):
    assert cursor_after_id(cursor) == 0
    assert cursor_after_id('{"after_id": 42}') == 42


def test_legacy_string_records_read_as_status_and_are_not_dated():
    assert read_source_status({"exa": "failed", "sec": {"status": "complete", "at": "x"}}) == {
        "exa": {"status": "failed"},
        "sec": {"status": "complete", "at": "x"},
    }
    assert read_source_status(None) == {}
    assert read_source_status({}) == {}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("reset", "holds a JSON string 'reset', not an object"),
        (["complete"], "holds a JSON array"),
        (3, "holds a JSON number"),
        ({"exa": 5}, "enrichment_source_status['exa'] is a number"),
        ({"exa": ["failed"]}, "['exa'] is an array"),
        ({"exa": {"error": "x"}}, "['exa'] is an object without a string status"),
        ({"exa": None}, "['exa'] is a null"),
    ],
)
def test_malformed_records_raise_a_clear_reason(value, says):
    with pytest.raises(MalformedSourceStatus, match=re.escape(says)):
        read_source_status(value)
    # Display and counting never crash on them.
    assert isinstance(lenient_source_status(value), dict)
    assert overall_status(value if isinstance(value, dict) else {}) in ("complete", "failed")


def test_enqueue_creates_a_job_for_bulk_and_dedupes(postgres_url):
    engine = sa.create_engine(postgres_url)
    tenant = add_tenant(engine)
    p1, p2 = add_prospects(engine, tenant, 2)
    user = uuid.uuid4()

    # Text UUIDs (what a web request carries) are accepted like uuid.UUID values.
    job_id = enqueue_enrichment(
        engine,
        tenant_id=str(tenant),
        prospect_ids=[p1, str(p2), p1],
        requested_by=str(user),
        force=True,
    )
    single = enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[p2])

    assert single is None and isinstance(job_id, uuid.UUID)
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob.__table__)).one()
        reqs = conn.execute(sa.select(EnrichmentRequest.__table__)).all()
    assert (job.id, job.total, job.status, job.requested_by) == (job_id, 2, "pending", user)
    assert Counter((r.prospect_id, r.job_id, bool(r.force)) for r in reqs) == Counter(
        [(p1, job_id, True), (p2, job_id, True), (p2, None, False)]
    )
    with pytest.raises(ValueError, match="at least one"):
        enqueue_enrichment(engine, tenant_id=tenant, prospect_ids=[])
    engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"prospect_ids": ["not-a-uuid"]}, ValueError, "prospect id must be a UUID"),
        ({"prospect_ids": [7]}, TypeError, "prospect id must be a UUID, got int 7"),
        ({"prospect_ids": [True]}, TypeError, "must be a UUID"),
        ({"tenant_id": "12345"}, ValueError, "tenant_id must be a UUID"),
        ({"requested_by": 3}, TypeError, "requested_by must be a UUID"),
        ({"prospect_ids": str(uuid.uuid4())}, TypeError, "a list of prospect ids"),
    ],
)
def test_enqueue_rejects_malformed_ids_and_writes_nothing(postgres_url, kwargs, error, says):
    engine = sa.create_engine(postgres_url)
    tenant = add_tenant(engine)
    (good,) = add_prospects(engine, tenant, 1)
    # The bad id comes after a good one: nothing of the call may be written.
    args = {"tenant_id": tenant, "prospect_ids": [good, uuid.uuid4()], **kwargs}
    if "prospect_ids" in kwargs and isinstance(kwargs["prospect_ids"], list):
        args["prospect_ids"] = [good, *kwargs["prospect_ids"]]
    with pytest.raises(error, match=re.escape(says)):
        enqueue_enrichment(engine, **args)
    with engine.connect() as conn:
        for table in (EnrichmentJob.__table__, EnrichmentRequest.__table__):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0
    engine.dispose()
