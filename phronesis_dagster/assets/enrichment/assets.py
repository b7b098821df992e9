"""The enrichment assets, all on the batch partitions:

`prospects` (the web app's table) -> `person_match` (Apollo), `contact_enrichment` (ContactOut),
`web_enrichment` (Exa), `insider_enrichment` (EDGAR) -> `ai_summary` (Claude) ->
`enriched_prospects`.

The four source assets and `ai_summary` are one multi-asset step (`enrich_batch`): every
provider is called at the same time on its own thread pool, and a prospect's summary starts as soon
as its data sources are in, so Claude never waits for the slowest provider's whole batch.
Subsetting it (materializing just `web_enrichment` from the UI) calls only that provider.

Each asset's key, description and kind come from its provider class in the registry
(`resources/registry.py`); a call goes `enrich_batch` -> `calls.run_calls` -> `calls.call_source`
-> the provider's `enrich` (`resources/<provider>.py`) -> `ProviderResource._call`
(`resources/http_client.py`).
"""

import dataclasses
import uuid
from collections.abc import Mapping

import dagster as dg

from phronesis_dagster.assets.enrichment.calls import needs_call, pool_width, run_calls
from phronesis_dagster.assets.enrichment.metadata import (
    by_source_table,
    latency_summary,
    matrix_table,
    rate_limits_table,
    source_table,
    status_counts,
)
from phronesis_dagster.assets.enrichment.partitions import (
    ENRICHMENT_GROUP,
    ENRICHMENT_RETRY_POLICY,
    enrichment_batch_partitions,
)
from phronesis_dagster.assets.table_metadata import ROW_COUNT
from phronesis_dagster.enrichment.constants import (
    ALL_SOURCES,
    COMPLETE,
    DATA_SOURCES,
    SKIPPED,
    SUMMARY_SOURCE,
)
from phronesis_dagster.enrichment.cpu_priority import bulk_run_niceness, lower_process_priority
from phronesis_dagster.enrichment.heartbeat import batch_heartbeat
from phronesis_dagster.enrichment.progress import ProgressLogger, job_progress_for_batch
from phronesis_dagster.enrichment.requests import BULK, LANE_TAG, utcnow
from phronesis_dagster.enrichment.store import (
    SourceOutcome,
    batch_prospects,
    begin_prospects,
    finish_batch,
    load_results,
    pending_record,
    save_result,
    start_batch,
    write_records,
)
from phronesis_dagster.resources.contract import Enricher, JsonObject, ProspectInput
from phronesis_dagster.resources.registry import (
    DATA_PROVIDERS,
    PROVIDER_NAMES,
    PROVIDERS,
    SUMMARY_PROVIDER,
    Provider,
    enricher,
)

prospects = dg.AssetSpec(
    "prospects",
    group_name=ENRICHMENT_GROUP,
    description="The web app's `prospects` table (name, company, contact handles, ticker). "
    "Written by the web app; the enrichment assets read a batch of it and write the enriched "
    "columns back.",
    kinds={"postgres"},
)


class SourceEnrichmentConfig(dg.Config):
    """Run config of the `enrich_batch` step."""

    max_workers_per_provider: int = 32


def _provider_result(
    provider: Provider,
    client: Enricher,
    prospects_rows: list[dict],
    results: Mapping[tuple[uuid.UUID, str], SourceOutcome],
    called: int,
) -> dg.MaterializeResult:
    source = provider.SOURCE
    outcomes = [results[(p["id"], source)] for p in prospects_rows if (p["id"], source) in results]
    counts = status_counts(outcomes)
    latency = latency_summary(outcomes)
    reused = (
        {}
        if provider.SUMMARIZES
        else {"reused_from_earlier_attempt": len(outcomes) - called - counts.get(SKIPPED, 0)}
    )
    return dg.MaterializeResult(
        asset_key=provider.ASSET_KEY,
        metadata={
            # The batch's stored answers of this source (enrichment_source_results), one per
            # prospect it has an answer for, this run's and reused ones alike.
            ROW_COUNT: len(outcomes),
            "prospects": len(prospects_rows),
            "provider_calls": called,
            **reused,
            **{f"status_{k}": v for k, v in counts.items()},
            # Scalars, not one JSON object, so the UI plots each across materializations.
            "latency_p50_ms": latency["p50"],
            "latency_p95_ms": latency["p95"],
            "latency_max_ms": latency["max"],
            "provider_mode": str(client.provider_mode),
            "rate_limits": rate_limits_table(client.rate_limits_in_effect()),
            # EDGAR: this run's SEC requests and cross-run document cache hits/misses.
            **client.run_counters(),
            "preview": source_table(prospects_rows, results, source),
        },
    )


def _summary_is_current(existing: SourceOutcome | None, sources: Mapping[str, JsonObject]) -> bool:
    """A stored summary is reused unless more sources have data than it was made from (a source
    that failed succeeded on a later attempt); a failed one is retried."""
    if existing is None:
        return False
    if existing.status == COMPLETE:
        return set((existing.data or {}).get("sources", [])) >= set(sources)
    if existing.status == SKIPPED:
        return not sources
    return False


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            provider.ASSET_KEY,
            deps=[d.ASSET_KEY for d in DATA_PROVIDERS] if provider.SUMMARIZES else [prospects],
            partitions_def=enrichment_batch_partitions,
            group_name=ENRICHMENT_GROUP,
            description=provider.DESCRIPTION,
            kinds={provider.KIND},
            skippable=True,
        )
        for provider in PROVIDERS
    ],
    can_subset=True,
    required_resource_keys={"app_db", *PROVIDER_NAMES},
    retry_policy=ENRICHMENT_RETRY_POLICY,
    name="enrich_batch",
)
def enrich_batch(context: dg.AssetExecutionContext, config: SourceEnrichmentConfig):
    """Calls Apollo, ContactOut, Exa and EDGAR for every prospect of the batch, all providers at
    once and each up to its rate limit, and Claude for each prospect as soon as its data sources
    are in. Each answer is stored as it arrives; a re-run (retry, re-execution after a crash)
    reuses every complete / not_found / skipped answer instead of paying for it again. A failing
    provider only fails its own source."""
    # On a laptop a bulk batch's run process shares the cores with a rep's interactive run:
    # it yields them (enrichment/cpu_priority.py; off unless PHRONESIS_BULK_RUN_NICENESS is set).
    if context.run.tags.get(LANE_TAG) == BULK and (niceness := bulk_run_niceness()):
        lower_process_priority(niceness)
        context.log.info(f"bulk batch: this run process runs at niceness {niceness}")
    # The batch's heartbeat while it works: a run whose process dies is found by its silence
    # (sensors/recovery.py) and retried.
    with batch_heartbeat(
        context.resources.app_db.engine,
        batch_key=context.partition_key,
        run_id=context.run_id,
        instance=context.instance,
        log=context.log.warning,
    ):
        yield from _enrich_batch(context, config)


def _enrich_batch(context: dg.AssetExecutionContext, config: SourceEnrichmentConfig):
    engine = context.resources.app_db.engine
    batch_key = context.partition_key
    now = utcnow()
    start_batch(engine, batch_key, run_id=context.run_id, now=now)
    chosen = context.selected_asset_keys
    selected = [p for p in DATA_PROVIDERS if dg.AssetKey(p.ASSET_KEY) in chosen]
    summarize_too = dg.AssetKey(SUMMARY_PROVIDER.ASSET_KEY) in chosen
    with engine.connect() as conn:
        all_rows = batch_prospects(conn, batch_key)
        stored = load_results(conn, batch_key)
    # A prospect whose record column the web app left unreadable fails alone, here, before any
    # provider is called (and paid) for it; the others go on.
    malformed = {p["id"]: p["malformed"] for p in all_rows if p["malformed"]}
    for pid, why in malformed.items():
        context.log.warning(f"{batch_key}: prospect {pid} not enriched: {why}")
    rows = [p for p in all_rows if not p["malformed"]]
    # What the providers are given of each prospect.
    inputs = {p["id"]: ProspectInput.from_row(p) for p in rows}

    # Sources that do not apply are decided now, so the prospect page shows them skipped from
    # the start and only the sources really being called show pending.
    skips: dict[tuple[uuid.UUID, str], SourceOutcome] = {}
    for prospect in inputs.values():
        for provider in selected:
            reason = provider.skip_reason(prospect)
            key = (prospect.id, provider.SOURCE)
            if reason and needs_call(stored.get(key)):
                skips[key] = SourceOutcome(status=SKIPPED, error=reason, at=now)
    for (pid, s), outcome in skips.items():
        save_result(
            context.resources.app_db.database_url,
            batch_key=batch_key,
            prospect_id=pid,
            tenant_id=inputs[pid].tenant_id,
            source=s,
            outcome=outcome,
            run_id=context.run_id,
            now=now,
        )
    stored = {**stored, **skips}
    work: dict[Provider, list[ProspectInput]] = {
        provider: [p for p in inputs.values() if needs_call(stored.get((p.id, provider.SOURCE)))]
        for provider in selected
    }
    total = sum(len(v) for v in work.values())
    context.log.info(
        f"{batch_key}: {len(rows)} prospects; {total} data-source calls to make, "
        f"{len(rows) * len(selected) - total} already final (earlier attempt or not applicable)"
        + (f"; {len(malformed)} failed: unreadable enrichment_source_status" if malformed else "")
    )
    starting: dict[uuid.UUID, dict[str, dict[str, object]]] = {}
    for pid in inputs:
        record: dict[str, dict[str, object]] = {}
        for provider in selected:
            done = stored.get((pid, provider.SOURCE))
            record[provider.SOURCE] = (
                done.record() if done is not None and not needs_call(done) else pending_record(now)
            )
        if summarize_too:
            record[SUMMARY_SOURCE] = pending_record(now)
        starting[pid] = record
    begin_prospects(engine, batch_key, starting, malformed, now=now)
    clients = {provider: enricher(context.resources, provider) for provider in PROVIDERS}
    widths = {
        provider: pool_width(
            provider,
            clients[provider],
            max(len(work[provider]) if provider in work else len(rows), 1),
            config.max_workers_per_provider,
        )
        for provider in PROVIDERS
    }

    # The summary of a prospect starts when its last selected data source is in, so Claude's
    # calls overlap the slow providers' instead of queueing behind the whole batch.
    results: dict[tuple[uuid.UUID, str], SourceOutcome] = dict(stored)
    todo_ids = {provider: {p.id for p in work[provider]} for provider in selected}
    waiting = {pid: sum(1 for p in selected if pid in todo_ids[p]) for pid in inputs}

    def found(pid: uuid.UUID) -> dict[str, JsonObject]:
        """{source: data} of the data sources that returned data for the prospect."""
        out: dict[str, JsonObject] = {}
        for s in DATA_SOURCES:
            outcome = results.get((pid, s))
            if outcome is not None and outcome.status == COMPLETE and outcome.data is not None:
                out[s] = outcome.data
        return out

    def due(prospect: ProspectInput) -> list[ProspectInput]:
        data = found(prospect.id)
        existing = results.get((prospect.id, SUMMARY_SOURCE))
        if existing is not None and _summary_is_current(existing, data):
            # Reused: its record replaces the pending one the start of the run showed.
            write_records(engine, {(prospect.id, SUMMARY_SOURCE): existing}, now=utcnow())
            return []
        return [dataclasses.replace(prospect, found=data)]

    def follow_up(
        provider: Provider, prospect: ProspectInput, outcome: SourceOutcome
    ) -> list[ProspectInput]:
        results[(prospect.id, provider.SOURCE)] = outcome
        waiting[prospect.id] -= 1
        return due(prospect) if summarize_too and waiting[prospect.id] == 0 else []

    if summarize_too:
        work[SUMMARY_PROVIDER] = [q for p in inputs.values() if not waiting[p.id] for q in due(p)]
        if any(needs_call(stored.get((pid, SUMMARY_SOURCE))) for pid in inputs):
            clients[SUMMARY_PROVIDER].warm_up()
    progress = ProgressLogger(
        context.log.info,
        label=f"{batch_key} calls",
        total=sum(len(v) for v in work.values()),
        # The web app's bulk jobs move as prospects finish (enrichment/progress.py).
        listener=job_progress_for_batch(
            engine,
            batch_key,
            calls_per_prospect=len(selected) + int(summarize_too),
            log=context.log.warning,
        ),
    )
    fresh = run_calls(
        app_db_url=context.resources.app_db.database_url,
        batch_key=batch_key,
        run_id=context.run_id,
        work=work,
        clients=clients,
        widths=widths,
        progress=progress,
        follow_up=(SUMMARY_PROVIDER, follow_up) if summarize_too else None,
    )
    progress.close()
    results.update(fresh)

    def called(source: str) -> int:
        return sum(1 for (_, s), o in fresh.items() if s == source and o.latency_ms is not None)

    for provider in [*selected, *([SUMMARY_PROVIDER] if summarize_too else [])]:
        yield _provider_result(provider, clients[provider], rows, results, called(provider.SOURCE))


@dg.asset(
    partitions_def=enrichment_batch_partitions,
    deps=["ai_summary"],
    group_name=ENRICHMENT_GROUP,
    kinds={"postgres"},
    required_resource_keys={"app_db"},
    retry_policy=ENRICHMENT_RETRY_POLICY,
)
def enriched_prospects(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """The batch's prospects with every source merged: `enrichment_status` becomes `complete`
    when at least one applicable source succeeded or found nothing (failures of the others stay
    visible per source), `failed` when none did; the requests close as done / failed and the bulk
    jobs' counters and error logs are refreshed for the web app."""
    engine = context.resources.app_db.engine
    batch_key = context.partition_key
    final = finish_batch(engine, batch_key, now=utcnow())
    with engine.connect() as conn:
        rows = batch_prospects(conn, batch_key)
        results = load_results(conn, batch_key)
    records = {p["id"]: p["enrichment_source_status"] for p in rows}
    by_source = {s: [o for (_, src), o in results.items() if src == s] for s in ALL_SOURCES}
    complete = sum(1 for v in final.values() if v == "complete")
    context.log.info(f"{batch_key}: {complete} of {len(final)} prospects complete")
    return dg.MaterializeResult(
        metadata={
            ROW_COUNT: len(final),
            "prospects": len(final),
            "complete": complete,
            "failed": len(final) - complete,
            "by_source": by_source_table(by_source),
            "preview": matrix_table(rows, records, ALL_SOURCES, final),
        }
    )
