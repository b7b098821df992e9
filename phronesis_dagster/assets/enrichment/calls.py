"""One provider call per (prospect, provider), turned into a `SourceOutcome`, and the thread-pool
fan-out that runs a batch's calls concurrently up to each provider's rate limit.

Reading order of one call: `run_calls` submits `call_source(provider, client, prospect)` on the
provider's pool; `call_source` asks the provider class whether it applies (`skip_reason`), then
`client.enrich(prospect)` (the provider's resource, `resources/<provider>.py`), which calls its
typed client method and so `ProviderResource._call` (`resources/http_client.py`), the HTTP
request."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from phronesis_dagster.enrichment.constants import (
    CIRCUIT_OPEN,
    COMPLETE,
    FAILED,
    FINAL_STATUSES,
    NOT_FOUND,
    SKIPPED,
)
from phronesis_dagster.enrichment.progress import ProgressLogger
from phronesis_dagster.enrichment.requests import utcnow
from phronesis_dagster.enrichment.store import SourceOutcome, save_result
from phronesis_dagster.resources.contract import Enricher, ProspectInput, ProviderAnswer
from phronesis_dagster.resources.errors import CircuitOpenError, ProviderError
from phronesis_dagster.resources.registry import Provider

# In-flight calls per provider. The resource's shared limiter caps the request rate; the pool
# only needs to be wide enough to keep rate x latency calls in flight (100/s x 50 ms = 5; a slow
# live API at 100/s x 300 ms = 30).
MAX_WORKERS_PER_PROVIDER = 32
MIN_WORKERS_PER_PROVIDER = 4


def call_source(provider: Provider, client: Enricher, prospect: ProspectInput) -> SourceOutcome:
    """Enrich one prospect from one provider: `skipped` when the provider does not apply to it,
    else the provider's answer. Never raises (see `timed_outcome`)."""
    reason = provider.skip_reason(prospect)
    if reason:
        return SourceOutcome(status=SKIPPED, error=reason, at=utcnow())
    return timed_outcome(lambda: client.enrich(prospect))


def timed_outcome(call: Callable[[], ProviderAnswer]) -> SourceOutcome:
    """Run one provider call as a `SourceOutcome` (complete with its data, or not_found) with
    its latency. Never raises: a provider error becomes `failed` (or `circuit_open`: the breaker
    skipped the call, or the provider refused calls until a time), so the other sources and
    prospects go on."""
    started = time.perf_counter()
    data = None
    try:
        data = call().data
        status, error = (COMPLETE if data is not None else NOT_FOUND), None
    except CircuitOpenError as exc:
        status, error = CIRCUIT_OPEN, str(exc)
    except ProviderError as exc:
        # A refusal that holds the breaker (out of credits, a spent quota window, a refused
        # key) is what every later call of the batch is then told without a request: the
        # prospects whose calls met it read the same, `circuit_open` with the reason.
        status = CIRCUIT_OPEN if exc.hold_until is not None else FAILED
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - one prospect's surprise must not sink the batch
        status, error = FAILED, f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - started) * 1000
    return SourceOutcome(status=status, data=data, error=error, latency_ms=latency, at=utcnow())


def pool_width(
    provider: Provider, client: Enricher, pending: int, cap: int = MAX_WORKERS_PER_PROVIDER
) -> int:
    """Threads for one provider: about its rate limit (requests in flight >= rate x latency for
    any latency up to a second), within [2, cap], never above the work. A provider whose one
    call makes requests in parallel by itself (EDGAR fetches a prospect's documents 4 at a time)
    gets that many times fewer threads, or its fetches would queue on the limiter and the last
    ones would outwait its maximum wait."""
    rps = client.requests_per_second or provider.DEFAULT_RPS
    fanout = provider.FANOUT
    floor = 2 if fanout > 1 else MIN_WORKERS_PER_PROVIDER
    return max(1, min(pending, cap, max(floor, int(rps) // fanout)))


# (provider that answered, prospect, its outcome) -> prospects to call the follow-up provider for.
FollowUp = Callable[[Provider, ProspectInput, SourceOutcome], Sequence[ProspectInput]]


def run_calls(
    *,
    app_db_url: str,
    batch_key: str,
    run_id: str | None,
    work: Mapping[Provider, Sequence[ProspectInput]],
    clients: Mapping[Provider, Enricher],
    widths: Mapping[Provider, int],
    progress: ProgressLogger,
    follow_up: tuple[Provider, FollowUp] | None = None,
) -> dict[tuple[uuid.UUID, str], SourceOutcome]:
    """Call every provider of `work` ({provider: prospects}) for its prospects, each provider on
    its own pool, all providers at once. Each outcome is stored as soon as it arrives; the result
    is keyed (prospect id, source).

    `follow_up = (provider, fn)`: after each outcome, `fn(provider, prospect, outcome)` returns
    the prospects to call the follow-up provider for now (the summary of a prospect whose data
    sources are all in), so its calls overlap with the others instead of waiting for all."""

    def task(provider: Provider, prospect: ProspectInput) -> SourceOutcome:
        outcome = call_source(provider, clients[provider], prospect)
        save_result(
            app_db_url,
            batch_key=batch_key,
            prospect_id=prospect.id,
            tenant_id=prospect.tenant_id,
            source=provider.SOURCE,
            outcome=outcome,
            run_id=run_id,
        )
        return outcome

    providers = set(work) | ({follow_up[0]} if follow_up else set())
    pools = {
        p: ThreadPoolExecutor(max_workers=widths[p], thread_name_prefix=p.SOURCE) for p in providers
    }
    out: dict[tuple[uuid.UUID, str], SourceOutcome] = {}
    # Each finished call is taken in by the pool thread that made it (`finished`, a done
    # callback), not handed to this thread: a hand-off woke this thread once per call, and on a
    # bulk run's mostly idle cores every such wake-up starts cold (bench/call_threads.py). The
    # lock keeps `out` and the follow-up's bookkeeping (its function is not thread-safe) one
    # call at a time; `open_calls` counts the submitted calls not yet taken in, plus one held
    # by this thread while it submits, so `all_done` cannot be set before the last submission.
    lock = threading.Lock()
    all_done = threading.Event()
    errors: list[BaseException] = []
    open_calls = 1

    def submit(provider: Provider, prospect: ProspectInput) -> None:
        nonlocal open_calls
        with lock:
            open_calls += 1
        future = pools[provider].submit(task, provider, prospect)
        future.add_done_callback(functools.partial(finished, provider, prospect))

    def close_one() -> None:
        nonlocal open_calls
        with lock:
            open_calls -= 1
            if open_calls == 0:
                all_done.set()

    def finished(
        provider: Provider, prospect: ProspectInput, future: Future[SourceOutcome]
    ) -> None:
        try:
            if errors or future.cancelled():
                return
            outcome = future.result()  # save_result's error, if any, ends the batch
            with lock:
                out[(prospect.id, provider.SOURCE)] = outcome
                then = (
                    [(follow_up[0], q) for q in follow_up[1](provider, prospect, outcome)]
                    if follow_up is not None and provider is not follow_up[0]
                    else []
                )
            # The jobs' progress reads the prospect's id and name only: no contact data.
            progress.advance(
                source=provider.SOURCE,
                prospect={"id": prospect.id, "name": prospect.name},
                outcome=outcome,
            )
            for nxt in then:
                progress.extend(1)
                submit(*nxt)
        except BaseException as exc:  # noqa: BLE001 - raised by run_calls, on its thread
            errors.append(exc)
            all_done.set()
        finally:
            close_one()

    try:
        for provider, items in work.items():
            for prospect in items:
                submit(provider, prospect)
        close_one()  # this thread's own count: everything is submitted
        all_done.wait()
        if errors:
            raise errors[0]
    finally:
        for pool in pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
    return out


def needs_call(existing: SourceOutcome | None) -> bool:
    """True unless a final outcome (complete, not_found, skipped) is already stored."""
    return existing is None or existing.status not in FINAL_STATUSES
