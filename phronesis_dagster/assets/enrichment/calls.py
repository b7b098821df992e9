"""One provider call per (prospect, source), turned into a `SourceOutcome`, and the thread-pool
fan-out that runs a batch's calls concurrently up to each provider's rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from phronesis_dagster.enrichment.constants import (
    CIRCUIT_OPEN,
    COMPLETE,
    FAILED,
    FINAL_STATUSES,
    NOT_FOUND,
    SEC_SOURCE,
    SKIPPED,
)
from phronesis_dagster.enrichment.progress import ProgressLogger
from phronesis_dagster.enrichment.requests import utcnow
from phronesis_dagster.enrichment.store import SourceOutcome, save_result, to_jsonable
from phronesis_dagster.resources.edgar import FETCH_WORKERS as EDGAR_FETCH_WORKERS
from phronesis_dagster.resources.errors import CircuitOpenError, ProviderError

# In-flight calls per provider. The resource's shared limiter caps the request rate; the pool
# only needs to be wide enough to keep rate x latency calls in flight (100/s x 50 ms = 5; a slow
# live API at 100/s x 300 ms = 30).
MAX_WORKERS_PER_PROVIDER = 32
MIN_WORKERS_PER_PROVIDER = 4


def _skip(reason: str) -> SourceOutcome:
    return SourceOutcome(status=SKIPPED, error=reason, at=utcnow())


def skip_reason(source: str, prospect: Mapping[str, Any]) -> str | None:
    """Why `source` does not apply to `prospect` (so it is not called), or None."""
    if source == "contactout" and not (prospect.get("email") or prospect.get("linkedin_url")):
        return "no email or LinkedIn URL to look up"
    if source == SEC_SOURCE:
        if not prospect.get("is_public_company"):
            return "private company: no SEC insider filings"
        if not (prospect.get("company_ticker") or prospect.get("company_cik")):
            return "public company without a ticker or CIK"
    return None


def _call(source: str, resource: Any, p: Mapping[str, Any]) -> tuple[str, Any]:
    """Call the provider; (status, data) with status complete or not_found."""
    if source == "apollo":
        found = resource.match_person(
            name=p.get("name"),
            email=p.get("email"),
            linkedin_url=p.get("linkedin_url"),
            organization_name=p.get("company"),
        )
        return (COMPLETE, to_jsonable(found)) if found is not None else (NOT_FOUND, None)
    if source == "contactout":
        found = resource.enrich_person(
            email=p.get("email"),
            linkedin_url=p.get("linkedin_url"),
            full_name=p.get("name"),
            company=p.get("company"),
        )
        return (COMPLETE, to_jsonable(found)) if found is not None else (NOT_FOUND, None)
    if source == "exa":
        found = resource.search_mentions(name=p["name"], company=p["company"])
        if found is None or not found.mentions:
            return NOT_FOUND, None
        return COMPLETE, to_jsonable(found)
    if source == SEC_SOURCE:
        found = resource.insider_transactions(
            ticker=p.get("company_ticker"), cik=p.get("company_cik"), owner_name=p.get("name")
        )
        if found is None or not found.transactions:
            return NOT_FOUND, None
        return COMPLETE, to_jsonable(found)
    raise ValueError(f"unknown enrichment source {source!r}")


def timed_outcome(call: Callable[[], tuple[str, Any]]) -> SourceOutcome:
    """Run one provider call (returning (status, data)) as a `SourceOutcome` with its latency.
    Never raises: a provider error becomes `failed` (or `circuit_open`), so the other sources
    and prospects go on."""
    started = time.perf_counter()
    try:
        status, data = call()
        error = None
    except CircuitOpenError as exc:
        status, data, error = CIRCUIT_OPEN, None, str(exc)
    except ProviderError as exc:
        status, data, error = FAILED, None, str(exc)
    except Exception as exc:  # noqa: BLE001 - one prospect's surprise must not sink the batch
        status, data, error = FAILED, None, f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - started) * 1000
    return SourceOutcome(status=status, data=data, error=error, latency_ms=latency, at=utcnow())


def call_source(source: str, resource: Any, prospect: Mapping[str, Any]) -> SourceOutcome:
    """Enrich one prospect from one data source. Never raises (see `timed_outcome`)."""
    reason = skip_reason(source, prospect)
    if reason:
        return _skip(reason)
    return timed_outcome(lambda: _call(source, resource, prospect))


# Requests one call makes in parallel by itself: EdgarResource fetches a prospect's Form 4
# documents FETCH_WORKERS at a time. Its pool is narrowed by that much, or dozens of fetches
# would queue on SEC's 10 requests/s limiter and the last ones would outwait its maximum wait.
INTERNAL_FANOUT: dict[str, int] = {SEC_SOURCE: EDGAR_FETCH_WORKERS}


def pool_width(
    resource: Any, pending: int, cap: int = MAX_WORKERS_PER_PROVIDER, source: str = ""
) -> int:
    """Threads for one provider: about its rate limit (requests in flight >= rate x latency for
    any latency up to a second), within [2, cap], never above the work."""
    rps = getattr(resource, "requests_per_second", None) or getattr(resource, "DEFAULT_RPS", 10)
    fanout = INTERNAL_FANOUT.get(source, 1)
    floor = 2 if fanout > 1 else MIN_WORKERS_PER_PROVIDER
    return max(1, min(pending, cap, max(floor, int(rps) // fanout)))


FollowUp = Callable[[str, Mapping[str, Any], SourceOutcome], Sequence[Mapping[str, Any]]]


def run_calls(
    *,
    engine: Any,
    batch_key: str,
    run_id: str | None,
    work: Mapping[str, Sequence[Mapping[str, Any]]],
    call: Callable[[str, Mapping[str, Any]], SourceOutcome],
    widths: Mapping[str, int],
    progress: ProgressLogger,
    follow_up: tuple[str, FollowUp] | None = None,
) -> dict[tuple[Any, str], SourceOutcome]:
    """Run `call(source, prospect)` for every item of `work` ({source: prospects}), each source
    on its own pool, all sources at once. Each outcome is stored as soon as it arrives.

    `follow_up = (source, fn)`: after each outcome, `fn(source, prospect, outcome)` returns the
    prospects to call `source` for now (the summary of a prospect whose data sources are all
    in), so that source's calls overlap with the others instead of waiting for all of them."""

    def task(source: str, prospect: Mapping[str, Any]) -> SourceOutcome:
        outcome = call(source, prospect)
        save_result(
            engine,
            batch_key=batch_key,
            prospect_id=prospect["id"],
            tenant_id=prospect["tenant_id"],
            source=source,
            outcome=outcome,
            run_id=run_id,
        )
        return outcome

    sources = set(work) | ({follow_up[0]} if follow_up else set())
    pools = {s: ThreadPoolExecutor(max_workers=widths[s], thread_name_prefix=s) for s in sources}
    out: dict[tuple[int, str], SourceOutcome] = {}
    pending: dict[Future, tuple[str, Mapping[str, Any]]] = {}

    def submit(source: str, prospect: Mapping[str, Any]) -> None:
        pending[pools[source].submit(task, source, prospect)] = (source, prospect)

    try:
        for source, items in work.items():
            for prospect in items:
                submit(source, prospect)
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                source, prospect = pending.pop(fut)
                outcome = fut.result()
                out[(prospect["id"], source)] = outcome
                progress.advance(source=source, prospect=prospect, outcome=outcome)
                if follow_up is not None and source != follow_up[0]:
                    for nxt in follow_up[1](source, prospect, outcome):
                        progress.extend(1)
                        submit(follow_up[0], nxt)
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    return out


def needs_call(existing: SourceOutcome | None) -> bool:
    """True unless a final outcome (complete, not_found, skipped) is already stored."""
    return existing is None or existing.status not in FINAL_STATUSES
