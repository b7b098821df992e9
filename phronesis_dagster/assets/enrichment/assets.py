"""The enrichment assets, all on the batch partitions:

`prospects` (the web app's table) -> `person_match` (Apollo), `contact_enrichment` (ContactOut),
`web_enrichment` (Exa), `insider_enrichment` (EDGAR) -> `ai_summary` (Claude) ->
`enriched_prospects`.

The four source assets and `ai_summary` are one multi-asset step (`enrich_batch`): every
provider is called at the same time on its own thread pool, and a prospect's summary starts as soon
as its data sources are in, so Claude never waits for the slowest provider's whole batch.
Subsetting it (materializing just `web_enrichment` from the UI) calls only that provider.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from phronesis_dagster.assets.enrichment.calls import (
    call_source,
    needs_call,
    pool_width,
    run_calls,
    skip_reason,
    timed_outcome,
)
from phronesis_dagster.assets.enrichment.metadata import (
    json_meta,
    latency_summary,
    matrix_table,
    source_table,
    status_counts,
)
from phronesis_dagster.assets.enrichment.partitions import (
    ENRICHMENT_GROUP,
    ENRICHMENT_RETRY_POLICY,
    enrichment_batch_partitions,
)
from phronesis_dagster.enrichment.constants import (
    ALL_SOURCES,
    COMPLETE,
    DATA_SOURCES,
    PROVIDER,
    SEC_SOURCE,
    SKIPPED,
    SOURCE_ASSET,
    SUMMARY_SOURCE,
)
from phronesis_dagster.enrichment.heartbeat import batch_heartbeat
from phronesis_dagster.enrichment.progress import ProgressLogger, job_progress_for_batch
from phronesis_dagster.enrichment.requests import utcnow
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

# The kind tag the UI shows on each source's asset.
PROVIDER_KINDS: dict[str, str] = {
    "apollo": "apollo",
    "contactout": "contactout",
    "exa": "exa",
    SEC_SOURCE: "sec",
    SUMMARY_SOURCE: "anthropic",
}

prospects = dg.AssetSpec(
    "prospects",
    group_name=ENRICHMENT_GROUP,
    description="The web app's `prospects` table (name, company, contact handles, ticker). "
    "Written by the web app; the enrichment assets read a batch of it and write the enriched "
    "columns back.",
    kinds={"postgres"},
)

_SOURCE_DESCRIPTIONS: dict[str, str] = {
    "apollo": "Apollo person match for each prospect of the batch (title, seniority, "
    "employment history, emails) -> `prospects.person_data`.",
    "contactout": "ContactOut work/personal emails and phones for each prospect of the batch "
    "-> `prospects.contact_data`. Skipped for prospects with neither email nor LinkedIn URL.",
    "exa": "Exa web mentions and wealth signals for each prospect of the batch -> "
    "`prospects.web_data`.",
    SEC_SOURCE: "SEC EDGAR Form 4 insider transactions of each public-company prospect of the "
    "batch -> `prospects.insider_data`. Skipped for private companies.",
}


class SourceEnrichmentConfig(dg.Config):
    """Run config of the `enrich_batch` step."""

    max_workers_per_provider: int = 32


def _source_result(
    context: dg.AssetExecutionContext,
    source: str,
    prospects_rows: list[dict],
    results: Mapping[tuple[int, str], SourceOutcome],
    called: int,
) -> dg.MaterializeResult:
    outcomes = [results[(p["id"], source)] for p in prospects_rows if (p["id"], source) in results]
    counts = status_counts(outcomes)
    resource = getattr(context.resources, PROVIDER[source])
    return dg.MaterializeResult(
        asset_key=SOURCE_ASSET[source],
        metadata={
            "prospects": len(prospects_rows),
            "provider_calls": called,
            "reused_from_earlier_attempt": len(outcomes) - called - counts.get(SKIPPED, 0),
            **{f"status_{k}": v for k, v in counts.items()},
            "latency_ms": json_meta(latency_summary(outcomes)),
            "provider_mode": str(getattr(resource, "provider_mode", "unknown")),
            # The limits this run enforced ({endpoint group: "1000/min"}, "*" = the provider's).
            "rate_limits": json_meta(_limits_in_effect(resource)),
            "preview": dg.MetadataValue.md(source_table(prospects_rows, results, source)),
        },
    )


def _limits_in_effect(resource: Any) -> dict[str, str]:
    in_effect = getattr(resource, "rate_limits_in_effect", None)
    return in_effect() if callable(in_effect) else {}


def _summary_input(p: Mapping[str, Any]) -> dict[str, Any]:
    # Only what describes the person professionally: no email or phone goes to the LLM.
    keys = ("name", "title", "company", "location", "is_public_company", "company_ticker")
    return {k: p.get(k) for k in keys}


def summarize(resource: Any, p: Mapping[str, Any], sources: dict[str, Any]) -> SourceOutcome:
    """One Claude summary from the sources that returned data; never raises."""
    if not sources:
        return SourceOutcome(
            status=SKIPPED, error="no source returned data to summarize", at=utcnow()
        )

    def call() -> tuple[str, dict[str, Any]]:
        summary = resource.summarize_prospect(prospect=_summary_input(p), sources=sources)
        return COMPLETE, {**summary.model_dump(mode="json"), "sources": sorted(sources)}

    return timed_outcome(call)


def _summary_is_current(existing: SourceOutcome | None, sources: dict[str, Any]) -> bool:
    """A stored summary is reused unless more sources have data than it was made from (a source
    that failed succeeded on a later attempt); a failed one is retried."""
    if existing is None:
        return False
    if existing.status == COMPLETE:
        return set((existing.data or {}).get("sources", [])) >= set(sources)
    if existing.status == SKIPPED:
        return not sources
    return False


SUMMARY_DESCRIPTION = (
    "A Claude summary (summary, key facts, wealth signals, talking points) of each prospect of "
    "the batch, made from the sources that returned data -> `prospects.ai_summary` (the prose "
    "the web app shows) and `prospects.ai_summary_structured` (key facts, talking points, "
    "sources). Started for "
    "a prospect as soon as its data sources are in; skipped when no source found anything; not "
    "repeated on a re-run unless new sources arrived."
)


def _summary_result(
    resource: Any,
    rows: list[dict],
    results: Mapping[tuple[int, str], SourceOutcome],
    called: int,
) -> dg.MaterializeResult:
    outcomes = [results[(p["id"], "claude")] for p in rows if (p["id"], "claude") in results]
    return dg.MaterializeResult(
        asset_key="ai_summary",
        metadata={
            "prospects": len(rows),
            "provider_calls": called,
            **{f"status_{k}": v for k, v in status_counts(outcomes).items()},
            "latency_ms": json_meta(latency_summary(outcomes)),
            "provider_mode": str(getattr(resource, "provider_mode", "unknown")),
            # The limits this run enforced ({endpoint group: "1000/min"}, "*" = the provider's).
            "rate_limits": json_meta(_limits_in_effect(resource)),
            "preview": dg.MetadataValue.md(source_table(rows, results, SUMMARY_SOURCE)),
        },
    )


@dg.multi_asset(
    specs=[
        *(
            dg.AssetSpec(
                SOURCE_ASSET[source],
                deps=[prospects],
                partitions_def=enrichment_batch_partitions,
                group_name=ENRICHMENT_GROUP,
                description=_SOURCE_DESCRIPTIONS[source],
                kinds={PROVIDER_KINDS[source]},
                skippable=True,
            )
            for source in DATA_SOURCES
        ),
        dg.AssetSpec(
            "ai_summary",
            deps=[SOURCE_ASSET[s] for s in DATA_SOURCES],
            partitions_def=enrichment_batch_partitions,
            group_name=ENRICHMENT_GROUP,
            description=SUMMARY_DESCRIPTION,
            kinds={PROVIDER_KINDS[SUMMARY_SOURCE]},
            skippable=True,
        ),
    ],
    can_subset=True,
    required_resource_keys={"app_db", *(PROVIDER[s] for s in ALL_SOURCES)},
    retry_policy=ENRICHMENT_RETRY_POLICY,
    name="enrich_batch",
)
def enrich_batch(context: dg.AssetExecutionContext, config: SourceEnrichmentConfig):
    """Calls Apollo, ContactOut, Exa and EDGAR for every prospect of the batch, all providers at
    once and each up to its rate limit, and Claude for each prospect as soon as its data sources
    are in. Each answer is stored as it arrives; a re-run (retry, re-execution after a crash)
    reuses every complete / not_found / skipped answer instead of paying for it again. A failing
    provider only fails its own source."""
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
    selected = [
        s for s in DATA_SOURCES if dg.AssetKey(SOURCE_ASSET[s]) in context.selected_asset_keys
    ]
    summarize_too = dg.AssetKey("ai_summary") in context.selected_asset_keys
    with engine.connect() as conn:
        all_rows = batch_prospects(conn, batch_key)
        stored = load_results(conn, batch_key)
    # A prospect whose record column the web app left unreadable fails alone, here, before any
    # provider is called (and paid) for it; the others go on.
    malformed = {p["id"]: p["malformed"] for p in all_rows if p["malformed"]}
    for pid, why in malformed.items():
        context.log.warning(f"{batch_key}: prospect {pid} not enriched: {why}")
    rows = [p for p in all_rows if not p["malformed"]]

    # Sources that do not apply are decided now, so the prospect page shows them skipped from
    # the start and only the sources really being called show pending.
    skips: dict[tuple[Any, str], SourceOutcome] = {}
    for p in rows:
        for s in selected:
            reason = skip_reason(s, p)
            if reason and needs_call(stored.get((p["id"], s))):
                skips[(p["id"], s)] = SourceOutcome(status=SKIPPED, error=reason, at=now)
    for (pid, s), outcome in skips.items():
        p = next(r for r in rows if r["id"] == pid)
        save_result(
            engine,
            batch_key=batch_key,
            prospect_id=pid,
            tenant_id=p["tenant_id"],
            source=s,
            outcome=outcome,
            run_id=context.run_id,
            now=now,
        )
    stored = {**stored, **skips}
    work = {s: [p for p in rows if needs_call(stored.get((p["id"], s)))] for s in selected}
    total = sum(len(v) for v in work.values())
    context.log.info(
        f"{batch_key}: {len(rows)} prospects; {total} data-source calls to make, "
        f"{len(rows) * len(selected) - total} already final (earlier attempt or not applicable)"
        + (f"; {len(malformed)} failed: unreadable enrichment_source_status" if malformed else "")
    )
    starting: dict[Any, dict[str, dict[str, Any]]] = {}
    for p in rows:
        record: dict[str, dict[str, Any]] = {}
        for s in selected:
            done = stored.get((p["id"], s))
            record[s] = pending_record(now) if needs_call(done) else done.record()
        if summarize_too:
            record[SUMMARY_SOURCE] = pending_record(now)
        starting[p["id"]] = record
    begin_prospects(engine, batch_key, starting, malformed, now=now)
    resources = {s: getattr(context.resources, PROVIDER[s]) for s in ALL_SOURCES}
    widths = {
        s: pool_width(
            resources[s], max(len(work.get(s, rows)), 1), config.max_workers_per_provider, s
        )
        for s in ALL_SOURCES
    }

    # The summary of a prospect starts when its last selected data source is in, so Claude's
    # calls overlap the slow providers' instead of queueing behind the whole batch.
    results: dict[tuple[Any, str], SourceOutcome] = dict(stored)
    todo_ids = {s: {p["id"] for p in work[s]} for s in selected}
    waiting = {p["id"]: sum(1 for s in selected if p["id"] in todo_ids[s]) for p in rows}

    def summary_inputs(pid: int) -> dict[str, Any]:
        return {
            s: results[(pid, s)].data
            for s in DATA_SOURCES
            if (pid, s) in results and results[(pid, s)].status == COMPLETE
        }

    def due(p: Mapping[str, Any]) -> list[dict[str, Any]]:
        inputs = summary_inputs(p["id"])
        existing = results.get((p["id"], SUMMARY_SOURCE))
        if _summary_is_current(existing, inputs):
            # Reused: its record replaces the pending one the start of the run showed.
            write_records(engine, {(p["id"], SUMMARY_SOURCE): existing}, now=utcnow())
            return []
        return [{**p, "_summary_sources": inputs}]

    def follow_up(source: str, p: Mapping[str, Any], outcome: SourceOutcome) -> list[dict]:
        results[(p["id"], source)] = outcome
        waiting[p["id"]] -= 1
        return due(p) if summarize_too and waiting[p["id"]] == 0 else []

    if summarize_too:
        work = {**work, SUMMARY_SOURCE: [q for p in rows if not waiting[p["id"]] for q in due(p)]}
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

    def call(source: str, p: Mapping[str, Any]) -> SourceOutcome:
        if source == SUMMARY_SOURCE:
            return summarize(resources[source], p, p["_summary_sources"])
        return call_source(source, resources[source], p)

    fresh = run_calls(
        engine=engine,
        batch_key=batch_key,
        run_id=context.run_id,
        work=work,
        call=call,
        widths=widths,
        progress=progress,
        follow_up=(SUMMARY_SOURCE, follow_up) if summarize_too else None,
    )
    progress.close()
    results.update(fresh)

    def called(source: str) -> int:
        return sum(1 for (_, s), o in fresh.items() if s == source and o.latency_ms is not None)

    for source in selected:
        yield _source_result(context, source, rows, results, called(source))
    if summarize_too:
        yield _summary_result(resources[SUMMARY_SOURCE], rows, results, called(SUMMARY_SOURCE))


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
    per_source = {
        s: status_counts(o for (_, src), o in results.items() if src == s) for s in ALL_SOURCES
    }
    latencies = {
        s: latency_summary(o for (_, src), o in results.items() if src == s) for s in ALL_SOURCES
    }
    complete = sum(1 for v in final.values() if v == "complete")
    context.log.info(f"{batch_key}: {complete} of {len(final)} prospects complete")
    return dg.MaterializeResult(
        metadata={
            "prospects": len(final),
            "complete": complete,
            "failed": len(final) - complete,
            "status_by_source": json_meta(per_source),
            "latency_ms_by_source": json_meta(latencies),
            "preview": dg.MetadataValue.md(matrix_table(rows, records, ALL_SOURCES, final)),
        }
    )
