"""The enrichment assets with scripted provider fakes: per-source statuses (complete, not_found,
failed, circuit_open, skipped), the merged prospect status, re-runs that reuse what completed,
and the run-status sensors that close a failed or canceled batch."""

from __future__ import annotations

import threading
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from phronesis_dagster.assets.enrichment import ENRICHMENT_ASSETS
from phronesis_dagster.assets.enrichment.partitions import enrichment_batch_partitions
from phronesis_dagster.db.models import EnrichmentJob, EnrichmentRequest, Prospect
from phronesis_dagster.enrichment.constants import ALL_SOURCES, SOURCE_STATUSES
from phronesis_dagster.enrichment.requests import enqueue_enrichment
from phronesis_dagster.enrichment.store import start_batch
from phronesis_dagster.jobs import enrichment_batch_job
from phronesis_dagster.resources.contract import ProspectInput, ProviderAnswer
from phronesis_dagster.resources.errors import ProviderUnavailableError
from phronesis_dagster.resources.exa import ExaResource
from phronesis_dagster.resources.registry import BY_NAME, Provider
from phronesis_dagster.sensors.enrichment import (
    build_enrichment_request_sensor,
    enrichment_run_canceled_sensor,
    enrichment_run_failure_sensor,
)
from tests.enrichment.fakes import FakeProvider, fake_providers
from tests.enrichment.fixtures import add_prospect, add_tenant, prospect, requests_by_id
from tests.metadata_tables import table_rows

MATRIX_COLUMNS = ["prospect_id", "name", *ALL_SOURCES, "enrichment_status"]
BY_SOURCE_COLUMNS = [
    "source",
    *SOURCE_STATUSES,
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_max_ms",
]
SOURCE_COLUMNS = ["prospect_id", "name", "status", "latency_ms", "error"]


@pytest.fixture
def fakes() -> dict[str, FakeProvider]:
    return fake_providers()


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def queue_batches(app_db, instance, prospect_ids, tenant) -> list[str]:
    enqueue_enrichment(app_db.engine, tenant_id=tenant, prospect_ids=prospect_ids)
    result = build_enrichment_request_sensor()(
        dg.build_sensor_context(instance=instance, resources={"app_db": app_db})
    )
    keys = [r.partition_key for r in result.run_requests]
    instance.add_dynamic_partitions(enrichment_batch_partitions.name, keys)
    return keys


def queue_batch(app_db, instance, prospect_ids, tenant) -> str:
    (key,) = queue_batches(app_db, instance, prospect_ids, tenant)
    return key


def materialize(app_db, instance, fakes, batch, selection=None):
    return dg.materialize(
        [a for a in ENRICHMENT_ASSETS if not isinstance(a, dg.AssetSpec)],
        partition_key=batch,
        instance=instance,
        resources={"app_db": app_db, **fakes},
        selection=selection,
    )


def test_each_source_records_what_happened_and_the_status_merges(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    public = add_prospect(
        engine, tenant, name="Pat Public", is_public_company=True, company_ticker="ACME"
    )
    handleless = add_prospect(engine, tenant, name="Nora Nohandle", email=None)
    unlucky = add_prospect(engine, tenant, name="Una Lucky")
    fakes["apollo"].behaviour = {"Una Lucky": "fail", "Pat Public": "none"}
    fakes["contactout"].behaviour = {"Una Lucky": "open"}
    fakes["exa"].behaviour = {"Una Lucky": "fail"}
    # The public-company prospect gets a batch of its own (EDGAR is slow), run first.
    public_batch, private_batch = queue_batches(
        app_db, instance, [public, handleless, unlucky], tenant
    )

    assert materialize(app_db, instance, fakes, public_batch).success
    result = materialize(app_db, instance, fakes, private_batch)

    assert result.success
    pub, hand, unl = (prospect(engine, p) for p in (public, handleless, unlucky))
    status = {
        p.id: {s: v["status"] for s, v in p.enrichment_source_status.items()}
        for p in (pub, hand, unl)
    }
    assert status[public] == {
        "apollo": "not_found",
        "contactout": "complete",
        "exa": "complete",
        "sec": "complete",
        "claude": "complete",
    }
    assert status[handleless]["contactout"] == "skipped"
    assert status[handleless]["sec"] == "skipped"
    assert status[unlucky] == {
        "apollo": "failed",
        "contactout": "circuit_open",
        "exa": "failed",
        "sec": "skipped",
        "claude": "skipped",
    }
    assert "503" in unl.enrichment_source_status["apollo"]["error"]
    assert unl.enrichment_source_status["apollo"]["latency_ms"] >= 0
    assert "latency_ms" not in unl.enrichment_source_status["sec"]
    assert (pub.enrichment_status, hand.enrichment_status, unl.enrichment_status) == (
        "complete",
        "complete",
        "failed",
    )
    assert pub.last_enriched_at is not None and unl.last_enriched_at is None
    assert pub.contact_data["who"] == "Pat Public" and pub.person_data is None
    # The web app shows the prose; the structured summary is ours.
    assert isinstance(pub.ai_summary, str) and "Pat Public" in pub.ai_summary
    assert pub.ai_summary == pub.ai_summary_structured["summary"]
    assert pub.ai_summary_structured["sources"] == ["contactout", "exa", "sec"]
    assert unl.ai_summary is None and unl.ai_summary_structured is None
    # Nobody was called for a source that does not apply.
    assert fakes["edgar"].calls == Counter({"Pat Public": 1})
    assert "Nora Nohandle" not in fakes["contactout"].calls
    reqs = requests_by_id(engine)
    by_prospect = {r.prospect_id: r for r in reqs.values()}
    assert by_prospect[public].status == "done"
    assert by_prospect[unlucky].status == "failed"
    assert "apollo" in by_prospect[unlucky].reason
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob.__table__)).one()
    assert (job.status, job.processed, job.succeeded, job.failed) == ("done", 3, 2, 1)
    assert sorted((e["prospect_id"], e["source"]) for e in job.errors) == [
        (str(unlucky), "apollo"),
        (str(unlucky), "contactout"),
        (str(unlucky), "exa"),
    ]
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    # The batch's prospects (ordered by id) as Dagster tables, the values the database holds.
    batch = sorted([hand, unl], key=lambda p: str(p.id))
    merged = mats["enriched_prospects"]
    assert merged["dagster/row_count"].value == 2
    assert table_rows(merged["preview"], MATRIX_COLUMNS) == [
        {
            "prospect_id": str(p.id),
            "name": p.name,
            **status[p.id],
            "enrichment_status": p.enrichment_status,
        }
        for p in batch
    ]
    by_source = {r["source"]: r for r in table_rows(merged["by_source"], BY_SOURCE_COLUMNS)}
    assert list(by_source) == list(ALL_SOURCES)
    for source in ALL_SOURCES:
        for s in SOURCE_STATUSES:
            assert by_source[source][s] == sum(status[p.id][source] == s for p in batch)
    assert by_source["apollo"]["latency_max_ms"] >= 0  # both prospects were called
    assert by_source["sec"]["latency_max_ms"] is None  # skipped for both: no call
    apollo = mats["person_match"]
    assert apollo["dagster/row_count"].value == 2
    preview = {r["prospect_id"]: r for r in table_rows(apollo["preview"], SOURCE_COLUMNS)}
    assert preview[str(unlucky)]["status"] == "failed"
    assert "503" in preview[str(unlucky)]["error"]
    assert preview[str(unlucky)]["latency_ms"] >= 0
    assert preview[str(handleless)]["status"] == status[handleless]["apollo"]
    assert preview[str(handleless)]["error"] is None
    assert apollo["latency_max_ms"].value >= 0
    assert mats["person_match"]["status_failed"].value == 1
    assert mats["person_match"]["provider_calls"].value == 2
    assert mats["contact_enrichment"]["status_circuit_open"].value == 1


def test_rerun_calls_only_what_did_not_complete(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    ids = [add_prospect(engine, tenant, name=n) for n in ("Ann One", "Ben Two")]
    fakes["apollo"].behaviour = {"Ben Two": "fail"}
    batch = queue_batch(app_db, instance, ids, tenant)
    assert materialize(app_db, instance, fakes, batch).success
    assert prospect(engine, ids[1]).enrichment_source_status["apollo"]["status"] == "failed"
    first_summary = prospect(engine, ids[1]).ai_summary

    fakes["apollo"].behaviour = {}  # the provider recovered
    assert materialize(app_db, instance, fakes, batch).success

    assert fakes["apollo"].calls == Counter({"Ann One": 1, "Ben Two": 2})
    assert fakes["contactout"].calls == Counter({"Ann One": 1, "Ben Two": 1})
    assert fakes["exa"].calls == Counter({"Ann One": 1, "Ben Two": 1})
    # Ben's summary is redone because a new source arrived; Ann's is reused.
    assert fakes["claude"].calls == Counter({"Ann One": 1, "Ben Two": 2})
    ben = prospect(engine, ids[1])
    assert ben.enrichment_source_status["apollo"]["status"] == "complete"
    assert "apollo" in ben.ai_summary and "apollo" not in first_summary


def test_claude_is_warmed_up_only_when_the_batch_has_summaries_to_make(app_db, instance, fakes):
    """The SDK's import (over a second of CPU) starts with the batch when summaries are due,
    and is not paid at all by a batch whose summaries are all final or not selected."""
    engine = app_db.engine
    tenant = add_tenant(engine)
    pid = add_prospect(engine, tenant)
    batch = queue_batch(app_db, instance, [pid], tenant)
    assert materialize(app_db, instance, fakes, batch).success
    assert fakes["claude"].warmed_up and sum(fakes["claude"].calls.values()) == 1

    again = fake_providers()  # a re-run: everything is final already
    assert materialize(app_db, instance, again, batch).success
    assert not again["claude"].warmed_up and not again["claude"].calls

    other = add_prospect(engine, tenant, name="Una Other")
    web_only = fake_providers()
    web_batch = queue_batch(app_db, instance, [other], tenant)
    assert materialize(app_db, instance, web_only, web_batch, selection=["web_enrichment"]).success
    assert not web_only["claude"].warmed_up


def test_materializing_one_source_calls_only_that_provider(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    pid = add_prospect(engine, tenant)
    batch = queue_batch(app_db, instance, [pid], tenant)

    result = materialize(app_db, instance, fakes, batch, selection=["web_enrichment"])

    assert result.success
    assert sum(fakes["exa"].calls.values()) == 1
    assert not any(fakes[s].calls for s in ("apollo", "contactout", "edgar", "claude"))
    assert set(prospect(engine, pid).enrichment_source_status) == {"exa"}


def test_unreadable_record_column_fails_only_its_prospect_before_any_call(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    reset = add_prospect(engine, tenant, name="Rita Reset", enrichment_source_status="reset")
    array = add_prospect(engine, tenant, name="Arno Array", enrichment_source_status=["x"])
    bad_record = add_prospect(
        engine, tenant, name="Bea Record", enrichment_source_status={"exa": 5}
    )
    # Old plain-string records are valid: read as {status: v}, replaced as sources finish.
    legacy = add_prospect(
        engine,
        tenant,
        name="Leo Legacy",
        enrichment_source_status={"exa": "failed", "sec": "skipped", "web": "complete"},
    )
    batch = queue_batch(app_db, instance, [reset, array, bad_record, legacy], tenant)

    result = materialize(app_db, instance, fakes, batch)

    assert result.success  # the batch goes on
    bad = {"Rita Reset", "Arno Array", "Bea Record"}
    for source, fake in fakes.items():
        assert not bad & set(fake.calls), (source, fake.calls)  # no provider paid for them
    reqs = {r.prospect_id: r for r in requests_by_id(engine).values()}
    for pid, says in (
        (reset, "holds a JSON string 'reset', not an object"),
        (array, "holds a JSON array"),
        (bad_record, "enrichment_source_status['exa'] is a number"),
    ):
        p = prospect(engine, pid)
        assert p.enrichment_status == "failed", pid
        assert reqs[pid].status == "failed" and says in reqs[pid].reason, reqs[pid].reason
    # The web app's value is left as it wrote it.
    assert prospect(engine, reset).enrichment_source_status == "reset"
    leo = prospect(engine, legacy)
    assert leo.enrichment_status == "complete" and reqs[legacy].status == "done"
    assert {s: v["status"] for s, v in leo.enrichment_source_status.items() if s != "web"} == {
        "apollo": "complete",
        "contactout": "complete",
        "exa": "complete",
        "sec": "skipped",
        "claude": "complete",
    }
    assert leo.enrichment_source_status["web"] == "complete"  # a key not ours: kept as is
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob.__table__)).one()
    assert (job.status, job.processed, job.succeeded, job.failed) == ("done", 4, 1, 3)


class Held(FakeProvider):
    """A fake whose answers wait until the test releases them."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(provider)
        self.release = threading.Event()
        self.entered = threading.Event()

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        self.entered.set()
        assert self.release.wait(60), "never released"
        return super().enrich(prospect)


def _poll(engine, pid, until, timeout=60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = prospect(engine, pid)
        if until(p):
            return p
        time.sleep(0.05)
    raise AssertionError(f"prospect never reached the state: {prospect(engine, pid)}")


def test_prospect_row_shows_pending_sources_while_the_batch_runs(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    pid = add_prospect(engine, tenant, name="Wendy Wait")
    fakes["exa"] = Held(ExaResource)
    batch = queue_batch(app_db, instance, [pid], tenant)
    outcome: dict[str, bool] = {}
    runner = threading.Thread(
        target=lambda: outcome.setdefault("ok", materialize(app_db, instance, fakes, batch).success)
    )
    runner.start()
    try:
        assert fakes["exa"].entered.wait(60)
        # Apollo and ContactOut answered: their records are final while Exa is still out.
        mid = _poll(
            engine,
            pid,
            lambda p: (
                p.enrichment_source_status["apollo"]["status"] == "complete"
                and p.enrichment_source_status["contactout"]["status"] == "complete"
            ),
        )
        records = mid.enrichment_source_status
        assert mid.enrichment_status == "in_progress"
        assert records["exa"]["status"] == "pending" and records["exa"]["at"]
        assert records["claude"]["status"] == "pending"  # waits for its data sources
        assert records["sec"]["status"] == "skipped"  # decided at the start, never pending
        assert mid.person_data["who"] == "Wendy Wait"  # the data arrived with the record
        assert mid.ai_summary is None
    finally:
        fakes["exa"].release.set()
        runner.join(120)
    assert outcome == {"ok": True}
    done = prospect(engine, pid)
    assert done.enrichment_status == "complete"
    assert {v["status"] for v in done.enrichment_source_status.values()} == {
        "complete",
        "skipped",
    }
    assert "exa" in done.ai_summary


def _failed_run(instance, batch: str, status: dg.DagsterRunStatus):
    @dg.op
    def boom():
        raise RuntimeError("database went away")

    @dg.job
    def crashing():
        boom()

    result = crashing.execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": batch}
    )
    run = instance.get_run_by_id(result.run_id)
    (event,) = [
        r.event_log_entry.dagster_event
        for r in instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
        ).records
    ]
    return run.with_status(status), event


@pytest.mark.parametrize(
    ("sensor", "status", "expected_error"),
    [
        (enrichment_run_failure_sensor, dg.DagsterRunStatus.FAILURE, "database went away"),
        (enrichment_run_canceled_sensor, dg.DagsterRunStatus.CANCELED, "canceled"),
    ],
)
def test_failed_or_canceled_run_leaves_nothing_in_progress(
    app_db, instance, sensor, status, expected_error
):
    engine = app_db.engine
    tenant = add_tenant(engine)
    ids = [add_prospect(engine, tenant, name=f"P {i}") for i in range(2)]
    batch = queue_batch(app_db, instance, ids, tenant)
    from phronesis_dagster.enrichment.requests import utcnow

    start_batch(engine, batch, run_id="r1", now=utcnow())
    assert prospect(engine, ids[0]).enrichment_status == "in_progress"
    run, event = _failed_run(instance, batch, status)

    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"app_db": app_db},
    )
    if status == dg.DagsterRunStatus.FAILURE:
        context = context.for_run_failure()
    sensor(context)

    assert {prospect(engine, p).enrichment_status for p in ids} == {"failed"}
    reqs = requests_by_id(engine).values()
    assert {r.status for r in reqs} == {"failed"}
    assert all(expected_error in r.reason for r in reqs), [r.reason for r in reqs]
    with engine.connect() as conn:
        job = conn.execute(sa.select(EnrichmentJob.__table__)).one()
        pending = conn.execute(
            sa.select(sa.func.count()).where(EnrichmentRequest.status == "running")
        ).scalar_one()
    assert (job.status, job.processed, job.failed, pending) == ("failed", 2, 2, 0)
    assert {e["source"] for e in job.errors} == {"run"}


def test_enrichment_job_definition_uses_the_batch_partitions():
    job = dg.Definitions(
        assets=ENRICHMENT_ASSETS,
        jobs=[enrichment_batch_job],
        resources={
            "app_db": object(),
            **{k: object() for k in ("apollo", "contactout", "exa", "edgar", "claude")},
        },
    ).resolve_job_def("enrichment_batch_job")
    assert job.partitions_def == enrichment_batch_partitions
    assert Prospect.__tablename__ == "prospects"


class CachingEdgar(FakeProvider):
    """EDGAR fake that reports its run's SEC traffic as `EdgarResource.run_counters` does."""

    def __init__(self) -> None:
        super().__init__(BY_NAME["edgar"])

    def run_counters(self) -> dict[str, int]:
        n = sum(self.calls.values())
        return {
            "sec_requests": 2 * n,
            "sec_document_cache_hits": 5 * n,
            "sec_document_cache_misses": n,
            "sec_owner_cache_hits": n,
        }


def test_insider_metadata_counts_sec_requests_and_cache_hits(app_db, instance, fakes):
    engine = app_db.engine
    tenant = add_tenant(engine)
    public = add_prospect(
        engine, tenant, name="Pat Public", is_public_company=True, company_ticker="ACME"
    )
    fakes["edgar"] = CachingEdgar()
    (batch,) = queue_batches(app_db, instance, [public], tenant)
    result = materialize(app_db, instance, fakes, batch)
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    insider = mats["insider_enrichment"]
    assert insider["sec_requests"].value == 2
    assert insider["sec_document_cache_hits"].value == 5
    assert insider["sec_document_cache_misses"].value == 1
    assert "sec_requests" not in mats["person_match"]


class ChattyExa(FakeProvider):
    """Exa fake whose failure quotes a phone number and an address, as a provider's error body
    might, and that reports the limits it enforced."""

    def __init__(self) -> None:
        super().__init__(BY_NAME["exa"])

    def rate_limits_in_effect(self) -> dict[str, str]:
        return {"*": "10/s", "search": "300/min"}

    def enrich(self, prospect: ProspectInput) -> ProviderAnswer:
        raise ProviderUnavailableError(
            "exa", "HTTP 503: no result for dana@doe.example, call +1 415 555 0100", http_status=503
        )


def test_metadata_tables_carry_no_contact_data(app_db, instance, fakes):
    """A name the web app filled with an address, and a provider error quoting contact details,
    reach the previews without them."""
    engine = app_db.engine
    tenant = add_tenant(engine)
    pid = add_prospect(engine, tenant, name="Dana Doe dana@doe.example")
    fakes["exa"] = ChattyExa()
    batch = queue_batch(app_db, instance, [pid], tenant)
    result = materialize(app_db, instance, fakes, batch)
    assert result.success
    mats = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    [row] = table_rows(mats["web_enrichment"]["preview"], SOURCE_COLUMNS)
    assert row["status"] == "failed"
    assert row["name"] == "Dana Doe [email removed]"
    assert "503" in row["error"] and "[phone removed]" in row["error"]
    assert table_rows(mats["web_enrichment"]["rate_limits"], ["endpoint_group", "limit"]) == [
        {"endpoint_group": "*", "limit": "10/s"},
        {"endpoint_group": "search", "limit": "300/min"},
    ]
    cells = [
        str(cell)
        for metadata in mats.values()
        for value in metadata.values()
        if isinstance(value, dg.TableMetadataValue)
        for record in value.records
        for cell in record.data.values()
    ]
    assert cells and not [c for c in cells if "@" in c or "555" in c]
